// Flash attention for prompt batches on the tensor cores: causal, grouped-query, over the paged f16 KV cache, online
// softmax, the score matrix never leaving registers. Family "flash"; launcher: cria.backend.cuda.FlashKernels.
#include "mma.cuh"

// A block takes one tile of consecutive batch entries of one sequence (tiles[2 b], tiles[2 b + 1]:
// first entry and count) and one KV head, and computes all FA_ROWS = 64 query rows (entry, head)
// that share that KV head: row r is entry first + r / G and query head kvh G + r % G, with
// G = heads / kvHeads, so K and V are read once for the whole group. Warp w owns rows 16w..16w+15.
// Per tile of FA_KV positions (cp.async, two stages): S = Q K^T by mma (Q's fragments stay in
// registers), soft-capped when softcap > 0, masked causally per row (position t <= the row's own
// position; under a sliding window also t > position - window), an online softmax in base 2 (Q comes
// pre-scaled by log2(e) * scale), then O += P V by mma with P taken straight from S's accumulators
// (their layout is A's) and V through ldmatrix.trans. Under a window the tiles before the first one
// any row of the block sees are skipped; a row that sees nothing of a tile gets zeros from it.
#define FA_THREADS 128
#define FA_ROWS 64
#define FA_KV 64

template <int D>
__device__ __forceinline__ void flash_impl(const float* __restrict__ q, int qStride, const uint16_t* __restrict__ K,
                                           const uint16_t* __restrict__ V, const int* __restrict__ positions,
                                           const int* __restrict__ sequences, const int* __restrict__ table,
                                           int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim, int heads,
                                           int kvHeads, float scale, int window, float softcap,
                                           const int* __restrict__ tiles,
                                           float* __restrict__ out, int outStride) {
    constexpr int LD = D + 8;  // halves per shared row: 16 bytes of padding keep ldmatrix conflict-free
    constexpr int KS = D / 16; // k steps of S = Q K^T
    constexpr int ND = D / 8;  // n8 tiles of O
    CRIA_DYN_SMEM(uint16_t, smem);
    uint16_t* Qs = smem;                     // [FA_ROWS][LD]
    uint16_t* Ks = Qs + FA_ROWS * LD;        // [2][FA_KV][LD]
    uint16_t* Vs = Ks + 2 * FA_KV * LD;      // [2][FA_KV][LD]
    const int tid = threadIdx.x;
    const int lane = tid % CRIA_WARP;
    const int warp = tid / CRIA_WARP;
    const int first = tiles[2 * blockIdx.x];
    const int count = tiles[2 * blockIdx.x + 1];
    const int kvh = blockIdx.y;
    const int G = heads / kvHeads;
    const int rowsUsed = count * G;
    const int seq = sequences[first];
    const int* pageOf = table + (size_t) seq * maxPagesPerSeq;
    const size_t layerPages = (size_t) layer * pages;

    int maxPos = 0;
    int minPos = positions[first];
    for (int e = 0; e < count; e++) {
        maxPos = imax(maxPos, positions[first + e]);
        minPos = imin(minPos, positions[first + e]);
    }
    // this thread's two rows (g and g + 8 of its warp's sixteen) and their causal limits (-1: no row)
    const int r0 = 16 * warp + lane / 4;
    const int r1 = r0 + 8;
    const int lim0 = r0 < rowsUsed ? positions[first + r0 / G] : -1;
    const int lim1 = r1 < rowsUsed ? positions[first + r1 / G] : -1;
    // the first position each row sees (0, or lim - window + 1 under a window)
    const int low0 = window > 0 ? lim0 - window + 1 : 0;
    const int low1 = window > 0 ? lim1 - window + 1 : 0;
    // soft-cap in base 2: the scores are scale * q.k * log2(e)
    const float cap2 = softcap * 1.4426950408889634f;

    // Q rows, scaled, as f16 (rows past the tile are zeros)
    const float qscale = scale * 1.4426950408889634f;
    for (int idx = tid; idx < FA_ROWS * D / 4; idx += FA_THREADS) {
        const int r = idx / (D / 4);
        const int d = 4 * (idx % (D / 4));
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (r < rowsUsed) {
            const float* src = q + (size_t) (first + r / G) * qStride + (size_t) (kvh * G + r % G) * D + d;
            CRIA_CHECK_ALIGN(src, 16);
            v = *reinterpret_cast<const float4*>(src);
        }
        uint2 h;
        h.x = pack_h2(v.x * qscale, v.y * qscale);
        h.y = pack_h2(v.z * qscale, v.w * qscale);
        *reinterpret_cast<uint2*>(Qs + r * LD + d) = h;
    }

    // Queues tile j of K and V into stage s (positions past maxPos become zeros).
    auto load = [&](int j, int s) {
        uint16_t* ks = Ks + s * FA_KV * LD;
        uint16_t* vs = Vs + s * FA_KV * LD;
        for (int p = tid; p < FA_KV * (D / 8); p += FA_THREADS) {
            const int r = p / (D / 8);
            const int c = 8 * (p % (D / 8));
            const int t = j * FA_KV + r;
            const bool ok = t <= maxPos;
            size_t at = 0;
            if (ok) {
                at = ((layerPages + pageOf[t / pageSize]) * pageSize + t % pageSize) * kvDim + (size_t) kvh * D + c;
            }
            cp_async16(ks + r * LD + c, K + at, ok);
            cp_async16(vs + r * LD + c, V + at, ok);
        }
        cp_async_commit();
    };

    const int ntiles = maxPos / FA_KV + 1;
    const int jStart = window > 0 ? imax(0, minPos - window + 1) / FA_KV : 0;  // no row sees a tile before this
    load(jStart, jStart & 1);
    __syncthreads();  // Qs written
    uint32_t qa[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ks++) {
        ldsm_x4(qa[ks], Qs + (16 * warp + lane % 16) * LD + ks * 16 + (lane / 16) * 8);
    }

    float o[ND][4];
#pragma unroll
    for (int nd = 0; nd < ND; nd++) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            o[nd][i] = 0.0f;
        }
    }
    float m0 = -INFINITY, m1 = -INFINITY;  // running maxima of rows r0, r1 (quad-uniform)
    float l0 = 0.0f, l1 = 0.0f;            // this thread's share of the running sums

    for (int j = jStart; j < ntiles; j++) {
        cp_async_wait<0>();
        __syncthreads();  // tile j landed in every thread's view; nobody reads the other stage any more
        if (j + 1 < ntiles) {
            load(j + 1, (j + 1) & 1);
        }
        const uint16_t* ks = Ks + (j & 1) * FA_KV * LD;
        const uint16_t* vs = Vs + (j & 1) * FA_KV * LD;

        float s[FA_KV / 8][4];
#pragma unroll
        for (int ni = 0; ni < FA_KV / 8; ni++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                s[ni][i] = 0.0f;
            }
        }
