// Prefill matrix products on the tensor cores (mma.sync m16n8k16, f16 operands, f32 accumulation) reading ggml blocks:
// out[i][r] = W[r] . x[i] for a batch of prompt rows. Family "gemm"; launcher: cria.backend.cuda.GemmKernels.
#include "quant.cuh"
#include "mma.cuh"

// Tiling. A block computes a GM_BM x BN tile of out^T (weight rows x tokens) with 8 warps, 4 along
// the rows (32 each) and 2 along the tokens (BN / 2 each). K advances GM_BK values per step: each
// thread decodes one 32-value chunk of one weight row (the quant.cuh decoders, rounded to f16) into
// shared memory, while the tokens' f16 rows (gemm_x16's output) arrive by cp.async. Two stages: the
// next step's tile is written while the tensor cores read this one. Shared rows are GM_LD halves
// (144 bytes) apart, so the 8 rows an ldmatrix reads fall in 8 different bank quads.
#define GM_BM 128
#define GM_BK 64
#define GM_THREADS 256
#define GM_LD (GM_BK + 8)

// The 16 f16 words (32 values) of chunk c of a row: through the float decoder, rounded to nearest.
template <class D>
__device__ __forceinline__ void chunk_h(const uint8_t* __restrict__ row, int c, int cols, uint32_t* h) {
    float v[CRIA_CHUNK];
    D::chunk(row, c, cols, v);
#pragma unroll
    for (int j = 0; j < CRIA_CHUNK / 2; j++) {
        h[j] = pack_h2(v[2 * j], v[2 * j + 1]);
    }
}

// F16 weights are already what the tensor cores take: whole chunks are copied as they are.
template <>
__device__ __forceinline__ void chunk_h<DeqF16>(const uint8_t* __restrict__ row, int c, int cols, uint32_t* h) {
    if (cols % CRIA_CHUNK == 0) {
        load_words<64, 16>(row + (size_t) 64 * c, h);
    } else {
        const uint16_t* r = reinterpret_cast<const uint16_t*>(row) + CRIA_CHUNK * c;
        const int left = cols - CRIA_CHUNK * c;
#pragma unroll
        for (int j = 0; j < CRIA_CHUNK / 2; j++) {
            const uint32_t lo = 2 * j < left ? r[2 * j] : 0u;
            const uint32_t hi = 2 * j + 1 < left ? r[2 * j + 1] : 0u;
            h[j] = lo | (hi << 16);
        }
    }
}

/** Byte offset of chunk c in a row of type D (chunks of 32 values). */
template <class D>
__device__ __forceinline__ size_t chunk_offset(int c) {
    return (size_t) (c * CRIA_CHUNK / D::BLOCK) * D::BYTES;
}

template <class D, int BN>
__device__ __forceinline__ void gemm_impl(const uint8_t* __restrict__ w, int rows, int cols,
                                          const uint16_t* __restrict__ xh, int xhStride, int n,
                                          float* __restrict__ out, int outStride) {
    constexpr int WN = BN / 2;   // tokens per warp
    constexpr int NT = WN / 8;   // n8 tiles per warp
    constexpr int STAGE = (GM_BM + BN) * GM_LD;
    CRIA_DYN_SMEM(uint16_t, smem);
    const int tid = threadIdx.x;
    const int lane = tid % CRIA_WARP;
    const int warp = tid / CRIA_WARP;
    const int wm = warp % 4;
    const int wn = warp / 4;
    const int n0 = blockIdx.x * BN;
    const int m0 = blockIdx.y * GM_BM;
    const int ktiles = (cols + GM_BK - 1) / GM_BK;
    const int chunks = row_chunks(cols);
    // this thread decodes chunk 2 kt + dc of weight row m0 + dr
    const int dr = tid / 2;
    const int dc = tid % 2;
    const bool rowOk = m0 + dr < rows;
    const uint8_t* wrow = w + (size_t) imin(m0 + dr, rows - 1) * row_bytes<D>(cols);

    float acc[2][NT][4];
#pragma unroll
    for (int mi = 0; mi < 2; mi++) {
#pragma unroll
        for (int ni = 0; ni < NT; ni++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                acc[mi][ni][i] = 0.0f;
            }
        }
    }

    // Fills stage s with step kt: the tokens' halves by cp.async (rows past n become zeros), then this
    // thread's decoded chunk (zeros past the last row or column).
    auto load = [&](int kt, int s) {
        uint16_t* ws = smem + s * STAGE;
        uint16_t* xs = ws + GM_BM * GM_LD;
        for (int p = tid; p < BN * (GM_BK / 8); p += GM_THREADS) {
            const int r = p / (GM_BK / 8);
            const int q = p % (GM_BK / 8);
            const int tok = n0 + r;
            const uint16_t* src = xh + (size_t) imin(tok, n - 1) * xhStride + kt * GM_BK + q * 8;
            cp_async16(xs + r * GM_LD + q * 8, src, tok < n);
        }
        cp_async_commit();
        const int c = kt * (GM_BK / CRIA_CHUNK) + dc;
        uint32_t h[CRIA_CHUNK / 2];
        if (rowOk && c < chunks) {
            chunk_h<D>(wrow, c, cols, h);
        } else {
#pragma unroll
            for (int j = 0; j < CRIA_CHUNK / 2; j++) {
                h[j] = 0u;
            }
        }
        uint4* dst = reinterpret_cast<uint4*>(ws + dr * GM_LD + dc * CRIA_CHUNK);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            dst[k] = make_uint4(h[4 * k], h[4 * k + 1], h[4 * k + 2], h[4 * k + 3]);
        }
        const int ahead = c + 2 * (GM_BK / CRIA_CHUNK);  // the step after next: into L2 now
        if (rowOk && ahead < chunks) {
            prefetch_l2(wrow + chunk_offset<D>(ahead));
        }
    };

    load(0, 0);
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<0>();
        __syncthreads();  // stage kt & 1 complete; every warp is done reading the other stage
        if (kt + 1 < ktiles) {
            load(kt + 1, (kt + 1) & 1);
        }
        const uint16_t* A = smem + (kt & 1) * STAGE;
        const uint16_t* B = A + GM_BM * GM_LD;
