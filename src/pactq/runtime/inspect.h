// The text report of `pactq inspect`: every node of a loaded model with its
// op, input and output shapes and types, bits, scales and bytes. Kept out of
// the model so the runtime's core has no formatting in it.
#pragma once

#include <string>

#include "pactq/runtime/model.h"

namespace pactq::rt {

std::string describe(const Model& model);

}  // namespace pactq::rt
