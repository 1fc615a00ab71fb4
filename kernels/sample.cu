// Token selection on the device so that only token ids cross to the host: greedy argmax, softmax with a
// temperature, and top-k then top-p, min-p, temperature and a draw with a host-supplied uniform (cria.sample.Sampler's chain).
// Family "sample"; launcher: cria.backend.cuda.SampleKernels.
#include "common.cuh"

#define SAMPLE_THREADS 1024  // block size of both kernels (the launcher uses the same number)
#define TOPK_MAX 1024        // largest k sample_topk handles

// Argmax of row blockIdx.x: the largest value, the lowest index on ties (cria.sample.Sampler.argmax).
// NaNs never win; a row of NaNs gives 0.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sample_argmax(const float* __restrict__ logits, int stride, int vocab, int* __restrict__ out) {
    __shared__ float bestV[32];
    __shared__ int bestI[32];
    const float* row = logits + (size_t) blockIdx.x * stride;
    float bv = -INFINITY;
    int bi = vocab;  // "none yet": loses every tie
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        const float v = row[j];
        if (v > bv || (v == bv && j < bi)) {
            bv = v;
            bi = j;
        }
    }
    for (int o = CRIA_WARP / 2; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(CRIA_FULL_MASK, bv, o);
        const int oi = __shfl_xor_sync(CRIA_FULL_MASK, bi, o);
        if (ov > bv || (ov == bv && oi < bi)) {
            bv = ov;
            bi = oi;
        }
    }
    const int lane = threadIdx.x % CRIA_WARP;
    const int warp = threadIdx.x / CRIA_WARP;
    if (lane == 0) {
        bestV[warp] = bv;
        bestI[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int) (blockDim.x / CRIA_WARP); w++) {
            if (bestV[w] > bv || (bestV[w] == bv && bestI[w] < bi)) {
                bv = bestV[w];
                bi = bestI[w];
            }
        }
        out[blockIdx.x] = bi < vocab ? bi : 0;
    }
}

// Probabilities of row blockIdx.x at a temperature: out[j] = exp((l[j] - max) / t) / sum, for
// perplexity and log-probabilities without downloading logits. out may be logits.
// Entry point: (logits[rows][stride], stride, vocab, invTemperature, out[rows][outStride],
// outStride); grid rows, block SAMPLE_THREADS.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sample_softmax(const float* logits, int stride, int vocab, float invTemperature, float* out, int outStride) {
    __shared__ float red[32];
    const float* row = logits + (size_t) blockIdx.x * stride;
    float* o = out + (size_t) blockIdx.x * outStride;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        mx = fmaxf(mx, row[j]);
    }
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        sum += expf((row[j] - mx) * invTemperature);
    }
    // block_sum's barriers also order every read of row above before the writes below (out may be logits)
    const float inv = 1.0f / block_sum(sum, red);
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        o[j] = expf((row[j] - mx) * invTemperature) * inv;
    }
}

