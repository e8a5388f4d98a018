// CUDA weight quantizers (see weight_quant_cuda.h). Weights are small (a few
// thousand to a few million values), so the cost is launches, not bandwidth:
// two launches each way, one element per thread, grid-stride loops.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "pactq/quant/weight_quant_cuda.h"

namespace pactq::quant::cuda {
namespace {

constexpr int kThreads = 256;
// Launch 1's blocks, one partial each; at most kThreads, so launch 2 reduces
// them with one load per thread and a shared-memory tree.
constexpr int64_t kMaxPartials = kThreads;
constexpr int64_t kMaxBlocks = 4096;  // launch 2, grid-stride beyond this
constexpr float kTiny = 1e-12f;       // weight_quant.cpp's kTinyScale

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("weight quantizer: CUDA ") + what +
                             " kernel failed to launch: " + cudaGetErrorString(err));
  }
}

int64_t partials_for(int64_t numel) {
  const int64_t blocks = (numel + kThreads - 1) / kThreads;
  return blocks < 1 ? 1 : (blocks > kMaxPartials ? kMaxPartials : blocks);
}

int64_t blocks_for(int64_t numel) {
  const int64_t blocks = (numel + kThreads - 1) / kThreads;
  return blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

cudaStream_t as_stream(void* stream) {
  return static_cast<cudaStream_t>(stream);
}

// Block-wide reductions over shared memory in a fixed tree order; every
// thread returns the result. `T` is float or double.
template <typename T>
__device__ T block_sum(T v, T* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  const T out = shared[0];
  __syncthreads();  // shared may be reused at once
  return out;
}

// Maximum that keeps a NaN (fmaxf would drop it): at::max's rule, so a
// diverged layer turns NaN and reaches the loss instead of hiding.
__device__ inline float max_keep_nan(float a, float b) {
  return (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : fmaxf(a, b);
}

__device__ float block_max(float v, float* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride)
      shared[threadIdx.x] = max_keep_nan(shared[threadIdx.x], shared[threadIdx.x + stride]);
    __syncthreads();
  }
  const float out = shared[0];
  __syncthreads();
  return out;
}

__device__ inline int64_t first_index() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}

__device__ inline int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// ---- DoReFa forward

__global__ void dorefa_tanh_max_kernel(const float* w, float* t, float* partial_max,
                                       int64_t numel) {
  __shared__ float shared[kThreads];
  float m = 0.0f;
  for (int64_t i = first_index(); i < numel; i += grid_stride()) {
    const float ti = tanhf(w[i]);
    t[i] = ti;
    m = max_keep_nan(m, fabsf(ti));
  }
  m = block_max(m, shared);
  if (threadIdx.x == 0) partial_max[blockIdx.x] = m;
}

__global__ void dorefa_codes_kernel(const float* t, const float* partial_max, int partials,
                                    float* wq, float* m_out, int64_t numel, float nf) {
  __shared__ float shared[kThreads];
  float m = static_cast<int>(threadIdx.x) < partials ? partial_max[threadIdx.x] : 0.0f;
  m = block_max(m, shared);
  if (!isnan(m)) m = fmaxf(m, kTiny);
  if (blockIdx.x == 0 && threadIdx.x == 0) *m_out = m;
  const float two_m = __fmul_rn(2.0f, m);
  for (int64_t i = first_index(); i < numel; i += grid_stride()) {
    const float q = rintf(__fmul_rn(__fadd_rn(__fdiv_rn(t[i], two_m), 0.5f), nf));
    wq[i] = __fsub_rn(__fdiv_rn(__fmul_rn(2.0f, q), nf), 1.0f);
  }
}

// ---- DoReFa backward

__global__ void dorefa_grad_sums_kernel(const float* grad, const float* t, const float* m_in,
                                        double* partial_gt, double* partial_count, int64_t numel) {
  __shared__ double shared[kThreads];
  const float m = *m_in;
  double gt = 0.0, count = 0.0;
  for (int64_t i = first_index(); i < numel; i += grid_stride()) {
    gt += static_cast<double>(grad[i]) * static_cast<double>(t[i]);
    if (fabsf(t[i]) == m) count += 1.0;
  }
  gt = block_sum(gt, shared);
  count = block_sum(count, shared);
  if (threadIdx.x == 0) {
    partial_gt[blockIdx.x] = gt;
    partial_count[blockIdx.x] = count;
  }
}

__global__ void dorefa_grad_kernel(const float* grad, const float* t, const float* m_in,
                                   const double* partial_gt, const double* partial_count,
                                   int partials, float* grad_w, int64_t numel) {
  __shared__ double shared[kThreads];
  const bool mine = static_cast<int>(threadIdx.x) < partials;
  const double gt = block_sum(mine ? partial_gt[threadIdx.x] : 0.0, shared);
  const double count = block_sum(mine ? partial_count[threadIdx.x] : 0.0, shared);
  const float m = *m_in;
  // clamp_min passes no gradient when the floor is what was used.
  const bool at_floor = m <= kTiny;
  const float dm = (at_floor || count == 0.0)
                       ? 0.0f
                       : static_cast<float>(-gt / (static_cast<double>(m) * m) / count);
  for (int64_t i = first_index(); i < numel; i += grid_stride()) {
    const float ti = t[i];
    float g = __fdiv_rn(grad[i], m);
    if (dm != 0.0f && fabsf(ti) == m) g = __fadd_rn(g, ti > 0.0f ? dm : (ti < 0.0f ? -dm : 0.0f));
    grad_w[i] = __fmul_rn(g, __fsub_rn(1.0f, __fmul_rn(ti, ti)));
  }
}

