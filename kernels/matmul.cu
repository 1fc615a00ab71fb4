// Matrix-vector and small matrix-matrix products that read ggml blocks directly: out[i][r] = W[r] . x[i].
// Family "matmul"; launcher: cria.backend.cuda.MatmulKernels. Correctness first: one warp per output row.
#include "quant.cuh"

// Shape of a block (the launcher uses the same numbers): MM_WARPS warps, one output row each; the
// block serves MM_NB consecutive batch entries, so a weight chunk is decoded into registers once
// and dotted with up to MM_NB input rows. Lane l takes chunks l, l + 32, ... of the row; partial
// sums meet in a warp reduction. f32 accumulation throughout.
#define MM_WARPS 4
#define MM_NB 8

template <class D>
__device__ __forceinline__ void matmul_impl(const uint8_t* __restrict__ w, int rows, int cols,
                                            const float* __restrict__ x, int xStride, int n,
                                            float* __restrict__ out, int outStride) {
    const int warp = threadIdx.x / CRIA_WARP;
    const int lane = threadIdx.x % CRIA_WARP;
    const int row = blockIdx.x * MM_WARPS + warp;
    if (row >= rows) {
        return;  // the whole warp leaves together: no barrier or shuffle is left waiting
    }
    const int i0 = blockIdx.y * MM_NB;
    const int ni = imin(MM_NB, n - i0);
    const uint8_t* wr = w + (size_t) row * row_bytes<D>(cols);
    const bool vec = cols % CRIA_CHUNK == 0 && xStride % 4 == 0;  // x rows 16-byte aligned
    const int chunks = row_chunks(cols);
    float acc[MM_NB];
#pragma unroll
    for (int i = 0; i < MM_NB; i++) {
        acc[i] = 0.0f;
    }
    for (int c = lane; c < chunks; c += CRIA_WARP) {
        float v[CRIA_CHUNK];
        D::chunk(wr, c, cols, v);
#pragma unroll
        for (int i = 0; i < MM_NB; i++) {
            if (i < ni) {
                const float* xr = x + (size_t) (i0 + i) * xStride + CRIA_CHUNK * c;
                float s = 0.0f;
                if (vec) {
#pragma unroll
                    for (int k = 0; k < CRIA_CHUNK / 8; k++) {
                        float xv[8];
                        load_f8(xr + 8 * k, xv);
#pragma unroll
                        for (int j = 0; j < 8; j++) {
                            s += v[8 * k + j] * xv[j];
                        }
                    }
                } else {
                    const int left = cols - CRIA_CHUNK * c;
#pragma unroll
                    for (int j = 0; j < CRIA_CHUNK; j++) {
                        if (j < left) {
                            s += v[j] * xr[j];
                        }
                    }
                }
                acc[i] += s;
            }
        }
    }
#pragma unroll
    for (int i = 0; i < MM_NB; i++) {
        if (i < ni) {  // ni is the same in every lane: the shuffles stay converged
            acc[i] = warp_sum(acc[i]);
        }
    }
    if (lane == 0) {
#pragma unroll
        for (int i = 0; i < MM_NB; i++) {
            if (i < ni) {
                out[(size_t) (i0 + i) * outStride + row] = acc[i];
            }
        }
    }
}

// Entry points: (w, rows, cols, x[n][xStride], xStride, n, out[n][outStride], outStride);
// grid (ceil(rows / MM_WARPS), ceil(n / MM_NB)), block MM_WARPS * 32.
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_f32(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqF32>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_f16(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqF16>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_bf16(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqBF16>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_q4_0(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqQ4_0>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_q4_1(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqQ4_1>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_q5_0(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqQ5_0>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_q5_1(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqQ5_1>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_q8_0(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqQ8_0>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_q2_k(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqQ2_K>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_q3_k(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqQ3_K>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_q4_k(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqQ4_K>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_q5_k(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqQ5_K>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_q6_k(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqQ6_K>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_iq4_nl(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqIQ4_NL>(w, rows, cols, x, xStride, n, out, outStride);
}
extern "C" __global__ void __launch_bounds__(MM_WARPS * CRIA_WARP) matmul_iq4_xs(const uint8_t* w, int rows, int cols, const float* x, int xStride, int n, float* out, int outStride) {
    matmul_impl<DeqIQ4_XS>(w, rows, cols, x, xStride, n, out, outStride);
}
