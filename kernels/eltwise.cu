// Element-wise and row-copy kernels of the forward pass: swiglu, geglu, scale, softcap, residual add, bias add, gather of rows.
// Family "eltwise"; launcher: cria.backend.cuda.EltwiseKernels.
#include "common.cuh"

// swiglu and add cover `count` contiguous floats (rows [0, n) of equally shaped buffers, which
// start 256-byte aligned): 16-byte accesses for the first count / 4 groups, then a scalar tail.

__device__ __forceinline__ float silu_mul(float g, float u) {
    return g / (1.0f + expf(-g)) * u;
}

// a = silu(a) * b. Grid-stride.
extern "C" __global__ void eltwise_swiglu(float* __restrict__ a, const float* __restrict__ b, int count) {
    const int stride = gridDim.x * blockDim.x;
    const int start = blockIdx.x * blockDim.x + threadIdx.x;
    const int n4 = count / 4;
    for (int i = start; i < n4; i += stride) {
        float4 x = reinterpret_cast<float4*>(a)[i];
        const float4 y = reinterpret_cast<const float4*>(b)[i];
        x.x = silu_mul(x.x, y.x);
        x.y = silu_mul(x.y, y.y);
        x.z = silu_mul(x.z, y.z);
        x.w = silu_mul(x.w, y.w);
        reinterpret_cast<float4*>(a)[i] = x;
    }
    for (int i = 4 * n4 + start; i < count; i += stride) {
        a[i] = silu_mul(a[i], b[i]);
    }
}

// GELU, tanh form (Gemma's feed-forward gate).
__device__ __forceinline__ float gelu_mul(float g, float u) {
    return 0.5f * g * (1.0f + tanhf(0.7978845608f * (g + 0.044715f * g * g * g))) * u;
}

// a = gelu(a) * b. Grid-stride.
extern "C" __global__ void eltwise_geglu(float* __restrict__ a, const float* __restrict__ b, int count) {
    const int stride = gridDim.x * blockDim.x;
    const int start = blockIdx.x * blockDim.x + threadIdx.x;
    const int n4 = count / 4;
    for (int i = start; i < n4; i += stride) {
        float4 x = reinterpret_cast<float4*>(a)[i];
        const float4 y = reinterpret_cast<const float4*>(b)[i];
        x.x = gelu_mul(x.x, y.x);
        x.y = gelu_mul(x.y, y.y);
        x.z = gelu_mul(x.z, y.z);
        x.w = gelu_mul(x.w, y.w);
        reinterpret_cast<float4*>(a)[i] = x;
    }
    for (int i = 4 * n4 + start; i < count; i += stride) {
        a[i] = gelu_mul(a[i], b[i]);
    }
}

// x *= s (Gemma's embedding scale). Grid-stride.
extern "C" __global__ void eltwise_scale(float* __restrict__ x, float s, int count) {
    const int stride = gridDim.x * blockDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
        x[i] *= s;
    }
}

// x = cap * tanh(x / cap) (Gemma's final logit soft-capping). Grid-stride.
extern "C" __global__ void eltwise_softcap(float* __restrict__ x, float cap, int count) {
    const int stride = gridDim.x * blockDim.x;
    const float inv = 1.0f / cap;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
        x[i] = cap * tanhf(x[i] * inv);
    }
}

// x += y. Grid-stride.
extern "C" __global__ void eltwise_add(float* __restrict__ x, const float* __restrict__ y, int count) {
    const int stride = gridDim.x * blockDim.x;
    const int start = blockIdx.x * blockDim.x + threadIdx.x;
    const int n4 = count / 4;
    for (int i = start; i < n4; i += stride) {
        float4 a = reinterpret_cast<float4*>(x)[i];
        const float4 b = reinterpret_cast<const float4*>(y)[i];
        a.x += b.x;
        a.y += b.y;
        a.z += b.z;
        a.w += b.w;
        reinterpret_cast<float4*>(x)[i] = a;
    }
    for (int i = 4 * n4 + start; i < count; i += stride) {
        x[i] += y[i];
    }
}

// x[i][c] += b[c] over `count` contiguous floats of rows of `cols` (qwen2's q, k, v biases). Grid-stride.
extern "C" __global__ void eltwise_add_bias(float* __restrict__ x, const float* __restrict__ b, int cols, int count) {
    const int stride = gridDim.x * blockDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
        x[i] += b[i % cols];
    }
}

// out[j] = x[rows[j]]: thread c of block (bx, j) copies column bx * blockDim.x + c.
extern "C" __global__ void eltwise_gather(const float* __restrict__ x, int xStride, const int* __restrict__ rows,
                                          int cols, float* __restrict__ out, int outStride) {
    const int j = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < cols) {
        out[(size_t) j * outStride + c] = x[(size_t) rows[j] * xStride + c];
    }
}
