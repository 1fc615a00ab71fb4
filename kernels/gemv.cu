// Decode products (one row of x) reading ggml blocks through shared memory with 16-byte cp.async loads, several
// weight rows per warp; epilogues that fuse the residual add or SwiGLU. Family "gemv"; launcher: cria.backend.cuda.GemvKernels.
#include "quant.cuh"
#include "mma.cuh"

// A warp owns R weight rows (GvShape<D>::R) and streams them in windows of 32 M chunks (1024 M
// values; M = 1 or 2 so that a window is whole blocks and whole 16-byte pieces): the lanes copy a
// window of all R rows into the warp's slice of shared memory with cp.async, STAGES windows in
// flight, then lane l decodes chunks l, l + 32, ... of each row there (the quant.cuh decoders) and
// dots them with x, whose chunk is loaded once for all R rows. Batches of several rows take matmul.cu. Warps never
// wait for each other: each has its own staging slice, and only warp-level barriers are used.
// Rows must be whole 16-byte pieces (row bytes % 16 == 0; the launcher checks and otherwise uses matmul).
#define GV_WARPS 4
#define GV_SLICE 12288  // staging bytes per warp: 48 KiB per block

template <class D>
struct GvShape {
    static constexpr int WIN1 = D::BLOCK == 1 ? 1024 * D::BYTES : 1024 / D::BLOCK * D::BYTES;
    static constexpr int M = WIN1 % 16 == 0 ? 1 : 2;
    static constexpr int W = M * WIN1;                    // window bytes per row
    static constexpr int CW = 32 * M;                     // chunks per window
    static constexpr int R = W <= 768 ? 4 : (W <= 2048 ? 2 : 1);
    static constexpr int STAGES = GV_SLICE / (R * W) < 4 ? GV_SLICE / (R * W) : 4;
    static_assert(W % 16 == 0 && STAGES >= 2, "window shape");
};

__device__ __forceinline__ float gv_silu_mul(float g, float u) {
    return g / (1.0f + expf(-g)) * u;
}

// The 32 values of a chunk of an f32 row (16-byte aligned), zeros past `left` (only float rows end mid-chunk).
template <bool PARTIAL>
__device__ __forceinline__ void gv_load(const float* __restrict__ p, int left, float* v) {
    if (!PARTIAL || left >= CRIA_CHUNK) {
#pragma unroll
        for (int k = 0; k < CRIA_CHUNK / 8; k++) {
            load_f8(p + 8 * k, v + 8 * k);
        }
    } else {
#pragma unroll
        for (int j = 0; j < CRIA_CHUNK; j++) {  // unrolled: v stays in registers
            v[j] = j < left ? p[j] : 0.0f;
        }
    }
}

