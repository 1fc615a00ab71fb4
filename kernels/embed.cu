// Embedding lookup for every weight type: x[i] = row tokens[i] of the table, dequantized to f32.
// Family "embed"; launcher: cria.backend.cuda.EmbedKernels.
#include "quant.cuh"

// Thread t of block (bx, i) decodes chunk bx * blockDim.x + t (32 values) of row tokens[i]: a
// token's row is read once, and consecutive threads read consecutive blocks of it.
template <class D>
__device__ __forceinline__ void embed_impl(const uint8_t* __restrict__ table, int cols, const int* __restrict__ tokens,
                                           float* __restrict__ out, int outStride) {
    const int i = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= row_chunks(cols)) {
        return;
    }
    const uint8_t* row = table + (size_t) tokens[i] * row_bytes<D>(cols);
    float v[CRIA_CHUNK];
    D::chunk(row, c, cols, v);
    float* o = out + (size_t) i * outStride + CRIA_CHUNK * c;
    if (cols % CRIA_CHUNK == 0 && outStride % 4 == 0) {
#pragma unroll
        for (int k = 0; k < CRIA_CHUNK / 4; k++) {
            store_f4(o + 4 * k, v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]);
        }
    } else {
        const int left = cols - CRIA_CHUNK * c;
#pragma unroll
        for (int j = 0; j < CRIA_CHUNK; j++) {
            if (j < left) {
                o[j] = v[j];
            }
        }
    }
}

// Entry points: (table, cols, tokens[n], out[n][outStride], outStride); grid (ceil(chunks / block), n).
extern "C" __global__ void embed_f32(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqF32>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_f16(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqF16>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_bf16(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqBF16>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_q4_0(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqQ4_0>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_q4_1(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqQ4_1>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_q5_0(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqQ5_0>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_q5_1(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqQ5_1>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_q8_0(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqQ8_0>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_q2_k(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqQ2_K>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_q3_k(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqQ3_K>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_q4_k(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqQ4_K>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_q5_k(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqQ5_K>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_q6_k(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqQ6_K>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_iq4_nl(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqIQ4_NL>(table, cols, tokens, out, outStride);
}
extern "C" __global__ void embed_iq4_xs(const uint8_t* table, int cols, const int* tokens, float* out, int outStride) {
    embed_impl<DeqIQ4_XS>(table, cols, tokens, out, outStride);
}
