/* Matrix products of ggml-typed weights with activations: the CPU backend's hot loop.
 * Quantized weights: each group of a block of rows is unpacked once (unpack.h) and dotted with
 * 8-bit activations (act.h) by VNNI (u8 x s8 -> s32) four inputs at a time; partial sums become
 * float once per 64 values, scaled per 16 (weight) and per 32 (activation) values.
 * F32/F16/BF16 weights: float dot products with float activations. */
#include "cria.h"
#include "act.h"
#include "unpack.h"
#include <math.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define CRIA_VNNI 1
#else
#define CRIA_VNNI 0
#endif

#define ROWS 4     /* weight rows unpacked together */
#define TILE 4     /* inputs dotted together */

int32_t cria_features(void) {
    return CRIA_VNNI ? 1 : 0;
}

int32_t cria_supports(int32_t type) {
    kind k;
    return type == T_F32 || type == T_F16 || type == T_BF16 || kind_of(type, &k);
}

/* Unpacks rows [r, r + nr) of W into u (nr rows of k bytes), sc and mn (nr rows of k/16 floats). */
static void unpack_rows(int32_t type, const kind *kd, const uint8_t *w, int64_t wrb, int r, int nr, int k,
                        uint8_t *u, float *sc, float *mn) {
    int groups = k / kd->group;
    for (int rr = 0; rr < nr; rr++) {
        const uint8_t *row = w + (int64_t) (r + rr) * wrb;
        for (int g = 0; g < groups; g++) {
            unpack(type, row + (int64_t) g * kd->bytes, u + (int64_t) rr * k + g * kd->group,
                   sc + (int64_t) rr * (k / 16) + g * (kd->group / 16), mn + (int64_t) rr * (k / 16) + g * (kd->group / 16));
        }
    }
}

#if CRIA_VNNI
static inline float hsum(__m512 v) {
    return _mm512_reduce_add_ps(v);
}

/* nr rows (<= ROWS) of unpacked weights times nt inputs (<= TILE): out[i * os + rr]. */
static void dot_tile(const kind *kd, int k, const uint8_t *u, const float *sc, const float *mn, int nr,
                     act_row *x, int nt, float *out, int64_t os) {
    const __m512i lane4 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    __m512 acc[ROWS][TILE];
    for (int rr = 0; rr < ROWS; rr++) {
        for (int t = 0; t < TILE; t++) {
            acc[rr][t] = _mm512_setzero_ps();
        }
    }
    const int shift = kd->shift;
    for (int c = 0; c < k; c += 64) {
        __m512i xv[TILE], init[TILE];
        __m512 dl[TILE];
        for (int t = 0; t < nt; t++) {
            xv[t] = _mm512_loadu_si512(x[t].qs + c);
            dl[t] = _mm512_loadu_ps(x[t].dl + c / 4);
            init[t] = shift >= 0 ? _mm512_slli_epi32(_mm512_loadu_si512(x[t].ns4 + c / 4), shift) : _mm512_setzero_si512();
        }
        for (int rr = 0; rr < nr; rr++) {
            __m512i uv = _mm512_loadu_si512(u + (int64_t) rr * k + c);
            __m512 ls = _mm512_permutexvar_ps(lane4, _mm512_castps128_ps512(_mm_loadu_ps(sc + (int64_t) rr * (k / 16) + c / 16)));
            for (int t = 0; t < nt; t++) {
                __m512i d = _mm512_dpbusd_epi32(init[t], uv, xv[t]);
                acc[rr][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(ls, dl[t]), acc[rr][t]);
            }
        }
    }
    for (int rr = 0; rr < nr; rr++) {
        for (int t = 0; t < nt; t++) {
            float s = hsum(acc[rr][t]);
            if (kd->mins) {
                const float *m = mn + (int64_t) rr * (k / 16);
                __m512 ma = _mm512_setzero_ps();
                int j = 0;
                for (; j + 16 <= k / 16; j += 16) {
                    ma = _mm512_fmadd_ps(_mm512_loadu_ps(m + j), _mm512_loadu_ps(x[t].xs16 + j), ma);
                }
                float r = hsum(ma);
                for (; j < k / 16; j++) {
                    r += m[j] * x[t].xs16[j];
                }
                s -= r;
            }
            out[(int64_t) t * os + rr] = s;
        }
    }
}
#else
static void dot_tile(const kind *kd, int k, const uint8_t *u, const float *sc, const float *mn, int nr,
                     act_row *x, int nt, float *out, int64_t os) {
    int off = kd->shift >= 0 ? 1 << kd->shift : 0;
    for (int rr = 0; rr < nr; rr++) {
        const uint8_t *ur = u + (int64_t) rr * k;
        const float *s16 = sc + (int64_t) rr * (k / 16);
        const float *m16 = mn + (int64_t) rr * (k / 16);
        for (int t = 0; t < nt; t++) {
            float s = 0;
            for (int j = 0; j < k / 16; j++) {
                int dot = 0;
                for (int i = 16 * j; i < 16 * j + 16; i++) {
                    dot += ((int) ur[i] - off) * x[t].qs[i];
                }
                s += s16[j] * x[t].dl[4 * j] * (float) dot;
                if (kd->mins) {
                    s -= m16[j] * x[t].xs16[j];
                }
            }
            out[(int64_t) t * os + rr] = s;
        }
    }
}
#endif

