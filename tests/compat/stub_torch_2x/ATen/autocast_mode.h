// Stub (tests/compat): LibTorch 2.4+'s autocast switches, functions of the device type.
#pragma once
#define PACTQ_TORCH_2X_STUB 1
#include <c10/core/Allocator.h>

namespace at::autocast {
bool is_autocast_enabled(at::DeviceType device_type);
void set_autocast_enabled(at::DeviceType device_type, bool enabled);
at::ScalarType get_autocast_dtype(at::DeviceType device_type);
void set_autocast_dtype(at::DeviceType device_type, at::ScalarType dtype);
void clear_cache();
int increment_nesting();
int decrement_nesting();
}  // namespace at::autocast
