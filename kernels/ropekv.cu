// Rope of q and k fused with the KV-cache write: one pass rotates q and k in place and stores k (rotated) and v
// into their pages. Family "ropekv"; launcher: cria.backend.cuda.RopeKvKernels. Same arithmetic as rope.cu + store_kv.cu.
#include "common.cuh"

__device__ __forceinline__ void kv_put(uint16_t* p, size_t i, float v) { p[i] = f2h(v); }
__device__ __forceinline__ void kv_put(float* p, size_t i, float v) { p[i] = v; }

// Pair slot p of a head covers elements (a, b): the rotated pair p < dims / 2 (llama: 2p, 2p + 1;
// NeoX: p, p + dims / 2), or, past the rotated part, two unrotated elements that are only stored.
// Grid-stride over n x (qHeads + kHeads) x headDim / 2 pair slots, then over n x kvDim values of v.
template <bool NEOX, class T>
__device__ __forceinline__ void ropekv_impl(float* q, int qStride, int qHeads, float* k, int kStride, int kHeads,
                                            const float* __restrict__ v, int vStride, int headDim, int dims,
                                            const int* __restrict__ positions, const double* __restrict__ invFreq, int n,
                                            T* __restrict__ K, T* __restrict__ V, const int* __restrict__ sequences,
                                            const int* __restrict__ table, int maxPagesPerSeq, int pageSize, int pages,
                                            int layer, int kvDim) {
    const int half = dims / 2;
    const int slots = headDim / 2;
    const int heads = qHeads + kHeads;
    const long long stride = (long long) gridDim.x * blockDim.x;
    const long long start = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    const long long total = (long long) n * heads * slots;
    for (long long idx = start; idx < total; idx += stride) {
        const int p = (int) (idx % slots);
        const long long r = idx / slots;
        const int hh = (int) (r % heads);
        const int i = (int) (r / heads);
        const bool isK = hh >= qHeads;
        float* base = isK ? k + (size_t) i * kStride + (size_t) (hh - qHeads) * headDim
                          : q + (size_t) i * qStride + (size_t) hh * headDim;
        int a, b;
        if (p < half) {
            a = NEOX ? p : 2 * p;
            b = NEOX ? p + half : 2 * p + 1;
        } else {
            a = NEOX ? dims + 2 * (p - half) : 2 * p;
            b = a + 1;
        }
        float ya = base[a];
        float yb = base[b];
        const int pos = positions[i];
        if (p < half) {
            double s, c;
            sincos((double) pos * invFreq[p], &s, &c);
            const double x0 = ya;
            const double x1 = yb;
            ya = (float) (x0 * c - x1 * s);
            yb = (float) (x0 * s + x1 * c);
            base[a] = ya;
            base[b] = yb;
        }
        if (isK) {
            const int page = table[(size_t) sequences[i] * maxPagesPerSeq + pos / pageSize];
            const size_t at = (((size_t) layer * pages + page) * pageSize + pos % pageSize) * kvDim
                            + (size_t) (hh - qHeads) * headDim;
            kv_put(K, at + a, ya);
            kv_put(K, at + b, yb);
        }
    }
    const long long values = (long long) n * kvDim;
    for (long long idx = start; idx < values; idx += stride) {
        const int d = (int) (idx % kvDim);
        const int i = (int) (idx / kvDim);
        const int pos = positions[i];
        const int page = table[(size_t) sequences[i] * maxPagesPerSeq + pos / pageSize];
        kv_put(V, (((size_t) layer * pages + page) * pageSize + pos % pageSize) * kvDim + d, v[(size_t) i * vStride + d]);
    }
}

// Entry points: (q[n][qStride], qStride, qHeads, k[n][kStride], kStride, kHeads, v[n][vStride], vStride, headDim,
// dims, positions[n], invFreq[dims / 2], n, K, V, sequences[n], table, maxPagesPerSeq, pageSize, pages, layer,
// kvDim); kHeads * headDim == kvDim; 1-D grid-stride.
extern "C" __global__ void ropekv_norm_f16(float* q, int qStride, int qHeads, float* k, int kStride, int kHeads, const float* v, int vStride, int headDim, int dims, const int* positions, const double* invFreq, int n, uint16_t* K, uint16_t* V, const int* sequences, const int* table, int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim) {
    ropekv_impl<false>(q, qStride, qHeads, k, kStride, kHeads, v, vStride, headDim, dims, positions, invFreq, n, K, V, sequences, table, maxPagesPerSeq, pageSize, pages, layer, kvDim);
}
extern "C" __global__ void ropekv_neox_f16(float* q, int qStride, int qHeads, float* k, int kStride, int kHeads, const float* v, int vStride, int headDim, int dims, const int* positions, const double* invFreq, int n, uint16_t* K, uint16_t* V, const int* sequences, const int* table, int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim) {
    ropekv_impl<true>(q, qStride, qHeads, k, kStride, kHeads, v, vStride, headDim, dims, positions, invFreq, n, K, V, sequences, table, maxPagesPerSeq, pageSize, pages, layer, kvDim);
}
extern "C" __global__ void ropekv_norm_f32(float* q, int qStride, int qHeads, float* k, int kStride, int kHeads, const float* v, int vStride, int headDim, int dims, const int* positions, const double* invFreq, int n, float* K, float* V, const int* sequences, const int* table, int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim) {
    ropekv_impl<false>(q, qStride, qHeads, k, kStride, kHeads, v, vStride, headDim, dims, positions, invFreq, n, K, V, sequences, table, maxPagesPerSeq, pageSize, pages, layer, kvDim);
}
extern "C" __global__ void ropekv_neox_f32(float* q, int qStride, int qHeads, float* k, int kStride, int kHeads, const float* v, int vStride, int headDim, int dims, const int* positions, const double* invFreq, int n, float* K, float* V, const int* sequences, const int* table, int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim) {
    ropekv_impl<true>(q, qStride, qHeads, k, kStride, kHeads, v, vStride, headDim, dims, positions, invFreq, n, K, V, sequences, table, maxPagesPerSeq, pageSize, pages, layer, kvDim);
}
