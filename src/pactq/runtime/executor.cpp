#include "pactq/runtime/executor.h"

#include <chrono>

#include "pactq/runtime/ops/op_table.h"

namespace pactq::rt::detail {

uint8_t* prepare_arena(std::vector<uint8_t>& arena, const BufferPlan& p, int batch) {
  const size_t need = p.total * static_cast<size_t>(batch) + 64;
  if (arena.size() < need) {
    arena.clear();
    arena.shrink_to_fit();
    arena.resize(need);
  }
  const uintptr_t a = reinterpret_cast<uintptr_t>(arena.data());
  return arena.data() + ((64 - a % 64) % 64);
}

void execute(const CompiledGraph& g, const BufferPlan& p, uint8_t* base, const float* pixels,
             int batch, ThreadPool& pool, double* node_seconds) {
  const RunArgs args{g, p, base, batch, pixels, pool};
  if (node_seconds == nullptr) {
    for (const Node& nd : g.nodes) op_def(nd.op).run(nd, args);
    return;
  }
  using clock = std::chrono::steady_clock;
  for (const Node& nd : g.nodes) {
    const clock::time_point t0 = clock::now();
    op_def(nd.op).run(nd, args);
    node_seconds[nd.id] += std::chrono::duration<double>(clock::now() - t0).count();
  }
}

NodeOutput read_value(const CompiledGraph& g, const BufferPlan& p, const uint8_t* base, int node,
                      int batch) {
  const Node& nd = g.nodes[node];
  const ValueInfo& v = nd.out;
  NodeOutput o;
  o.node = nd.name;
  o.batch = batch;
  o.channels = v.c;
  o.height = v.h;
  o.width = v.w;
  o.codes = v.codes;
  o.bits = v.bits;
  o.alpha = v.alpha;
  o.scale = v.scale;
  const size_t hw = static_cast<size_t>(v.h) * v.w, per = static_cast<size_t>(v.elements());
  o.values.resize(per * batch);
  if (v.codes) o.code_values.resize(per * batch);
  for (int b = 0; b < batch; ++b) {
    const uint8_t* src = base + p.offset[node] * static_cast<size_t>(batch) +
                         p.stride[node] * static_cast<size_t>(b);
    for (int c = 0; c < v.c; ++c)
      for (size_t i = 0; i < hw; ++i) {
        const size_t dst = b * per + c * hw + i, s = i * v.c + c;
        if (v.codes) {
          const uint8_t a = src[s];
          o.code_values[dst] = a;
          o.values[dst] = static_cast<float>(a) * v.scale;
        } else {
          o.values[dst] = reinterpret_cast<const float*>(src)[s];
        }
      }
  }
  return o;
}

}  // namespace pactq::rt::detail
