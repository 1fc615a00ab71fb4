/* Weight unpacking: one group of a row of any ggml block type to unsigned bytes plus scales.
 * After unpacking, value i of the group is sc16[i/16] * (u[i] - off) - mn16[i/16], where
 * off = 1 << shift (or 0 when shift < 0): one representation for every type, so one dot kernel
 * serves them all. Layouts are ggml's (checked bit for bit by the Java codecs' tests). */
#ifndef CRIA_UNPACK_H
#define CRIA_UNPACK_H
#include <stdint.h>
#include <string.h>
#include "cria.h"
#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

static inline float f16f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    uint32_t sign = (uint32_t) (h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

static const int8_t IQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* Geometry of a type as the kernels see it: values per group, bytes per group, offset shift, has mins. */
typedef struct {
    int group;
    int bytes;
    int shift;
    int mins;
} kind;

static inline int kind_of(int32_t type, kind *k) {
    switch (type) {
        case T_Q4_0: *k = (kind) {64, 36, 3, 0}; return 1;
        case T_Q4_1: *k = (kind) {64, 40, -1, 1}; return 1;
        case T_Q5_0: *k = (kind) {64, 44, 4, 0}; return 1;
        case T_Q5_1: *k = (kind) {64, 48, -1, 1}; return 1;
        case T_Q8_0: *k = (kind) {64, 68, 7, 0}; return 1;
        case T_IQ4_NL: *k = (kind) {64, 36, 7, 0}; return 1;
        case T_Q2_K: *k = (kind) {256, 84, -1, 1}; return 1;
        case T_Q3_K: *k = (kind) {256, 110, 2, 0}; return 1;
        case T_Q4_K: *k = (kind) {256, 144, -1, 1}; return 1;
        case T_Q5_K: *k = (kind) {256, 176, -1, 1}; return 1;
        case T_Q6_K: *k = (kind) {256, 210, 5, 0}; return 1;
        case T_IQ4_XS: *k = (kind) {256, 136, 7, 0}; return 1;
        default: return 0;
    }
}

static inline void k4_scale_min(int j, const uint8_t *q, int *d, int *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Unpacks one group at b into u[group], sc16[group/16], mn16[group/16] (mn16 only for types with mins). */
static inline void unpack_scalar(int32_t type, const uint8_t *b, uint8_t *restrict u, float *restrict sc16, float *restrict mn16) {
    switch (type) {
        case T_Q4_0:
        case T_IQ4_NL:
            for (int h = 0; h < 2; h++, b += 18) {
                float d = f16f(b);
                const uint8_t *q = b + 2;
                if (type == T_Q4_0) {
                    for (int j = 0; j < 16; j++) {
                        u[32 * h + j] = q[j] & 15;
                        u[32 * h + 16 + j] = q[j] >> 4;
                    }
                } else {
                    for (int j = 0; j < 16; j++) {
                        u[32 * h + j] = (uint8_t) (IQ4NL[q[j] & 15] + 128);
                        u[32 * h + 16 + j] = (uint8_t) (IQ4NL[q[j] >> 4] + 128);
                    }
                }
                sc16[2 * h] = sc16[2 * h + 1] = d;
            }
            return;
        case T_Q4_1:
            for (int h = 0; h < 2; h++, b += 20) {
                float d = f16f(b), m = f16f(b + 2);
                const uint8_t *q = b + 4;
                for (int j = 0; j < 16; j++) {
                    u[32 * h + j] = q[j] & 15;
                    u[32 * h + 16 + j] = q[j] >> 4;
                }
                sc16[2 * h] = sc16[2 * h + 1] = d;
                mn16[2 * h] = mn16[2 * h + 1] = -m;
            }
            return;
        case T_Q5_0:
        case T_Q5_1: {
            int one = type == T_Q5_1;
            for (int h = 0; h < 2; h++, b += one ? 24 : 22) {
                float d = f16f(b);
                uint32_t qh;
                memcpy(&qh, b + (one ? 4 : 2), 4);
                const uint8_t *q = b + (one ? 8 : 6);
                for (int j = 0; j < 16; j++) {
                    u[32 * h + j] = (q[j] & 15) | (((qh >> j) & 1) << 4);
                    u[32 * h + 16 + j] = (q[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
                }
                sc16[2 * h] = sc16[2 * h + 1] = d;
                if (one) {
                    mn16[2 * h] = mn16[2 * h + 1] = -f16f(b + 2);
                }
            }
            return;
        }
        case T_Q8_0:
            for (int h = 0; h < 2; h++, b += 34) {
                float d = f16f(b);
                for (int j = 0; j < 32; j++) {
                    u[32 * h + j] = b[2 + j] ^ 0x80;
                }
                sc16[2 * h] = sc16[2 * h + 1] = d;
            }
            return;
        case T_Q2_K: {
            float d = f16f(b + 80), dmin = f16f(b + 82);
            int is = 0, y = 0;
            for (int half = 0; half < 2; half++) {
                const uint8_t *q = b + 16 + 32 * half;
                for (int sh = 0; sh < 8; sh += 2) {
                    for (int part = 0; part < 2; part++, is++) {
                        int sc = b[is];
                        sc16[is] = d * (sc & 15);
                        mn16[is] = dmin * (sc >> 4);
                        for (int l = 0; l < 16; l++) {
                            u[y++] = (q[16 * part + l] >> sh) & 3;
                        }
                    }
                }
            }
            return;
        }
        case T_Q3_K: {
            float dall = f16f(b + 108);
            const uint8_t *hm = b, *s = b + 96;
            int is = 0, y = 0;
            uint8_t m = 1;
            for (int half = 0; half < 2; half++) {
                const uint8_t *q = b + 32 + 32 * half;
                for (int sh = 0; sh < 8; sh += 2, m <<= 1) {
                    for (int part = 0; part < 2; part++, is++) {
                        int low = is < 8 ? s[is] & 15 : s[is - 8] >> 4;
                        int high = (s[8 + is % 4] >> (2 * (is / 4))) & 3;
                        sc16[is] = dall * ((low | (high << 4)) - 32);
                        for (int l = 0; l < 16; l++) {
                            int k = 16 * part + l;
                            u[y++] = (uint8_t) (((q[k] >> sh) & 3) + ((hm[k] & m) ? 4 : 0));
                        }
                    }
                }
            }
            return;
        }
        case T_Q4_K:
        case T_Q5_K: {
            int five = type == T_Q5_K;
            float d = f16f(b), dmin = f16f(b + 2);
            const uint8_t *sc = b + 4, *qh = b + 16;
            const uint8_t *ql = b + (five ? 48 : 16);
            for (int g = 0; g < 4; g++) {
                int d1, m1, d2, m2;
                k4_scale_min(2 * g, sc, &d1, &m1);
                k4_scale_min(2 * g + 1, sc, &d2, &m2);
                const uint8_t *q = ql + 32 * g;
                for (int l = 0; l < 32; l++) {
                    uint8_t h1 = five ? (uint8_t) (((qh[l] >> (2 * g)) & 1) << 4) : 0;
                    uint8_t h2 = five ? (uint8_t) (((qh[l] >> (2 * g + 1)) & 1) << 4) : 0;
                    u[64 * g + l] = (q[l] & 15) | h1;
                    u[64 * g + 32 + l] = (q[l] >> 4) | h2;
                }
                sc16[4 * g] = sc16[4 * g + 1] = d * d1;
                sc16[4 * g + 2] = sc16[4 * g + 3] = d * d2;
                mn16[4 * g] = mn16[4 * g + 1] = dmin * m1;
                mn16[4 * g + 2] = mn16[4 * g + 3] = dmin * m2;
            }
            return;
        }
        case T_Q6_K: {
            float d = f16f(b + 208);
            for (int half = 0; half < 2; half++) {
                const uint8_t *ql = b + 64 * half, *qh = b + 128 + 32 * half;
                const int8_t *sc = (const int8_t *) (b + 192 + 8 * half);
                uint8_t *y = u + 128 * half;
                for (int l = 0; l < 32; l++) {
                    y[l] = (ql[l] & 15) | ((qh[l] & 3) << 4);
                    y[l + 32] = (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4);
                    y[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                    y[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                }
                for (int s = 0; s < 8; s++) {
                    sc16[8 * half + s] = d * sc[s];
                }
            }
            return;
        }
        case T_IQ4_XS: {
            float d = f16f(b);
            uint16_t sh;
            memcpy(&sh, b + 2, 2);
            for (int ib = 0; ib < 8; ib++) {
                int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
                const uint8_t *q = b + 8 + 16 * ib;
                for (int j = 0; j < 16; j++) {
                    u[32 * ib + j] = (uint8_t) (IQ4NL[q[j] & 15] + 128);
                    u[32 * ib + 16 + j] = (uint8_t) (IQ4NL[q[j] >> 4] + 128);
                }
                sc16[2 * ib] = sc16[2 * ib + 1] = d * (ls - 32);
            }
            return;
        }
        default:
            return;
    }
}


#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define CRIA_SIMD_UNPACK 1

/* 16 bytes -> 32 values: low nibbles then high nibbles. */
static inline __m256i nib32(const uint8_t *q) {
    __m128i v = _mm_loadu_si128((const __m128i *) q);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(15));
}

/* 32 bytes -> 64 values: the 32 low nibbles then the 32 high nibbles. */
static inline __m512i nib64(const uint8_t *q) {
    __m256i v = _mm256_loadu_si256((const __m256i *) q);
    return _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1), _mm512_set1_epi8(15));
}

static inline __m256i iq4(__m256i nibbles) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *) IQ4NL));
    return _mm256_xor_si256(_mm256_shuffle_epi8(table, nibbles), _mm256_set1_epi8((char) 0x80));
}

