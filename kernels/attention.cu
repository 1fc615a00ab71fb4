// Causal grouped-query attention of one query per batch entry over the paged KV cache (flash-decoding style):
// a block scores one span of one head's positions; long sequences split over blocks, attention_merge joins them.
// Family "attention"; launcher: cria.backend.cuda.AttentionKernels. Cache layout: cria.backend.KvCache.
#include "common.cuh"

#define ATT_THREADS 128   // block size (the launcher uses the same number)
#define ATT_TILE 128      // positions scored per pass over shared memory
#define ATT_MAX_HD 256    // largest head size; each thread owns ATT_MAX_HD / ATT_THREADS outputs
#define ATT_ACC (ATT_MAX_HD / ATT_THREADS)

__device__ __forceinline__ float kv_at(const uint16_t* p, size_t i) { return h2f(p[i]); }
__device__ __forceinline__ float kv_at(const float* p, size_t i) { return p[i]; }

// Block (s, h, i): query head h of batch entry i over positions [lo + s * span, min(len, lo + (s+1) * span))
// of its sequence, len = position(i) + 1, lo = max(0, len - window) under a sliding window (else 0): the
// positions before the window are never read. span 0 means ceil((len - lo) / splits) for each entry: the launch
// then stays the same as the sequence grows (a CUDA graph can replay it). Each score is scale * q.k, then
// softcap * tanh(score / softcap) when softcap > 0. The span is walked in tiles of ATT_TILE positions with
// an online softmax: m is the running maximum score, l the running sum of exp(score - m), acc the
// running sum of exp(score - m) * V. Warp w scores positions w, w + 4, ... of a tile (lanes split
// the head's dimensions); thread t owns output dimensions t and t + ATT_THREADS.
// With one block per head (gridDim.x == 1) the result goes to out; otherwise the unnormalized
// acc with its m and l go to part[i][h][s][0 .. headDim + 2) for attention_merge.
template <class T>
__device__ __forceinline__ void attention_impl(const float* __restrict__ q, int qStride, const T* __restrict__ K,
                                               const T* __restrict__ V, const int* __restrict__ positions,
                                               const int* __restrict__ sequences, const int* __restrict__ table,
                                               int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim,
                                               int heads, int kvHeads, int headDim, float scale, int window,
                                               float softcap, int span,
                                               float* __restrict__ out, int outStride, float* __restrict__ part) {
    __shared__ float qs[ATT_MAX_HD];
    __shared__ float sc[ATT_TILE];
    __shared__ size_t rowAt[ATT_TILE];
    __shared__ float red[32];
    const int s = blockIdx.x;
    const int h = blockIdx.y;
    const int i = blockIdx.z;
    const int tid = threadIdx.x;
    const int lane = tid % CRIA_WARP;
    const int warp = tid / CRIA_WARP;
    const int warps = ATT_THREADS / CRIA_WARP;
    const int len = positions[i] + 1;
    const int kvh = h / (heads / kvHeads);
    const int lo = window > 0 ? imax(0, len - window) : 0;
    const int sp = span > 0 ? span : (len - lo + gridDim.x - 1) / gridDim.x;  // 0: this entry's positions over the splits
    const int t0 = lo + s * sp;
    const int t1 = imin(len, t0 + sp);
    const int* pageOf = table + (size_t) sequences[i] * maxPagesPerSeq;
    const size_t layerPages = (size_t) layer * pages;

    for (int d = tid; d < headDim; d += ATT_THREADS) {
        qs[d] = q[(size_t) i * qStride + (size_t) h * headDim + d] * scale;
    }
    __syncthreads();

    float m = -INFINITY;
    float l = 0.0f;
    float acc[ATT_ACC];
#pragma unroll
    for (int r = 0; r < ATT_ACC; r++) {
        acc[r] = 0.0f;
    }
    for (int tb = t0; tb < t1; tb += ATT_TILE) {  // the same trip count in every thread
        const int tn = imin(ATT_TILE, t1 - tb);
        for (int j = warp; j < tn; j += warps) {
            const int t = tb + j;
            const size_t row = ((layerPages + pageOf[t / pageSize]) * pageSize + t % pageSize) * kvDim
                             + (size_t) kvh * headDim;
            float dot = 0.0f;
            for (int d = lane; d < headDim; d += CRIA_WARP) {
                dot += qs[d] * kv_at(K, row + d);
            }
            dot = warp_sum(dot);
            if (softcap > 0.0f) {
                dot = softcap * tanhf(dot / softcap);
            }
            if (lane == 0) {
                sc[j] = dot;
                rowAt[j] = row;
            }
        }
        __syncthreads();
        float tmax = -INFINITY;
        for (int j = tid; j < tn; j += ATT_THREADS) {
            tmax = fmaxf(tmax, sc[j]);
        }
        // block_max's barriers also order every thread's reads of sc above before the writes below.
        const float mNew = fmaxf(m, block_max(tmax, red));
        const float alpha = expf(m - mNew);  // 0 on the first tile (m = -inf)
        float psum = 0.0f;
        for (int j = tid; j < tn; j += ATT_THREADS) {
            const float p = expf(sc[j] - mNew);
            sc[j] = p;
            psum += p;
        }
        // block_sum's barriers make every probability visible before the V pass reads them all.
        l = l * alpha + block_sum(psum, red);
        m = mNew;
#pragma unroll
        for (int r = 0; r < ATT_ACC; r++) {
            const int d = tid + r * ATT_THREADS;
            if (d < headDim) {
                float a = acc[r] * alpha;
                for (int j = 0; j < tn; j++) {
                    a += sc[j] * kv_at(V, rowAt[j] + d);
                }
                acc[r] = a;
            }
        }
        __syncthreads();  // the next tile overwrites sc and rowAt
    }

    if (gridDim.x == 1) {
        float* o = out + (size_t) i * outStride + (size_t) h * headDim;
#pragma unroll
        for (int r = 0; r < ATT_ACC; r++) {
            const int d = tid + r * ATT_THREADS;
            if (d < headDim) {
                o[d] = acc[r] / l;
            }
        }
    } else {
        // An empty span (t0 >= len) leaves m = -inf, l = 0, acc = 0: the merge skips it.
        float* p = part + (((size_t) i * heads + h) * gridDim.x + s) * (size_t) (headDim + 2);
#pragma unroll
        for (int r = 0; r < ATT_ACC; r++) {
            const int d = tid + r * ATT_THREADS;
            if (d < headDim) {
                p[d] = acc[r];
            }
        }
        if (tid == 0) {
            p[headDim] = m;
            p[headDim + 1] = l;
        }
    }
}

