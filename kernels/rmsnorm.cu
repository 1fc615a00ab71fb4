// RMS normalization of rows: out[i] = x[i] / sqrt(mean(x[i]^2) + eps) * w, w an f32, f16 or bf16 vector.
// Family "rmsnorm"; launcher: cria.backend.cuda.RmsnormKernels. out may be x (no __restrict__ on them).
#include "common.cuh"

__device__ __forceinline__ float weight_at(const float* w, int c) { return w[c]; }
__device__ __forceinline__ float weight_at(const uint16_t* w, int c) { return h2f(w[c]); }
struct Bf16Ptr { const uint16_t* p; };
__device__ __forceinline__ float weight_at(Bf16Ptr w, int c) { return bf2f(w.p[c]); }

// One block per row. Each thread first reads its strided share of the row for the sum of
// squares; block_sum's barriers order those reads before any thread writes out (which may be x).
template <class W>
__device__ __forceinline__ void rmsnorm_impl(const float* x, int xStride, W w, float eps, int cols, float* out,
                                             int outStride) {
    __shared__ float red[32];
    const float* xr = x + (size_t) blockIdx.x * xStride;
    float* orow = out + (size_t) blockIdx.x * outStride;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const float v = xr[c];
        ss += v * v;
    }
    ss = block_sum(ss, red);
    const float scale = 1.0f / sqrtf(ss / (float) cols + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        orow[c] = xr[c] * scale * weight_at(w, c);
    }
}

// Entry points: (x[n][xStride], xStride, w[cols], eps, cols, out[n][outStride], outStride); grid n.
extern "C" __global__ void rmsnorm_f32(const float* x, int xStride, const float* w, float eps, int cols, float* out, int outStride) {
    rmsnorm_impl(x, xStride, w, eps, cols, out, outStride);
}
extern "C" __global__ void rmsnorm_f16(const float* x, int xStride, const uint16_t* w, float eps, int cols, float* out, int outStride) {
    rmsnorm_impl(x, xStride, w, eps, cols, out, outStride);
}
extern "C" __global__ void rmsnorm_bf16(const float* x, int xStride, const uint16_t* w, float eps, int cols, float* out, int outStride) {
    rmsnorm_impl(x, xStride, Bf16Ptr{w}, eps, cols, out, outStride);
}