static inline void unpack(int32_t type, const uint8_t *b, uint8_t *restrict u, float *restrict sc16, float *restrict mn16) {
    switch (type) {
        case T_Q4_0:
            for (int h = 0; h < 2; h++, b += 18) {
                _mm256_storeu_si256((__m256i *) (u + 32 * h), nib32(b + 2));
                sc16[2 * h] = sc16[2 * h + 1] = f16f(b);
            }
            return;
        case T_IQ4_NL:
            for (int h = 0; h < 2; h++, b += 18) {
                _mm256_storeu_si256((__m256i *) (u + 32 * h), iq4(nib32(b + 2)));
                sc16[2 * h] = sc16[2 * h + 1] = f16f(b);
            }
            return;
        case T_Q4_1:
            for (int h = 0; h < 2; h++, b += 20) {
                _mm256_storeu_si256((__m256i *) (u + 32 * h), nib32(b + 4));
                sc16[2 * h] = sc16[2 * h + 1] = f16f(b);
                mn16[2 * h] = mn16[2 * h + 1] = -f16f(b + 2);
            }
            return;
        case T_Q5_0:
        case T_Q5_1: {
            int one = type == T_Q5_1;
            for (int h = 0; h < 2; h++, b += one ? 24 : 22) {
                uint32_t qh;
                memcpy(&qh, b + (one ? 4 : 2), 4);
                __m256i v = _mm256_or_si256(nib32(b + (one ? 8 : 6)), _mm256_maskz_mov_epi8(qh, _mm256_set1_epi8(16)));
                _mm256_storeu_si256((__m256i *) (u + 32 * h), v);
                sc16[2 * h] = sc16[2 * h + 1] = f16f(b);
                if (one) {
                    mn16[2 * h] = mn16[2 * h + 1] = -f16f(b + 2);
                }
            }
            return;
        }
        case T_Q8_0:
            for (int h = 0; h < 2; h++, b += 34) {
                __m256i v = _mm256_loadu_si256((const __m256i *) (b + 2));
                _mm256_storeu_si256((__m256i *) (u + 32 * h), _mm256_xor_si256(v, _mm256_set1_epi8((char) 0x80)));
                sc16[2 * h] = sc16[2 * h + 1] = f16f(b);
            }
            return;
        case T_Q2_K: {
            float d = f16f(b + 80), dmin = f16f(b + 82);
            __m128i scb = _mm_loadu_si128((const __m128i *) b);
            __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(scb, _mm_set1_epi8(15))));
            __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(scb, 4), _mm_set1_epi8(15))));
            _mm512_storeu_ps(sc16, _mm512_mul_ps(lo, _mm512_set1_ps(d)));
            _mm512_storeu_ps(mn16, _mm512_mul_ps(hi, _mm512_set1_ps(dmin)));
            for (int half = 0; half < 2; half++) {
                __m256i q = _mm256_loadu_si256((const __m256i *) (b + 16 + 32 * half));
                for (int sh = 0; sh < 4; sh++) {
                    __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * sh), _mm256_set1_epi8(3));
                    _mm256_storeu_si256((__m256i *) (u + 128 * half + 32 * sh), v);
                }
            }
            return;
        }
        case T_Q3_K: {
            float dall = f16f(b + 108);
            const uint8_t *s = b + 96;
            for (int is = 0; is < 16; is++) {
                int low = is < 8 ? s[is] & 15 : s[is - 8] >> 4;
                int high = (s[8 + is % 4] >> (2 * (is / 4))) & 3;
                sc16[is] = dall * ((low | (high << 4)) - 32);
            }
            __m256i hm = _mm256_loadu_si256((const __m256i *) b);
            for (int half = 0; half < 2; half++) {
                __m256i q = _mm256_loadu_si256((const __m256i *) (b + 32 + 32 * half));
                for (int sh = 0; sh < 4; sh++) {
                    __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * sh), _mm256_set1_epi8(3));
                    __mmask32 bit = _mm256_test_epi8_mask(hm, _mm256_set1_epi8((char) (1 << (4 * half + sh))));
                    _mm256_storeu_si256((__m256i *) (u + 128 * half + 32 * sh), _mm256_or_si256(lo, _mm256_maskz_mov_epi8(bit, _mm256_set1_epi8(4))));
                }
            }
            return;
        }
        case T_Q4_K:
        case T_Q5_K: {
            int five = type == T_Q5_K;
            float d = f16f(b), dmin = f16f(b + 2);
            const uint8_t *sc = b + 4;
            const uint8_t *ql = b + (five ? 48 : 16);
            __m256i qh = five ? _mm256_loadu_si256((const __m256i *) (b + 16)) : _mm256_setzero_si256();
            for (int g = 0; g < 4; g++) {
                int d1, m1, d2, m2;
                k4_scale_min(2 * g, sc, &d1, &m1);
                k4_scale_min(2 * g + 1, sc, &d2, &m2);
                __m512i v = nib64(ql + 32 * g);
                if (five) {
                    __mmask64 bits = (__mmask64) _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char) (1 << (2 * g))))
                            | ((__mmask64) _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char) (1 << (2 * g + 1)))) << 32);
                    v = _mm512_or_si512(v, _mm512_maskz_mov_epi8(bits, _mm512_set1_epi8(16)));
                }
                _mm512_storeu_si512(u + 64 * g, v);
                sc16[4 * g] = sc16[4 * g + 1] = d * d1;
                sc16[4 * g + 2] = sc16[4 * g + 3] = d * d2;
                mn16[4 * g] = mn16[4 * g + 1] = dmin * m1;
                mn16[4 * g + 2] = mn16[4 * g + 3] = dmin * m2;
            }
            return;
        }
        case T_Q6_K: {
            float d = f16f(b + 208);
            __m512 scf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) (b + 192))));
            _mm512_storeu_ps(sc16, _mm512_mul_ps(scf, _mm512_set1_ps(d)));
            const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
            for (int half = 0; half < 2; half++) {
                __m256i l0 = _mm256_loadu_si256((const __m256i *) (b + 64 * half));
                __m256i l1 = _mm256_loadu_si256((const __m256i *) (b + 64 * half + 32));
                __m256i h = _mm256_loadu_si256((const __m256i *) (b + 128 + 32 * half));
                uint8_t *y = u + 128 * half;
                _mm256_storeu_si256((__m256i *) y, _mm256_or_si256(_mm256_and_si256(l0, m4),
                        _mm256_slli_epi16(_mm256_and_si256(h, m2), 4)));
                _mm256_storeu_si256((__m256i *) (y + 32), _mm256_or_si256(_mm256_and_si256(l1, m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4)));
                _mm256_storeu_si256((__m256i *) (y + 64), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4)));
                _mm256_storeu_si256((__m256i *) (y + 96), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4)));
            }
            return;
        }
        case T_IQ4_XS: {
            float d = f16f(b);
            uint16_t sh;
            memcpy(&sh, b + 2, 2);
            for (int ib = 0; ib < 8; ib++) {
                int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
                _mm256_storeu_si256((__m256i *) (u + 32 * ib), iq4(nib32(b + 8 + 16 * ib)));
                sc16[2 * ib] = sc16[2 * ib + 1] = d * (ls - 32);
            }
            return;
        }
        default:
            return;
    }
}
#else
#define unpack unpack_scalar
#endif

#endif