#pragma unroll
        for (int kk = 0; kk < KS; kk++) {
#pragma unroll
            for (int nj = 0; nj < FA_KV / 16; nj++) {
                uint32_t b[4];
                ldsm_x4(b, ks + (nj * 16 + (lane / 16) * 8 + lane % 8) * LD + kk * 16 + ((lane / 8) % 2) * 8);
                mma_f16(s[2 * nj], qa[kk], b);
                mma_f16(s[2 * nj + 1], qa[kk], b + 2);
            }
        }

        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int ni = 0; ni < FA_KV / 8; ni++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int t = j * FA_KV + ni * 8 + 2 * (lane % 4) + (i % 2);
                if (softcap > 0.0f) {
                    s[ni][i] = cap2 * tanhf(s[ni][i] / cap2);
                }
                if (t > (i < 2 ? lim0 : lim1) || t < (i < 2 ? low0 : low1)) {
                    s[ni][i] = -INFINITY;
                }
            }
            mx0 = fmaxf(mx0, fmaxf(s[ni][0], s[ni][1]));
            mx1 = fmaxf(mx1, fmaxf(s[ni][2], s[ni][3]));
        }
        // the four lanes of a quad hold one row between them
        mx0 = fmaxf(mx0, __shfl_xor_sync(CRIA_FULL_MASK, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(CRIA_FULL_MASK, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(CRIA_FULL_MASK, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(CRIA_FULL_MASK, mx1, 2));
        const float n0 = fmaxf(m0, mx0);
        const float n1 = fmaxf(m1, mx1);
        const float base0 = n0 == -INFINITY ? 0.0f : n0;  // a row with nothing visible yet stays at zeros
        const float base1 = n1 == -INFINITY ? 0.0f : n1;
        const float alpha0 = exp2f(m0 - base0);
        const float alpha1 = exp2f(m1 - base1);
        m0 = n0;
        m1 = n1;
        float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
        for (int ni = 0; ni < FA_KV / 8; ni++) {
            s[ni][0] = exp2f(s[ni][0] - base0);
            s[ni][1] = exp2f(s[ni][1] - base0);
            s[ni][2] = exp2f(s[ni][2] - base1);
            s[ni][3] = exp2f(s[ni][3] - base1);
            ps0 += s[ni][0] + s[ni][1];
            ps1 += s[ni][2] + s[ni][3];
        }
        l0 = l0 * alpha0 + ps0;
        l1 = l1 * alpha1 + ps1;
#pragma unroll
        for (int nd = 0; nd < ND; nd++) {
            o[nd][0] *= alpha0;
            o[nd][1] *= alpha0;
            o[nd][2] *= alpha1;
            o[nd][3] *= alpha1;
        }
#pragma unroll
        for (int kk = 0; kk < FA_KV / 16; kk++) {
            uint32_t pa[4];
            pa[0] = pack_h2(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = pack_h2(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = pack_h2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = pack_h2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int np = 0; np < ND / 2; np++) {
                uint32_t b[4];
                ldsm_x4_trans(b, vs + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * LD + np * 16 + (lane / 16) * 8);
                mma_f16(o[2 * np], pa, b);
                mma_f16(o[2 * np + 1], pa, b + 2);
            }
        }
    }

    l0 += __shfl_xor_sync(CRIA_FULL_MASK, l0, 1);
    l0 += __shfl_xor_sync(CRIA_FULL_MASK, l0, 2);
    l1 += __shfl_xor_sync(CRIA_FULL_MASK, l1, 1);
    l1 += __shfl_xor_sync(CRIA_FULL_MASK, l1, 2);
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int r = half == 0 ? r0 : r1;
        if (r < rowsUsed) {
            const float inv = 1.0f / (half == 0 ? l0 : l1);
            float* dst = out + (size_t) (first + r / G) * outStride + (size_t) (kvh * G + r % G) * D + 2 * (lane % 4);
#pragma unroll
            for (int nd = 0; nd < ND; nd++) {
                CRIA_CHECK_ALIGN(dst + nd * 8, 8);
                *reinterpret_cast<float2*>(dst + nd * 8) = make_float2(o[nd][2 * half] * inv, o[nd][2 * half + 1] * inv);
            }
        }
    }
}

// Entry points: (q[n][qStride], qStride, K, V, positions[n], sequences[n], table, maxPagesPerSeq, pageSize,
// pages, layer, kvDim, heads, kvHeads, scale, window, softcap, tiles[2 T], out[n][outStride], outStride); grid (T, kvHeads),
// block FA_THREADS, dynamic shared (FA_ROWS + 4 FA_KV) (D + 8) 2 bytes. qStride a multiple of 4, outStride of 2.
extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_f16_64(const float* q, int qStride, const uint16_t* K, const uint16_t* V, const int* positions, const int* sequences, const int* table, int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim, int heads, int kvHeads, float scale, int window, float softcap, const int* tiles, float* out, int outStride) {
    flash_impl<64>(q, qStride, K, V, positions, sequences, table, maxPagesPerSeq, pageSize, pages, layer, kvDim, heads, kvHeads, scale, window, softcap, tiles, out, outStride);
}
extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_f16_128(const float* q, int qStride, const uint16_t* K, const uint16_t* V, const int* positions, const int* sequences, const int* table, int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim, int heads, int kvHeads, float scale, int window, float softcap, const int* tiles, float* out, int outStride) {
    flash_impl<128>(q, qStride, K, V, positions, sequences, table, maxPagesPerSeq, pageSize, pages, layer, kvDim, heads, kvHeads, scale, window, softcap, tiles, out, outStride);
}