// Entry points: (q[n][qStride], qStride, K, V, positions[n], sequences[n], table, maxPagesPerSeq,
// pageSize, pages, layer, kvDim, heads, kvHeads, headDim, scale, window, softcap, span, out[n][outStride],
// outStride, part); grid (splits, heads, n), block ATT_THREADS.
extern "C" __global__ void __launch_bounds__(ATT_THREADS) attention_f16(const float* q, int qStride, const uint16_t* K, const uint16_t* V, const int* positions, const int* sequences, const int* table, int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim, int heads, int kvHeads, int headDim, float scale, int window, float softcap, int span, float* out, int outStride, float* part) {
    attention_impl(q, qStride, K, V, positions, sequences, table, maxPagesPerSeq, pageSize, pages, layer, kvDim, heads, kvHeads, headDim, scale, window, softcap, span, out, outStride, part);
}
extern "C" __global__ void __launch_bounds__(ATT_THREADS) attention_f32(const float* q, int qStride, const float* K, const float* V, const int* positions, const int* sequences, const int* table, int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim, int heads, int kvHeads, int headDim, float scale, int window, float softcap, int span, float* out, int outStride, float* part) {
    attention_impl(q, qStride, K, V, positions, sequences, table, maxPagesPerSeq, pageSize, pages, layer, kvDim, heads, kvHeads, headDim, scale, window, softcap, span, out, outStride, part);
}

// Joins the splits of block (h, i): with M the largest partial maximum, the output is
// sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M), skipping empty splits (l_s = 0).
// Entry point: (part, heads, headDim, splits, out[n][outStride], outStride); grid (heads, n), block ATT_THREADS.
extern "C" __global__ void __launch_bounds__(ATT_THREADS) attention_merge(const float* __restrict__ part, int heads, int headDim, int splits, float* __restrict__ out, int outStride) {
    const int h = blockIdx.x;
    const int i = blockIdx.y;
    const size_t stride = (size_t) headDim + 2;
    const float* p = part + ((size_t) i * heads + h) * splits * stride;
    float mx = -INFINITY;
    for (int s = 0; s < splits; s++) {
        if (p[s * stride + headDim + 1] > 0.0f) {
            mx = fmaxf(mx, p[s * stride + headDim]);
        }
    }
    float lsum = 0.0f;
    for (int s = 0; s < splits; s++) {
        const float ls = p[s * stride + headDim + 1];
        if (ls > 0.0f) {
            lsum += ls * expf(p[s * stride + headDim] - mx);
        }
    }
    float* o = out + (size_t) i * outStride + (size_t) h * headDim;
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
        float a = 0.0f;
        for (int s = 0; s < splits; s++) {
            if (p[s * stride + headDim + 1] > 0.0f) {
                a += p[s * stride + d] * expf(p[s * stride + headDim] - mx);
            }
        }
        o[d] = a / lsum;
    }
}