// mode 0: out_j = W_j x for up to three weights (their rows concatenated over the grid, R rows per warp);
// mode 1: out0 = W0 x and res += out0; mode 2: W0 gate, W1 up (same shape): out0 = silu(gate) * up, out1 = up,
// a warp taking R / 2 rows of each.
// With normW (f32), x is first RMS-normalized: every warp covers all of x once, so it sums the squares of
// the values it loads anyway and multiplies them by the norm weights on the way in; the products are
// scaled by 1 / sqrt(mean + eps) at the end. Warp 0 of block 0 also writes the normalized rows to
// normOut (what rmsnorm would have written; never x itself).
template <class D>
__device__ __forceinline__ void gemv_impl(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1,
                                          int rows2, int cols, const float* __restrict__ x, int xStride, int n, float* out0,
                                          float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res,
                                          int resStride, int mode, const float* __restrict__ normW, float eps,
                                          float* normOut, int normOutStride) {
    using S = GvShape<D>;
    constexpr int R = S::R;
    constexpr bool PARTIAL = D::BLOCK == 1;  // only float rows can end inside a chunk
    CRIA_DYN_SMEM(uint8_t, smem);
    const int lane = threadIdx.x % CRIA_WARP;
    const int warp = threadIdx.x / CRIA_WARP;
    uint8_t* slice = smem + warp * GV_SLICE;
    const int group = blockIdx.x * GV_WARPS + warp;
    const size_t rb = row_bytes<D>(cols);

    // which rows this warp owns: row r is row row0 + r % H of weight (r < H ? wa : wb)
    constexpr int H = R >= 2 ? R / 2 : 1;  // (mode 2; modes 0 and 1 use H = R with wa alone)
    int row0;
    int rows;
    int which = 0;  // the weight (mode 0)
    const uint8_t* wa;
    const uint8_t* wb;
    int h;
    if (mode == 2) {
        if constexpr (R < 2) {
            return;  // one row per warp cannot pair gate and up: the launcher never asks
        }
        h = H;
        row0 = group * H;
        rows = rows0;
        if (row0 >= rows0) {
            return;  // the whole warp leaves: nothing else waits for it
        }
        wa = w0 + (size_t) row0 * rb;
        wb = w1 + (size_t) row0 * rb;
    } else {
        const int g0 = (rows0 + R - 1) / R;
        const int g1 = (rows1 + R - 1) / R;
        const int g2 = (rows2 + R - 1) / R;
        int local = group;
        const uint8_t* w = w0;
        rows = rows0;
        if (local >= g0) {
            local -= g0;
            which = 1;
            w = w1;
            rows = rows1;
            if (local >= g1) {
                local -= g1;
                which = 2;
                w = w2;
                rows = rows2;
                if (local >= g2) {
                    return;
                }
            }
        }
        h = R;
        row0 = local * R;
        wa = w + (size_t) row0 * rb;
        wb = wa;
    }
    bool ok[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        ok[r] = row0 + r % h < rows;
    }

    const int chunks = row_chunks(cols);
    const int nwin = (chunks + S::CW - 1) / S::CW;
    constexpr int PW = S::W / 16;  // 16-byte pieces per window row
    auto issue = [&](int win, int stage) {
        uint8_t* dst = slice + stage * R * S::W;
        const size_t off = (size_t) win * S::W;
        for (int p = lane; p < R * PW; p += CRIA_WARP) {
            const int r = p / PW;
            const size_t at = off + (size_t) 16 * (p % PW);
            const bool live = row0 + r % h < rows && at < rb;
            const uint8_t* src = (r < h ? wa : wb) + (size_t) (r % h) * rb;
            cp_async16(dst + r * S::W + 16 * (p % PW), live ? src + at : wa, live);
        }
    };

    float ss = 0.0f;  // sum of squares of x (norm)
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        acc[r] = 0.0f;
    }
#pragma unroll
    for (int s = 0; s < S::STAGES - 1; s++) {
        if (s < nwin) {
            issue(s, s);
        }
        cp_async_commit();  // empty groups keep the count uniform
    }
    for (int win = 0; win < nwin; win++) {
        const int ahead = win + S::STAGES - 1;
        if (ahead < nwin) {
            issue(ahead, ahead % S::STAGES);
        }
        cp_async_commit();
        cp_async_wait<S::STAGES - 1>();
        __syncwarp();  // every lane's pieces of window `win` are in
        const uint8_t* st = slice + (win % S::STAGES) * R * S::W;
        const int colsLeft = cols - win * S::CW * CRIA_CHUNK;
#pragma unroll
        for (int mm = 0; mm < S::M; mm++) {
            const int c = lane + CRIA_WARP * mm;
            const int gc = win * S::CW + c;
            if (gc < chunks) {
                const int left = cols - CRIA_CHUNK * gc;
                float xv[CRIA_CHUNK];  // x's chunk, loaded once for all R rows
                gv_load<PARTIAL>(x + CRIA_CHUNK * gc, left, xv);
                if (normW != nullptr) {
                    float gv[CRIA_CHUNK];
                    gv_load<PARTIAL>(normW + CRIA_CHUNK * gc, left, gv);
#pragma unroll
                    for (int j = 0; j < CRIA_CHUNK; j++) {
                        ss += xv[j] * xv[j];
                        xv[j] *= gv[j];
                    }
                }
#pragma unroll
                for (int r = 0; r < R; r++) {
                    if (ok[r]) {
                        float v[CRIA_CHUNK];
                        D::chunk(st + r * S::W, c, colsLeft, v);
                        float s = 0.0f;
#pragma unroll
                        for (int j = 0; j < CRIA_CHUNK; j++) {
                            s += v[j] * xv[j];
                        }
                        acc[r] += s;
                    }
                }
            }
        }
        __syncwarp();  // nobody still reads this stage when a later issue overwrites it
    }
    cp_async_wait<0>();

