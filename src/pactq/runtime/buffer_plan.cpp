#include "pactq/runtime/buffer_plan.h"

#include <algorithm>
#include <utility>

namespace pactq::rt::detail {

BufferPlan plan_buffers(const std::vector<Node>& nodes, int output, bool reuse) {
  const int n = static_cast<int>(nodes.size());
  BufferPlan p;
  p.offset.assign(n, 0);
  p.stride.assign(n, 0);
  std::vector<int> last(n);  // the last node reading each value
  for (int i = 0; i < n; ++i) last[i] = i;
  for (int i = 0; i < n; ++i)
    for (int j : nodes[i].inputs) last[j] = std::max(last[j], i);
  last[output] = n;
  for (int i = 0; i < n; ++i) {
    p.stride[i] = (nodes[i].out.bytes() + kBufferSlack + 63) / 64 * 64;
    size_t off = 0;
    if (reuse) {
      // First fit among values live at i (defined before, used at or after i).
      std::vector<std::pair<size_t, size_t>> busy;
      for (int j = 0; j < i; ++j)
        if (last[j] >= i) busy.emplace_back(p.offset[j], p.offset[j] + p.stride[j]);
      std::sort(busy.begin(), busy.end());
      for (const auto& b : busy) {
        if (off + p.stride[i] <= b.first) break;
        off = std::max(off, b.second);
      }
    } else {
      off = p.total;
    }
    p.offset[i] = off;
    p.total = std::max(p.total, off + p.stride[i]);
  }
  return p;
}

}  // namespace pactq::rt::detail
