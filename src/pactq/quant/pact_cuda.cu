// CUDA PACT kernels (see pact_cuda.h). One thread per group of 8 elements:
// it owns the group's two mask bytes, so no two threads write one byte, and
// its 8 floats are two 16-byte loads when the tensor is aligned (ATen's
// allocations are; a view with an offset takes the scalar path).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "pactq/quant/pact_cuda.h"

namespace pactq::quant::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;  // grid-stride beyond this

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("pact: CUDA ") + what +
                             " kernel failed to launch: " + cudaGetErrorString(err));
  }
}

__host__ __device__ inline int64_t groups_of(int64_t numel) {
  return (numel + 7) / 8;
}

int64_t blocks_for(int64_t numel) {
  const int64_t blocks = (groups_of(numel) + kThreads - 1) / kThreads;
  return blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

__device__ inline bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

__global__ void pact_forward_kernel(PactCudaForwardArgs a) {
  const float alpha = *a.alpha;
  const float scale = a.quantize ? *a.scale : 1.0f;
  const float inv_scale = a.quantize ? *a.inv_scale : 1.0f;
  const int64_t groups = groups_of(a.numel);
  const bool vec = aligned16(a.x) && aligned16(a.y);
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t base = g * 8;
    const int n = a.numel - base < 8 ? static_cast<int>(a.numel - base) : 8;
    float v[8];
    if (vec && n == 8) {
      const float4 lo = reinterpret_cast<const float4*>(a.x + base)[0];
      const float4 hi = reinterpret_cast<const float4*>(a.x + base)[1];
      v[0] = lo.x, v[1] = lo.y, v[2] = lo.z, v[3] = lo.w;
      v[4] = hi.x, v[5] = hi.y, v[6] = hi.z, v[7] = hi.w;
    } else {
      for (int k = 0; k < n; ++k) v[k] = a.x[base + k];
    }
    unsigned pass = 0, clipped = 0;
    float out[8];
    for (int k = 0; k < n; ++k) {
      // Comparisons, as on the CPU: a NaN input stays NaN and is "below".
      const float c = v[k] < 0.0f ? 0.0f : (v[k] > alpha ? alpha : v[k]);
      // __fmul_rn: never contracted, so the products round as the CPU's do.
      out[k] = a.quantize ? __fmul_rn(rintf(__fmul_rn(c, scale)), inv_scale) : c;
      if (v[k] >= alpha) {
        clipped |= 1u << k;
      } else if (v[k] >= 0.0f) {
        pass |= 1u << k;
      }
    }
    if (vec && n == 8) {
      reinterpret_cast<float4*>(a.y + base)[0] = make_float4(out[0], out[1], out[2], out[3]);
      reinterpret_cast<float4*>(a.y + base)[1] = make_float4(out[4], out[5], out[6], out[7]);
    } else {
      for (int k = 0; k < n; ++k) a.y[base + k] = out[k];
    }
    a.mask[2 * g] = static_cast<uint8_t>(pass);
    a.mask[2 * g + 1] = static_cast<uint8_t>(clipped);
  }
}

__global__ void pact_backward_kernel(const float* grad_y, const uint8_t* mask, float* grad_x,
                                     double* partials, int64_t numel) {
  __shared__ double block_sum[kThreads];
  const int64_t groups = groups_of(numel);
  const bool vec = aligned16(grad_y) && aligned16(grad_x);
  double sum = 0.0;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t base = g * 8;
    const int n = numel - base < 8 ? static_cast<int>(numel - base) : 8;
    const unsigned pass = mask[2 * g];
    const unsigned clipped = mask[2 * g + 1];
    float v[8], out[8];
    if (vec && n == 8) {
      const float4 lo = reinterpret_cast<const float4*>(grad_y + base)[0];
      const float4 hi = reinterpret_cast<const float4*>(grad_y + base)[1];
      v[0] = lo.x, v[1] = lo.y, v[2] = lo.z, v[3] = lo.w;
      v[4] = hi.x, v[5] = hi.y, v[6] = hi.z, v[7] = hi.w;
    } else {
      for (int k = 0; k < n; ++k) v[k] = grad_y[base + k];
    }
    for (int k = 0; k < n; ++k) {
      out[k] = (pass >> k) & 1u ? v[k] : 0.0f;
      if (((clipped >> k) & 1u) && !((pass >> k) & 1u)) sum += static_cast<double>(v[k]);
    }
    if (vec && n == 8) {
      reinterpret_cast<float4*>(grad_x + base)[0] = make_float4(out[0], out[1], out[2], out[3]);
      reinterpret_cast<float4*>(grad_x + base)[1] = make_float4(out[4], out[5], out[6], out[7]);
    } else {
      for (int k = 0; k < n; ++k) grad_x[base + k] = out[k];
    }
  }
  // Tree sum in shared memory: a fixed order, so the result is reproducible.
  block_sum[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride)
      block_sum[threadIdx.x] += block_sum[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = block_sum[0];
}

}  // namespace

void pact_forward(const PactCudaForwardArgs& args, void* stream) {
  if (args.numel == 0) return;
  pact_forward_kernel<<<static_cast<unsigned>(blocks_for(args.numel)), kThreads, 0,
                        static_cast<cudaStream_t>(stream)>>>(args);
  check_launch("forward");
}

int64_t pact_backward_partials(int64_t numel) {
  return blocks_for(numel);
}

void pact_backward(const float* grad_y, const uint8_t* mask, float* grad_x, double* partials,
                   int64_t numel, void* stream) {
  // An empty tensor still writes its (one, zero) partial sum.
  pact_backward_kernel<<<static_cast<unsigned>(blocks_for(numel)), kThreads, 0,
                         static_cast<cudaStream_t>(stream)>>>(grad_y, mask, grad_x, partials,
                                                              numel);
  check_launch("backward");
}

}  // namespace pactq::quant::cuda
