/* What the two matrix-product families share (internal to the native kernels): the ISA switch,
 * the 16-row panel, the 16x16 dword transpose, and each family's entry. matmul.c dispatches to
 * matmul_quant.c (quantized weights, 8-bit activations) or matmul_float.c (F32/F16/BF16 weights). */
#ifndef CRIA_MATMUL_H
#define CRIA_MATMUL_H
#include <stdint.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define CRIA_VNNI 1
#else
#define CRIA_VNNI 0
#endif

#define PR 16 /* weight rows per panel: one per 32-bit lane of a 512-bit register */

#if CRIA_VNNI
/* 16 rows of 16 dwords -> 16 columns. */
static inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    /* x[g][c]: lane l holds column 4l + c of rows 4g .. 4g + 3 */
    __m512i x[4][4];
    for (int g = 0; g < 4; g++) {
        x[g][0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        x[g][1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        x[g][2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        x[g][3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int c = 0; c < 4; c++) {
        __m512i a = _mm512_shuffle_i32x4(x[0][c], x[1][c], 0x44);
        __m512i b = _mm512_shuffle_i32x4(x[0][c], x[1][c], 0xEE);
        __m512i cc = _mm512_shuffle_i32x4(x[2][c], x[3][c], 0x44);
        __m512i d = _mm512_shuffle_i32x4(x[2][c], x[3][c], 0xEE);
        r[c] = _mm512_shuffle_i32x4(a, cc, 0x88);
        r[4 + c] = _mm512_shuffle_i32x4(a, cc, 0xDD);
        r[8 + c] = _mm512_shuffle_i32x4(b, d, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(b, d, 0xDD);
    }
}
#endif

/* The families, hidden from the library's exported symbols (cria.h lists those). Arguments as
 * cria_matmul's; x is activation rows (quantized) or float rows (float). */
__attribute__((visibility("hidden"))) int32_t matmul_quant(int32_t type, const uint8_t *w, int64_t wrb, const uint8_t *packed,
                                                           int32_t r0, int32_t r1, int32_t k, const uint8_t *x, int64_t xs, int32_t n, float *out,
                                                           int64_t os, uint8_t *scratch);
__attribute__((visibility("hidden"))) int32_t matmul_float(int32_t type, const uint8_t *w, int64_t wrb, int32_t r0, int32_t r1,
                                                           int32_t k, const float *x, int64_t xs, int32_t n, float *out,
                                                           int64_t os, uint8_t *scratch);

/* The packed form of a quantized weight (cria_packed_bytes, cria_pack). */
__attribute__((visibility("hidden"))) int64_t matmul_quant_packed_bytes(int32_t type, int32_t rows, int32_t k);
__attribute__((visibility("hidden"))) int32_t matmul_quant_pack(int32_t type, const uint8_t *w, int64_t wrb, int32_t p0, int32_t p1,
                                                                int32_t k, uint8_t *packed);

/* Bytes of per-thread scratch each family needs (before cria_matmul_scratch_bytes' alignment slack). */
__attribute__((visibility("hidden"))) int64_t matmul_quant_scratch(int32_t n);
__attribute__((visibility("hidden"))) int64_t matmul_float_scratch(int32_t k, int32_t n);

#endif
