// The public face of the runtime: loading (runtime/loader.h), running in a
// caller's context (runtime/executor.h) and the model's read-only facts.
#include "pactq/runtime/model.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <system_error>

#include "pactq/runtime/compiled_graph.h"
#include "pactq/runtime/executor.h"
#include "pactq/runtime/loader.h"
#include "pactq/runtime/ops/op_table.h"
#include "pactq/runtime/thread_pool.h"

namespace pactq::rt {

namespace detail {

// Per-caller scratch: the worker pool and the arenas (one for a whole batch,
// one per slice when a large batch is split across threads).
struct ContextState {
  int threads = 1;
  std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(1);
  std::vector<uint8_t> arena;
  std::vector<std::vector<uint8_t>> slice_arenas;
};

}  // namespace detail

using detail::CompiledGraph;

// ================================================================ context

ExecutionContext::ExecutionContext(int threads) : state_(std::make_unique<detail::ContextState>()) {
  set_threads(threads);
}
ExecutionContext::ExecutionContext(ExecutionContext&&) noexcept = default;
ExecutionContext& ExecutionContext::operator=(ExecutionContext&&) noexcept = default;
ExecutionContext::~ExecutionContext() = default;

void ExecutionContext::set_threads(int n) {
  if (n < 1) n = 1;
  if (n == state_->threads) return;
  state_->pool = std::make_unique<ThreadPool>(n);
  state_->threads = n;
}
int ExecutionContext::threads() const {
  return state_->threads;
}

// ================================================================ trace

Trace::Trace(std::shared_ptr<const CompiledGraph> graph, int batch)
    : graph_(std::move(graph)), batch_(batch) {
  base_ = detail::prepare_arena(arena_, graph_->trace_plan, batch);
}
Trace::Trace(Trace&&) noexcept = default;
Trace& Trace::operator=(Trace&&) noexcept = default;
Trace::~Trace() = default;

size_t Trace::size() const {
  return graph_->nodes.size();
}

NodeOutput Trace::output(size_t node) const {
  if (node >= graph_->nodes.size()) {
    throw std::out_of_range("Trace::output: node " + std::to_string(node) + " of " +
                            std::to_string(graph_->nodes.size()));
  }
  return detail::read_value(*graph_, graph_->trace_plan, base_, static_cast<int>(node), batch_);
}

NodeOutput Trace::output(const std::string& node) const {
  const int id = graph_->find(node);
  if (id < 0) throw FormatError(graph_->file + ": no node named '" + node + "'");
  return output(static_cast<size_t>(id));
}

// ================================================================ Model

Model::Model(std::shared_ptr<const CompiledGraph> graph)
    : graph_(std::move(graph)), own_context_(std::make_unique<ExecutionContext>(1)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load_from_memory(const uint8_t* data, size_t size, const std::string& name) {
  return Model(detail::load_graph(data, size, name, kernels::selected_kernel_set()));
}

Model Model::load(const std::string& path) {
  // stdio, not iostreams: a failed fopen()/fread() leaves the OS's reason in errno.
  const auto io_error = [&path](const char* what, int err) {
    return IoError(path + ": " + what + ": " + std::generic_category().message(err));
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw io_error("cannot open file", errno);
  // Read to the end instead of asking for a size: a directory opens on Linux
  // and fails only at read() (EISDIR), and a pipe has no size.
  std::vector<uint8_t> bytes(size_t{1} << 16);
  size_t used = 0;
  for (;;) {
    if (used == bytes.size()) bytes.resize(bytes.size() * 2);
    used += std::fread(bytes.data() + used, 1, bytes.size() - used, f.get());
    if (used < bytes.size()) {
      if (std::ferror(f.get())) throw io_error("cannot read file", errno);
      if (std::feof(f.get())) break;
    }
  }
  return load_from_memory(bytes.data(), used, path);
}

std::vector<float> Model::run(const float* pixels, int batch, ExecutionContext& context) const {
  if (batch < 1) throw std::invalid_argument("Model::run: batch must be >= 1");
  const CompiledGraph& g = *graph_;
  detail::ContextState& s = *context.state_;
  // Chunks re-read every weight once per chunk: right while the weights stay
  // in cache (ResNet20 150 KB, PreAct-ResNet18 5.7 MB: chunks 18700 vs 16600
  // and 513 vs 455 img/s layer by layer), wrong for AlexNet-BN's 29.5 MB,
  // mostly fc6/fc7, which then streams from memory once per 2 images (batch
  // 16, 2 threads: 429 img/s in chunks, 574 layer by layer).
  constexpr size_t kChunkedMaxWeightBytes = size_t{16} << 20;
  if (s.threads > 1 && batch >= 2 * s.threads && g.weight_bytes <= kChunkedMaxWeightBytes) {
    // Large batches: each thread runs the whole network on chunks of images
    // (no barrier per layer, activations stay in its cache); results are the
    // same image by image, the kernels being per image. Chunks are handed out
    // as threads finish (about four per thread), not as one fixed slice each:
    // a core slowed by another process then costs a chunk, not half the batch.
    const int chunk = std::max(1, batch / (4 * s.threads));
    const int chunks = (batch + chunk - 1) / chunk;
    const size_t in_per_image =
        static_cast<size_t>(input_channels()) * input_height() * input_width();
    const int classes = this->classes();
    std::vector<float> logits(static_cast<size_t>(batch) * classes);
    s.slice_arenas.resize(s.threads);
    std::atomic<int> next{0};
    s.pool->parallel_for(s.threads, [&](int t) {
      ThreadPool inline_pool(1);
      uint8_t* base = detail::prepare_arena(s.slice_arenas[t], g.plan, chunk);
      for (int k = next.fetch_add(1); k < chunks; k = next.fetch_add(1)) {
        const int b0 = k * chunk, b1 = std::min(batch, b0 + chunk);
        detail::execute(g, g.plan, base, pixels + in_per_image * b0, b1 - b0, inline_pool);
        const std::vector<float> part =
            detail::read_value(g, g.plan, base, g.output, b1 - b0).values;
        std::copy(part.begin(), part.end(), logits.begin() + static_cast<size_t>(b0) * classes);
      }
    });
    return logits;
  }
  uint8_t* base = detail::prepare_arena(s.arena, g.plan, batch);
  detail::execute(g, g.plan, base, pixels, batch, *s.pool);
  return detail::read_value(g, g.plan, base, g.output, batch).values;
}

std::vector<float> Model::run(const float* pixels, int batch) {
  return run(pixels, batch, *own_context_);
}

Trace Model::trace(const float* pixels, int batch, ExecutionContext& context) const {
  if (batch < 1) throw std::invalid_argument("Model::trace: batch must be >= 1");
  Trace t(graph_, batch);
  detail::execute(*graph_, graph_->trace_plan, t.base_, pixels, batch, *context.state_->pool);
  return t;
}

Trace Model::trace(const float* pixels, int batch) {
  return trace(pixels, batch, *own_context_);
}

NodeOutput Model::debug_output(const std::string& node, const float* pixels, int batch) {
  if (batch < 1) throw std::invalid_argument("Model::debug_output: batch must be >= 1");
  if (graph_->find(node) < 0) throw FormatError(graph_->file + ": no node named '" + node + "'");
  return trace(pixels, batch).output(node);
}

std::vector<NodeProfile> Model::profile(const float* pixels, int batch, int reps,
                                        ExecutionContext& context) const {
  if (batch < 1) throw std::invalid_argument("Model::profile: batch must be >= 1");
  if (reps < 1) throw std::invalid_argument("Model::profile: reps must be >= 1");
  const CompiledGraph& g = *graph_;
  detail::ContextState& s = *context.state_;
  uint8_t* base = detail::prepare_arena(s.arena, g.plan, batch);
  detail::execute(g, g.plan, base, pixels, batch, *s.pool);  // warm-up
  const size_t n = g.nodes.size();
  std::vector<std::vector<double>> times(n, std::vector<double>(reps, 0.0));
  std::vector<double> pass(n);
  for (int r = 0; r < reps; ++r) {
    std::fill(pass.begin(), pass.end(), 0.0);
    detail::execute(g, g.plan, base, pixels, batch, *s.pool, pass.data());
    for (size_t i = 0; i < n; ++i) times[i][r] = pass[i];
  }
  std::vector<NodeProfile> out(n);
  for (size_t i = 0; i < n; ++i) {
    const detail::Node& nd = g.nodes[i];
    NodeProfile& p = out[i];
    p.node = nd.name;
    p.op = detail::op_def(nd.op).name;
    p.channels = nd.out.c;
    p.height = nd.out.h;
    p.width = nd.out.w;
    std::vector<double>& t = times[i];
    std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
    p.seconds = t[reps / 2];
    if (nd.op == detail::Op::kConv || nd.op == detail::Op::kLinear) {
      const kernels::ConvGeom& c = nd.geom;
      p.path = nd.integer_path ? "int" : "float";
      p.ops = 2.0 * batch * c.out_h * c.out_w * c.out_c * c.cin_g * c.kh * c.kw;
    }
  }
  return out;
}

std::vector<NodeProfile> Model::profile(const float* pixels, int batch, int reps) {
  return profile(pixels, batch, reps, *own_context_);
}

int Model::classes() const {
  return static_cast<int>(graph_->nodes[graph_->output].out.elements());
}
int Model::input_channels() const {
  return graph_->nodes[0].out.c;
}
int Model::input_height() const {
  return graph_->nodes[0].out.h;
}
int Model::input_width() const {
  return graph_->nodes[0].out.w;
}
const std::vector<std::string>& Model::class_names() const {
  return graph_->class_names;
}
std::string Model::model_name() const {
  return metadata("model");
}
std::string Model::metadata(const std::string& key) const {
  auto it = graph_->metadata.find(key);
  return it == graph_->metadata.end() ? std::string() : it->second;
}
std::vector<std::string> Model::node_names() const {
  std::vector<std::string> v;
  for (const auto& n : graph_->nodes) v.push_back(n.name);
  return v;
}
size_t Model::file_bytes() const {
  return graph_->file_bytes;
}
size_t Model::weight_bytes() const {
  return graph_->weight_bytes;
}
size_t Model::activation_bytes_per_image() const {
  return graph_->plan.total;
}
void Model::set_threads(int n) {
  own_context_->set_threads(n);
}
int Model::threads() const {
  return own_context_->threads();
}

std::string Model::isa() const {
  const kernels::KernelSet& k = *graph_->kernels;
  return std::string(isa_name(k.isa)) + " (qconv " + k.qconv->name + ", fconv " + k.fconv_name +
         ", values " + k.values_name + ")";
}

}  // namespace pactq::rt