int64_t cria_matmul_scratch_bytes(int32_t k) {
    return (int64_t) ROWS * k + 2 * (int64_t) ROWS * (k / 16) * 4 + (int64_t) k * 4 + 256;
}

static int32_t matmul_quant(int32_t type, const uint8_t *w, int64_t wrb, int32_t r0, int32_t r1, int32_t k,
                            const uint8_t *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch) {
    kind kd;
    if (!kind_of(type, &kd) || k % kd.group != 0) {
        return -1;
    }
    uint8_t *u = scratch;
    float *sc = (float *) (scratch + (int64_t) ROWS * k);
    float *mn = sc + (int64_t) ROWS * (k / 16);
    act_row xr[TILE];
    for (int32_t r = r0; r < r1; r += ROWS) {
        int nr = r1 - r < ROWS ? r1 - r : ROWS;
        unpack_rows(type, &kd, w, wrb, r, nr, k, u, sc, mn);
        for (int32_t i = 0; i < n; i += TILE) {
            int nt = n - i < TILE ? n - i : TILE;
            for (int t = 0; t < nt; t++) {
                xr[t] = act_at((uint8_t *) x + (int64_t) (i + t) * xs, k);
            }
            dot_tile(&kd, k, u, sc, mn, nr, xr, nt, out + (int64_t) i * os + r, os);
        }
    }
    return 0;
}

/* Float weights: a row converted to float once per block of rows, then dotted with float inputs. */
static inline void to_float(int32_t type, const uint8_t *src, float *dst, int k) {
    if (type == T_F32) {
        memcpy(dst, src, (size_t) k * 4);
    } else if (type == T_F16) {
        int i = 0;
#if defined(__AVX512F__)
        for (; i + 16 <= k; i += 16) {
            _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (src + 2 * i))));
        }
#endif
        for (; i < k; i++) {
            dst[i] = f16f(src + 2 * i);
        }
    } else {
        for (int i = 0; i < k; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t bits = (uint32_t) h << 16;
            memcpy(dst + i, &bits, 4);
        }
    }
}

static inline float dot_f32(const float *a, const float *b, int k) {
    int i = 0;
    float s = 0;
#if defined(__AVX512F__)
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (; i + 32 <= k; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i + 16 <= k; i += 16) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    }
    s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
#endif
    for (; i < k; i++) {
        s += a[i] * b[i];
    }
    return s;
}

static int32_t matmul_float(int32_t type, const uint8_t *w, int64_t wrb, int32_t r0, int32_t r1, int32_t k,
                            const float *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch) {
    float *row = (float *) scratch;
    for (int32_t r = r0; r < r1; r++) {
        const float *wr;
        if (type == T_F32) {
            wr = (const float *) (w + (int64_t) r * wrb);
        } else {
            to_float(type, w + (int64_t) r * wrb, row, k);
            wr = row;
        }
        for (int32_t i = 0; i < n; i++) {
            out[(int64_t) i * os + r] = dot_f32(wr, x + (int64_t) i * xs, k);
        }
    }
    return 0;
}

int32_t cria_matmul(int32_t type, const uint8_t *w, int64_t wrb, int32_t r0, int32_t r1, int32_t k,
                    const void *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch) {
    if (type == T_F32 || type == T_F16 || type == T_BF16) {
        return matmul_float(type, w, wrb, r0, r1, k, (const float *) x, xs, n, out, os, scratch);
    }
    return matmul_quant(type, w, wrb, r0, r1, k, (const uint8_t *) x, xs, n, out, os, scratch);
}
