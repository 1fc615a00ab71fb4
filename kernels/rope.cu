// Rotary position embedding of q and k in place, at each batch entry's position (llama pairs or NeoX halves).
// Family "rope"; launcher: cria.backend.cuda.RopeKernels.
#include "common.cuh"

// One thread per (entry, head of q then k, rotated pair), grid-stride. The angle is taken in
// double, as the reference does: pos * invFreq reaches 1e4 radians and more at long contexts,
// where a float angle would be off by ~1e-3. invFreq[p] = freqScale * base^(-2p/dims) / factor[p]
// is computed once on the host (llama3 factors and linear scaling included).
template <bool NEOX>
__device__ __forceinline__ void rope_impl(float* q, int qStride, int qHeads, float* k, int kStride, int kHeads,
                                          int headDim, int dims, const int* __restrict__ positions,
                                          const double* __restrict__ invFreq, int n) {
    const int half = dims / 2;
    const int heads = qHeads + kHeads;
    const long long total = (long long) n * heads * half;
    for (long long idx = (long long) blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long) gridDim.x * blockDim.x) {
        const int p = (int) (idx % half);
        const long long r = idx / half;
        const int hh = (int) (r % heads);
        const int i = (int) (r / heads);
        float* base = hh < qHeads ? q + (size_t) i * qStride + (size_t) hh * headDim
                                  : k + (size_t) i * kStride + (size_t) (hh - qHeads) * headDim;
        const int a = NEOX ? p : 2 * p;
        const int b = NEOX ? p + half : 2 * p + 1;
        double s, c;
        sincos((double) positions[i] * invFreq[p], &s, &c);
        const double x0 = base[a];
        const double x1 = base[b];
        base[a] = (float) (x0 * c - x1 * s);
        base[b] = (float) (x0 * s + x1 * c);
    }
}

// Entry points: (q[n][qStride], qStride, qHeads, k[n][kStride], kStride, kHeads, headDim, dims,
// positions[n], invFreq[dims / 2], n); 1-D grid-stride over n * (qHeads + kHeads) * dims / 2.
extern "C" __global__ void rope_norm(float* q, int qStride, int qHeads, float* k, int kStride, int kHeads, int headDim, int dims, const int* positions, const double* invFreq, int n) {
    rope_impl<false>(q, qStride, qHeads, k, kStride, kHeads, headDim, dims, positions, invFreq, n);
}
extern "C" __global__ void rope_neox(float* q, int qStride, int qHeads, float* k, int kStride, int kHeads, int headDim, int dims, const int* positions, const double* invFreq, int n) {
    rope_impl<true>(q, qStride, qHeads, k, kStride, kHeads, headDim, dims, positions, invFreq, n);
}