#pragma unroll
        for (int ks = 0; ks < GM_BK / 16; ks++) {
            uint32_t a[2][4];
#pragma unroll
            for (int mi = 0; mi < 2; mi++) {
                ldsm_x4(a[mi], A + (wm * 32 + mi * 16 + lane % 16) * GM_LD + ks * 16 + (lane / 16) * 8);
            }
#pragma unroll
            for (int nj = 0; nj < NT / 2; nj++) {
                uint32_t b[4];
                ldsm_x4(b, B + (wn * WN + nj * 16 + (lane / 16) * 8 + lane % 8) * GM_LD + ks * 16 + ((lane / 8) % 2) * 8);
#pragma unroll
                for (int mi = 0; mi < 2; mi++) {
                    mma_f16(acc[mi][2 * nj], a[mi], b);
                    mma_f16(acc[mi][2 * nj + 1], a[mi], b + 2);
                }
            }
        }
    }

#pragma unroll
    for (int mi = 0; mi < 2; mi++) {
#pragma unroll
        for (int ni = 0; ni < NT; ni++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int row = m0 + wm * 32 + mi * 16 + lane / 4 + (i / 2) * 8;
                const int tok = n0 + wn * WN + ni * 8 + 2 * (lane % 4) + (i % 2);
                if (row < rows && tok < n) {
                    out[(size_t) tok * outStride + row] = acc[mi][ni][i];
                }
            }
        }
    }
}

// The tokens' rows as f16, zero-padded to xhStride (a multiple of GM_BK) so that every K step reads
// whole 16-byte pieces. Entry point: (x[n][xStride], xStride, cols, n, xh[n][xhStride], xhStride);
// grid (ceil(xhStride / 8 / 128), n), block 128: each thread writes 8 halves.
extern "C" __global__ void __launch_bounds__(128) gemm_x16(const float* x, int xStride, int cols, int n, uint16_t* xh, int xhStride) {
    const int i = blockIdx.y;
    const int k = 8 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= n || k >= xhStride) {
        return;
    }
    const float* xr = x + (size_t) i * xStride + k;
    float v[8];
#pragma unroll
    for (int j = 0; j < 8; j++) {
        v[j] = k + j < cols ? xr[j] : 0.0f;
    }
    reinterpret_cast<uint4*>(xh + (size_t) i * xhStride + k)[0] =
        make_uint4(pack_h2(v[0], v[1]), pack_h2(v[2], v[3]), pack_h2(v[4], v[5]), pack_h2(v[6], v[7]));
}

// Entry points: (w, rows, cols, xh[n][xhStride], xhStride, n, out[n][outStride], outStride);
// grid (ceil(n / BN), ceil(rows / GM_BM)), block GM_THREADS, dynamic shared 2 (GM_BM + BN) GM_LD 2 bytes.
// _64: BN = 64 (two blocks per multiprocessor); _128: BN = 128 (prompts of more than 64 rows).
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_f16_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqF16, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_f16_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqF16, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_bf16_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqBF16, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_bf16_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqBF16, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_q4_0_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ4_0, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_q4_0_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ4_0, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_q4_1_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ4_1, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_q4_1_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ4_1, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_q5_0_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ5_0, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_q5_0_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ5_0, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_q5_1_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ5_1, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_q5_1_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ5_1, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_q8_0_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ8_0, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_q8_0_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ8_0, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_q2_k_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ2_K, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_q2_k_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ2_K, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_q3_k_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ3_K, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_q3_k_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ3_K, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_q4_k_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ4_K, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_q4_k_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ4_K, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_q5_k_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ5_K, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_q5_k_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ5_K, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_q6_k_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ6_K, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_q6_k_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqQ6_K, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_iq4_nl_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqIQ4_NL, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_iq4_nl_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqIQ4_NL, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 2) gemm_iq4_xs_64(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqIQ4_XS, 64>(w, rows, cols, xh, xhStride, n, out, outStride); }
extern "C" __global__ void __launch_bounds__(GM_THREADS, 1) gemm_iq4_xs_128(const uint8_t* w, int rows, int cols, const uint16_t* xh, int xhStride, int n, float* out, int outStride) { gemm_impl<DeqIQ4_XS, 128>(w, rows, cols, xh, xhStride, n, out, outStride); }
