// Buffer planning: where each node's value lives in one arena per batch.
// Internal to the runtime.
#pragma once

#include <vector>

#include "pactq/runtime/compiled_graph.h"

namespace pactq::rt::detail {

// Bytes readable past every value (the SIMD kernels' quad loads).
constexpr size_t kBufferSlack = 64;

// reuse: a value's bytes are given to a later value once its last reader has
// run (first fit), so the arena holds only what is live; the output node is
// live to the end. Without reuse every value keeps its own bytes (a trace).
BufferPlan plan_buffers(const std::vector<Node>& nodes, int output, bool reuse);

}  // namespace pactq::rt::detail
