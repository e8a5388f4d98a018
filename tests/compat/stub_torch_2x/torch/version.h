// Stub (tests/compat): LibTorch 2.11's torch/version.h.
#pragma once
#define PACTQ_TORCH_2X_STUB 1
#define TORCH_VERSION_MAJOR 2
#define TORCH_VERSION_MINOR 11
#define TORCH_VERSION_PATCH 0
#define TORCH_VERSION "2.11.0"