// ---- SAWB forward

__global__ void sawb_moments_kernel(const float* w, double* partial_sq, double* partial_abs,
                                    double* partial_max, int64_t numel) {
  __shared__ double shared[kThreads];
  __shared__ float shared_max[kThreads];
  double sq = 0.0, ab = 0.0;
  float mx = 0.0f;
  for (int64_t i = first_index(); i < numel; i += grid_stride()) {
    const double v = w[i];
    sq += v * v;
    ab += fabs(v);
    mx = max_keep_nan(mx, fabsf(w[i]));
  }
  sq = block_sum(sq, shared);
  ab = block_sum(ab, shared);
  mx = block_max(mx, shared_max);
  if (threadIdx.x == 0) {
    partial_sq[blockIdx.x] = sq;
    partial_abs[blockIdx.x] = ab;
    partial_max[blockIdx.x] = mx;
  }
}

__global__ void sawb_codes_kernel(const float* w, const double* partial_sq,
                                  const double* partial_abs, const double* partial_max,
                                  int partials, float* wq, int64_t numel, float nf, float c1,
                                  float c2) {
  __shared__ double shared[kThreads];
  __shared__ float shared_max[kThreads];
  const bool mine = static_cast<int>(threadIdx.x) < partials;
  const double sq = block_sum(mine ? partial_sq[threadIdx.x] : 0.0, shared);
  const double ab = block_sum(mine ? partial_abs[threadIdx.x] : 0.0, shared);
  const float mx =
      block_max(mine ? static_cast<float>(partial_max[threadIdx.x]) : 0.0f, shared_max);
  const float mean_sq = static_cast<float>(sq / static_cast<double>(numel));
  const float mean_abs = static_cast<float>(ab / static_cast<double>(numel));
  float a = __fsub_rn(__fmul_rn(c1, sqrtf(mean_sq)), __fmul_rn(c2, mean_abs));
  // A distribution too narrow for the fit gives a <= 0: the largest magnitude.
  if (!(a > 0.0f)) a = mx;
  if (!isnan(a)) a = fmaxf(a, kTiny);
  const float half_n = __fmul_rn(0.5f, nf);
  for (int64_t i = first_index(); i < numel; i += grid_stride()) {
    const float wi = w[i];
    // clamp as at::clamp: a NaN weight stays NaN.
    const float c = wi < -a ? -a : (wi > a ? a : wi);
    const float q = rintf(__fmul_rn(__fadd_rn(__fdiv_rn(c, a), 1.0f), half_n));
    wq[i] = __fdiv_rn(__fmul_rn(a, __fsub_rn(__fmul_rn(2.0f, q), nf)), nf);
  }
}

}  // namespace

int64_t dorefa_forward_scratch_floats(int64_t numel) {
  return partials_for(numel);
}

int64_t dorefa_backward_scratch_doubles(int64_t numel) {
  return 2 * partials_for(numel);
}

int64_t sawb_forward_scratch_doubles(int64_t numel) {
  return 3 * partials_for(numel);
}

void dorefa_forward(const float* w, float* t, float* wq, float* m, float* scratch, int64_t numel,
                    int64_t n, void* stream) {
  const int64_t partials = partials_for(numel);
  dorefa_tanh_max_kernel<<<static_cast<unsigned>(partials), kThreads, 0, as_stream(stream)>>>(
      w, t, scratch, numel);
  check_launch("DoReFa statistic");
  dorefa_codes_kernel<<<static_cast<unsigned>(blocks_for(numel)), kThreads, 0, as_stream(stream)>>>(
      t, scratch, static_cast<int>(partials), wq, m, numel, static_cast<float>(n));
  check_launch("DoReFa forward");
}

void dorefa_backward(const float* grad, const float* t, const float* m, float* grad_w,
                     double* scratch, int64_t numel, void* stream) {
  const int64_t partials = partials_for(numel);
  double* partial_gt = scratch;
  double* partial_count = scratch + partials;
  dorefa_grad_sums_kernel<<<static_cast<unsigned>(partials), kThreads, 0, as_stream(stream)>>>(
      grad, t, m, partial_gt, partial_count, numel);
  check_launch("DoReFa gradient sums");
  dorefa_grad_kernel<<<static_cast<unsigned>(blocks_for(numel)), kThreads, 0, as_stream(stream)>>>(
      grad, t, m, partial_gt, partial_count, static_cast<int>(partials), grad_w, numel);
  check_launch("DoReFa backward");
}

void sawb_forward(const float* w, float* wq, double* scratch, int64_t numel, int64_t n, double c1,
                  double c2, void* stream) {
  const int64_t partials = partials_for(numel);
  double* partial_sq = scratch;
  double* partial_abs = scratch + partials;
  double* partial_max = scratch + 2 * partials;
  sawb_moments_kernel<<<static_cast<unsigned>(partials), kThreads, 0, as_stream(stream)>>>(
      w, partial_sq, partial_abs, partial_max, numel);
  check_launch("SAWB statistic");
  sawb_codes_kernel<<<static_cast<unsigned>(blocks_for(numel)), kThreads, 0, as_stream(stream)>>>(
      w, partial_sq, partial_abs, partial_max, static_cast<int>(partials), wq, numel,
      static_cast<float>(n), static_cast<float>(c1), static_cast<float>(c2));
  check_launch("SAWB forward");
}

}  // namespace pactq::quant::cuda
