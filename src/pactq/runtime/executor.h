// The executor: runs a compiled graph over a batch in a caller's arena, and
// reads a node's value back in logical NCHW order. Reads the graph only, so
// callers with their own arenas may run one graph at once. Internal.
#pragma once

#include <cstdint>
#include <vector>

#include "pactq/runtime/compiled_graph.h"
#include "pactq/runtime/model.h"
#include "pactq/runtime/thread_pool.h"

namespace pactq::rt::detail {

// Grows `arena` to hold `batch` images of plan `p` and returns its 64-byte
// aligned base.
uint8_t* prepare_arena(std::vector<uint8_t>& arena, const BufferPlan& p, int batch);

// Runs every node in order; `pool` parallelises within each node. With
// `node_seconds` (one entry per node), each node's wall time is added to it.
void execute(const CompiledGraph& g, const BufferPlan& p, uint8_t* base, const float* pixels,
             int batch, ThreadPool& pool, double* node_seconds = nullptr);

NodeOutput read_value(const CompiledGraph& g, const BufferPlan& p, const uint8_t* base, int node,
                      int batch);

}  // namespace pactq::rt::detail