// An order-preserving unsigned key of a float (larger float, larger key); NaN gets 0, the bottom.
__device__ __forceinline__ uint32_t sort_key(float f) {
    if (f != f) {
        return 0u;
    }
    const uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Candidate a comes before b: larger logit first, then smaller token id (the host's order).
__device__ __forceinline__ bool before(uint32_t ka, int ia, uint32_t kb, int ib) {
    return ka > kb || (ka == kb && ia < ib);
}

// One block per row. 1) Radix-select the k-th largest key T, 8 bits per pass from the top, and
// how many of the keys equal to T belong to the top k (`need`). 2) Collect every key above T and
// the `need` lowest-id keys equal to T. 3) Bitonic-sort the k candidates into the host's order.
// 4) Thread 0 runs cria.sample.Sampler's tail in double: top-p over the candidates, min-p,
// temperature, and the draw r = u * total against the running sum.
// Entry point: (logits[rows][stride], stride, vocab, k, temperature, topP, minP, uniforms[rows],
// out[rows]); grid rows, block SAMPLE_THREADS; 1 <= k <= min(vocab, TOPK_MAX), temperature > 0.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sample_topk(const float* __restrict__ logits, int stride, int vocab, int k, float temperature, float topP, float minP, const double* __restrict__ uniforms, int* __restrict__ out) {
    __shared__ uint32_t hist[256];
    __shared__ uint32_t candKey[TOPK_MAX];
    __shared__ int candId[TOPK_MAX];
    __shared__ float probs[TOPK_MAX];
    __shared__ uint32_t warpGt[32];
    __shared__ uint32_t warpEq[32];
    __shared__ uint32_t sPrefix, sMask, sNeed;
    const float* row = logits + (size_t) blockIdx.x * stride;
    const int tid = threadIdx.x;
    const int lane = tid % CRIA_WARP;
    const int warp = tid / CRIA_WARP;
    const int warps = blockDim.x / CRIA_WARP;

    // 1) radix select
    if (tid == 0) {
        sPrefix = 0;
        sMask = 0;
        sNeed = (uint32_t) k;
    }
    for (int pass = 0; pass < 4; pass++) {
        const int shift = 24 - 8 * pass;
        for (int b = tid; b < 256; b += blockDim.x) {
            hist[b] = 0;
        }
        __syncthreads();  // hist cleared; sPrefix / sMask / sNeed of the previous pass visible
        const uint32_t prefix = sPrefix;
        const uint32_t mask = sMask;
        for (int j = tid; j < vocab; j += blockDim.x) {
            const uint32_t key = sort_key(row[j]);
            if ((key & mask) == prefix) {
                atomicAdd(&hist[(key >> shift) & 255u], 1u);
            }
        }
        __syncthreads();
        if (tid == 0) {
            const uint32_t need = sNeed;
            uint32_t above = 0;
            int b = 255;
            for (; b > 0; b--) {  // the bucket holding the need-th largest key of the prefix
                if (above + hist[b] >= need) {
                    break;
                }
                above += hist[b];
            }
            sNeed = need - above;
            sPrefix = prefix | ((uint32_t) b << shift);
            sMask = mask | (255u << shift);
        }
        __syncthreads();  // thread 0 has read hist before the next pass clears it
    }
    const uint32_t T = sPrefix;                // the k-th largest key
    const uint32_t need = sNeed;               // keys equal to T that belong to the top k
    const uint32_t nAbove = (uint32_t) k - need;  // keys above T: all of them belong

    // 2) gather candidates in id order: keys above T into [0, nAbove), the first `need` keys
    // equal to T into [nAbove, k). Ranks come from ballots, so the loop's exit is uniform.
    uint32_t aboveTaken = 0;
    uint32_t tiesTaken = 0;
    const uint32_t lanesBelow = (1u << lane) - 1u;
    for (int base = 0; base < vocab; base += blockDim.x) {
        const int j = base + tid;
        const uint32_t key = j < vocab ? sort_key(row[j]) : 0u;
        const bool gt = j < vocab && key > T;
        const bool eq = j < vocab && key == T;
        const unsigned bGt = __ballot_sync(CRIA_FULL_MASK, gt);
        const unsigned bEq = __ballot_sync(CRIA_FULL_MASK, eq);
        if (lane == 0) {
            warpGt[warp] = (uint32_t) __popc(bGt);
            warpEq[warp] = (uint32_t) __popc(bEq);
        }
        __syncthreads();
        uint32_t rGt = aboveTaken + (uint32_t) __popc(bGt & lanesBelow);
        uint32_t rEq = tiesTaken + (uint32_t) __popc(bEq & lanesBelow);
        uint32_t tGt = 0;
        uint32_t tEq = 0;
        for (int w = 0; w < warps; w++) {
            if (w < warp) {
                rGt += warpGt[w];
                rEq += warpEq[w];
            }
            tGt += warpGt[w];
            tEq += warpEq[w];
        }
        if (gt) {
            candKey[rGt] = key;
            candId[rGt] = j;
        }
        if (eq && rEq < need) {
            candKey[nAbove + rEq] = key;
            candId[nAbove + rEq] = j;
        }
        aboveTaken += tGt;
        tiesTaken += tEq;
        __syncthreads();  // warpGt / warpEq are rewritten next round
        if (aboveTaken == nAbove && tiesTaken >= need) {
            break;
        }
    }

    // 3) bitonic sort of the first P >= k slots, padding sorting last
    int P = 1;
    while (P < k) {
        P <<= 1;
    }
    for (int j = k + tid; j < P; j += blockDim.x) {
        candKey[j] = 0u;
        candId[j] = 0x7fffffff;
    }
    __syncthreads();
    for (int size = 2; size <= P; size <<= 1) {
        for (int stride2 = size >> 1; stride2 > 0; stride2 >>= 1) {
            for (int t = tid; t < P; t += blockDim.x) {
                const int o = t ^ stride2;
                if (o > t) {
                    const bool up = (t & size) == 0;  // this run ends up in the host's order
                    const bool swap = up ? before(candKey[o], candId[o], candKey[t], candId[t])
                                         : before(candKey[t], candId[t], candKey[o], candId[o]);
                    if (swap) {
                        const uint32_t kk = candKey[t];
                        candKey[t] = candKey[o];
                        candKey[o] = kk;
                        const int ii = candId[t];
                        candId[t] = candId[o];
                        candId[o] = ii;
                    }
                }
            }
            __syncthreads();
        }
    }

    // 4) the host sampler's tail, serially, in double
    if (tid == 0) {
        int n = k;
        const double max = (double) row[candId[0]];
        double sum = 0.0;
        for (int c = 0; c < n; c++) {
            const double e = exp((double) row[candId[c]] - max);
            probs[c] = (float) e;
            sum += e;
        }
        if (topP < 1.0f) {
            double cum = 0.0;
            int keep = n;
            for (int c = 0; c < n; c++) {
                cum += (double) probs[c] / sum;
                if (cum >= (double) topP) {
                    keep = c + 1;
                    break;
                }
            }
            n = keep;
        }
        if (minP > 0.0f) {
            const double floor = max + log((double) minP);
            int keep = 1;
            while (keep < n && (double) row[candId[keep]] >= floor) {
                keep++;
            }
            n = keep;
        }
        const double t = (double) temperature;
        double total = 0.0;
        for (int c = 0; c < n; c++) {
            const double e = exp(((double) row[candId[c]] - max) / t);
            probs[c] = (float) e;
            total += e;
        }
        const double r = uniforms[blockIdx.x] * total;
        double cum = 0.0;
        int chosen = candId[n - 1];
        for (int c = 0; c < n; c++) {
            cum += (double) probs[c];
            if (r < cum) {
                chosen = candId[c];
                break;
            }
        }
        out[blockIdx.x] = chosen;
    }
}
