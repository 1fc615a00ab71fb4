// Appends a batch's keys and values (f32 rows) to the paged KV cache of one layer, as f16 or f32.
// Family "store_kv"; launcher: cria.backend.cuda.StoreKvKernels. Layout: cria.backend.KvCache.
#include "common.cuh"

__device__ __forceinline__ void put(uint16_t* p, size_t i, float v) { p[i] = f2h(v); }
__device__ __forceinline__ void put(float* p, size_t i, float v) { p[i] = v; }

// Thread d of block (bx, i) stores element d of entry i's key and value at the slot its
// (sequence, position) maps to: page = table[seq * maxPagesPerSeq + pos / pageSize], element
// ((layer * pages + page) * pageSize + pos % pageSize) * kvDim + d.
template <class T>
__device__ __forceinline__ void store_impl(T* __restrict__ K, T* __restrict__ V, const float* __restrict__ k,
                                           int kStride, const float* __restrict__ v, int vStride, int kvDim,
                                           const int* __restrict__ positions, const int* __restrict__ sequences,
                                           const int* __restrict__ table, int maxPagesPerSeq, int pageSize,
                                           int pages, int layer) {
    const int i = blockIdx.y;
    const int d = blockIdx.x * blockDim.x + threadIdx.x;
    if (d >= kvDim) {
        return;
    }
    const int pos = positions[i];
    const int page = table[(size_t) sequences[i] * maxPagesPerSeq + pos / pageSize];
    const size_t at = (((size_t) layer * pages + page) * pageSize + pos % pageSize) * kvDim + d;
    put(K, at, k[(size_t) i * kStride + d]);
    put(V, at, v[(size_t) i * vStride + d]);
}

// Entry points: (K, V, k[n][kStride], kStride, v[n][vStride], vStride, kvDim, positions[n],
// sequences[n], table, maxPagesPerSeq, pageSize, pages, layer); grid (ceil(kvDim / block), n).
extern "C" __global__ void store_kv_f16(uint16_t* K, uint16_t* V, const float* k, int kStride, const float* v, int vStride, int kvDim, const int* positions, const int* sequences, const int* table, int maxPagesPerSeq, int pageSize, int pages, int layer) {
    store_impl(K, V, k, kStride, v, vStride, kvDim, positions, sequences, table, maxPagesPerSeq, pageSize, pages, layer);
}
extern "C" __global__ void store_kv_f32(float* K, float* V, const float* k, int kStride, const float* v, int vStride, int kvDim, const int* positions, const int* sequences, const int* table, int maxPagesPerSeq, int pageSize, int pages, int layer) {
    store_impl(K, V, k, kStride, v, vStride, kvDim, positions, sequences, table, maxPagesPerSeq, pageSize, pages, layer);
}
