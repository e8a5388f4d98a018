// Where the tests find their data and tools, spelt once: ../shared beside the
// source tree (CIFAR-10, the pretrained ResNet20, the peers) and the Debian
// packages scripts/setup installs.
#pragma once
#include <string>

#include "skip.h"

namespace pactq::test {

const std::string kSharedData = std::string(PACTQ_SOURCE_DIR) + "/../shared/data";
const std::string kCifar = kSharedData + "/cifar-10-batches-bin";
const std::string kPretrained = kSharedData + "/pretrained/resnet20-cifar10.safetensors";
const std::string kFashion = "/usr/share/datasets/fashion-mnist";
const std::string kChromium = "/usr/bin/chromium";

}  // namespace pactq::test