#pragma unroll
    for (int r = 0; r < R; r++) {
        acc[r] = warp_sum(acc[r]);
    }
    if (normW != nullptr) {
        const float scale = 1.0f / sqrtf(warp_sum(ss) / (float) cols + eps);  // as rmsnorm.cu
#pragma unroll
        for (int r = 0; r < R; r++) {
            acc[r] *= scale;
        }
        if (normOut != nullptr && blockIdx.x == 0 && warp == 0) {
            for (int c = lane; c < cols; c += CRIA_WARP) {
                normOut[c] = x[c] * scale * normW[c];
            }
        }
    }
    if (lane != 0) {
        return;
    }
    if (mode == 2) {
        if constexpr (R >= 2) {
#pragma unroll
            for (int r = 0; r < H; r++) {
                if (ok[r]) {
                    out0[row0 + r] = gv_silu_mul(acc[r], acc[r + H]);
                    out1[row0 + r] = acc[r + H];
                }
            }
        }
    } else {
        float* out = which == 0 ? out0 : (which == 1 ? out1 : out2);
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (ok[r]) {
                out[row0 + r] = acc[r];
                if (mode == 1) {
                    res[row0 + r] += acc[r];
                }
            }
        }
    }
}

// Entry points: (w0, w1, w2, rows0, rows1, rows2, cols, x[n][xStride], xStride, n, out0, out1, out2, outStride0,
// outStride1, outStride2, res[n][resStride], resStride, mode, normW[cols] or null, eps, normOut[n][normOutStride]
// or null, normOutStride); n == 1 (the strides are unused), x 16-byte aligned; grid
// ceil(warps / GV_WARPS) with warps = sum_j ceil(rows_j / R) (modes 0, 1) or ceil(rows0 / (R / 2)) (mode 2),
// block GV_WARPS * 32, dynamic shared GV_WARPS * GV_SLICE bytes.
#define GV_PASS w0, w1, w2, rows0, rows1, rows2, cols, x, xStride, n, out0, out1, out2, outStride0, outStride1, outStride2, res, resStride, mode, normW, eps, normOut, normOutStride
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_f32(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqF32>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_f16(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqF16>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_bf16(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqBF16>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_q4_0(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqQ4_0>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_q4_1(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqQ4_1>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_q5_0(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqQ5_0>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_q5_1(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqQ5_1>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_q8_0(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqQ8_0>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_q2_k(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqQ2_K>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_q3_k(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqQ3_K>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_q4_k(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqQ4_K>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_q5_k(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqQ5_K>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_q6_k(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqQ6_K>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_iq4_nl(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqIQ4_NL>(GV_PASS); }
extern "C" __global__ void __launch_bounds__(GV_WARPS * 32) gemv_iq4_xs(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2, int rows0, int rows1, int rows2, int cols, const float* x, int xStride, int n, float* out0, float* out1, float* out2, int outStride0, int outStride1, int outStride2, float* res, int resStride, int mode, const float* normW, float eps, float* normOut, int normOutStride) { gemv_impl<DeqIQ4_XS>(GV_PASS); }
