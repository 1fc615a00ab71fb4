/* Matrix products of float weights (F32, F16, BF16) with float activations: a row converted to
 * float once per block of rows, then dotted with float inputs. */
#include "cria.h"
#include "matmul.h"
#include "unpack.h"
#include <math.h>
#include <string.h>

#define FCH 64 /* values per chunk */

int64_t matmul_float_scratch(int32_t k, int32_t n) {
    return (int64_t) k * 4 + 4 * FCH * 64 + 4 * (int64_t) n * 64;
}

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

/*
 * Float weights (F32, F16, BF16) with float inputs, the same panel idea: 16 rows are converted to
 * float and transposed so that one register holds one value of all 16 rows; each input value is
 * broadcast and multiplied into one accumulator per input, in order of k (so results do not
 * depend on the batch). Up to 8 inputs share each weight line; chunks of FCH values are reused
 * by every input while they sit in L1.
 */
#if CRIA_VNNI
static inline __m512 load_row16(int32_t type, const uint8_t *p, __mmask16 m) {
    if (type == T_F32) {
        return _mm512_maskz_loadu_ps(m, p);
    }
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (type == T_F16) {
        return _mm512_cvtph_ps(h);
    }
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

#define FTILE(T)                                                                                          \
    static void ftile##T(const float *wt, int kc, const float *x0, int64_t xs, float *ab) {              \
        __m512 a[T];                                                                                      \
        for (int t = 0; t < T; t++) {                                                                     \
            a[t] = _mm512_load_ps(ab + t * 16);                                                           \
        }                                                                                                 \
        for (int j = 0; j < kc; j++) {                                                                    \
            __m512 wv = _mm512_load_ps(wt + j * 16);                                                      \
            for (int t = 0; t < T; t++) {                                                                 \
                a[t] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x0[(int64_t) t * xs + j]), a[t]);              \
            }                                                                                             \
        }                                                                                                 \
        for (int t = 0; t < T; t++) {                                                                     \
            _mm512_store_ps(ab + t * 16, a[t]);                                                           \
        }                                                                                                 \
    }
FTILE(1)
FTILE(2)
FTILE(4)
FTILE(8)

/* Four panels (64 rows) by 6 inputs: 24 accumulators, each weight load feeds 6 FMAs and each
 * broadcast input value 4. Same order per output. */
static void ftile6x4(const float *wt, int kc, const float *x0, int64_t xs, float *acc, int64_t n) {
    __m512 a[4][6];
    for (int p = 0; p < 4; p++) {
        for (int t = 0; t < 6; t++) {
            a[p][t] = _mm512_load_ps(acc + (p * n + t) * 16);
        }
    }
    for (int j = 0; j < kc; j++) {
        __m512 v[4];
        for (int p = 0; p < 4; p++) {
            v[p] = _mm512_load_ps(wt + (p * FCH + j) * 16);
        }
        for (int t = 0; t < 6; t++) {
            __m512 xv = _mm512_set1_ps(x0[(int64_t) t * xs + j]);
            for (int p = 0; p < 4; p++) {
                a[p][t] = _mm512_fmadd_ps(v[p], xv, a[p][t]);
            }
        }
    }
    for (int p = 0; p < 4; p++) {
        for (int t = 0; t < 6; t++) {
            _mm512_store_ps(acc + (p * n + t) * 16, a[p][t]);
        }
    }
}

/* Two panels (32 rows) by 8 inputs: each broadcast input value feeds two FMAs. Same order per output. */
static void ftile8x2(const float *wa, const float *wb, int kc, const float *x0, int64_t xs, float *aa, float *ab) {
    __m512 a[8], b[8];
    for (int t = 0; t < 8; t++) {
        a[t] = _mm512_load_ps(aa + t * 16);
        b[t] = _mm512_load_ps(ab + t * 16);
    }
    for (int j = 0; j < kc; j++) {
        __m512 va = _mm512_load_ps(wa + j * 16), vb = _mm512_load_ps(wb + j * 16);
        for (int t = 0; t < 8; t++) {
            __m512 xv = _mm512_set1_ps(x0[(int64_t) t * xs + j]);
            a[t] = _mm512_fmadd_ps(va, xv, a[t]);
            b[t] = _mm512_fmadd_ps(vb, xv, b[t]);
        }
    }
    for (int t = 0; t < 8; t++) {
        _mm512_store_ps(aa + t * 16, a[t]);
        _mm512_store_ps(ab + t * 16, b[t]);
    }
}

/* One input (decode): 16 rows at a time, each transposed column used at once (nothing goes through
 * scratch). Every row's sum is the same single chain in ascending k as ftile1's, so results are
 * identical to the batched path's. (Measured: two or four panels interleaved, or software prefetch
 * of the row streams, read memory no faster here.) */
static void float_gemv(int32_t type, const uint8_t *w, int64_t wrb, int32_t r, int32_t nr, int32_t k, const float *x, float *out) {
    int eb = type == T_F32 ? 4 : 2;
    __m512 a = _mm512_setzero_ps();
    for (int c = 0; c < k; c += 16) {
        int kc = k - c < 16 ? k - c : 16;
        __mmask16 m = (__mmask16) (kc == 16 ? 0xffff : (1u << kc) - 1);
        const uint8_t *wp = w + (int64_t) r * wrb + (int64_t) c * eb;
        __m512i v[16];
        for (int rr = 0; rr < 16; rr++) {
            v[rr] = rr < nr ? _mm512_castps_si512(load_row16(type, wp + (int64_t) rr * wrb, m)) : _mm512_setzero_si512();
        }
        transpose16(v);
        for (int j = 0; j < kc; j++) {
            a = _mm512_fmadd_ps(_mm512_castsi512_ps(v[j]), _mm512_set1_ps(x[c + j]), a);
        }
    }
    _mm512_mask_storeu_ps(out + r, (__mmask16) ((1u << nr) - 1), a);
}
#endif

int32_t matmul_float(int32_t type, const uint8_t *w, int64_t wrb, int32_t r0, int32_t r1, int32_t k,
                     const float *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch) {
#if CRIA_VNNI
    int eb = type == T_F32 ? 4 : 2;
    float *wt = (float *) (((uintptr_t) scratch + 63) & ~(uintptr_t) 63); /* [4][FCH][16] */
    float *acc = wt + 4 * FCH * 16;                                         /* [4][n][16] */
    if (n == 1) {
        for (int32_t r = r0; r < r1; r += 16) {
            float_gemv(type, w, wrb, r, r1 - r < 16 ? r1 - r : 16, k, x, out);
        }
        return 0;
    }
    for (int32_t r = r0; r < r1;) {
        /* four or two panels at once when they are full and the batch is big enough to use them */
        int pairs = (n >= 6 && r1 - r >= 64) ? 4 : (n >= 8 && r1 - r >= 32) ? 2 : 1;
        int nr = pairs > 1 ? 16 * pairs : (r1 - r < 16 ? r1 - r : 16);
        memset(acc, 0, (size_t) pairs * n * 64);
        for (int k0 = 0; k0 < k; k0 += FCH) {
            int kc = k - k0 < FCH ? k - k0 : FCH;
            for (int pnl = 0; pnl < pairs; pnl++) {
                int pr = r + 16 * pnl, pn = nr - 16 * pnl < 16 ? nr - 16 * pnl : 16;
                float *wp = wt + pnl * FCH * 16;
                for (int c = 0; c < kc; c += 16) {
                    __mmask16 m = (__mmask16) (kc - c >= 16 ? 0xffff : (1u << (kc - c)) - 1);
                    __m512i v[16];
                    for (int rr = 0; rr < 16; rr++) {
                        v[rr] = rr < pn ? _mm512_castps_si512(load_row16(type, w + (int64_t) (pr + rr) * wrb + (int64_t) (k0 + c) * eb, m))
                                        : _mm512_setzero_si512();
                    }
                    transpose16(v);
                    for (int j = 0; j < 16; j++) {
                        _mm512_store_si512(wp + (c + j) * 16, v[j]);
                    }
                }
            }
            for (int i = 0; i < n;) {
                int t = n - i >= 8 ? 8 : n - i >= 4 ? 4 : n - i >= 2 ? 2 : 1;
                const float *x0 = x + (int64_t) i * xs + k0;
                if (pairs == 4 && n - i >= 6) {
                    ftile6x4(wt, kc, x0, xs, acc + (int64_t) i * 16, n);
                    t = 6;
                } else if (pairs == 2 && t == 8) {
                    ftile8x2(wt, wt + FCH * 16, kc, x0, xs, acc + (int64_t) i * 16, acc + ((int64_t) n + i) * 16);
                } else {
                    for (int pnl = 0; pnl < pairs; pnl++) {
                        const float *wp = wt + pnl * FCH * 16;
                        float *ab = acc + ((int64_t) pnl * n + i) * 16;
                        switch (t) {
                            case 8: ftile8(wp, kc, x0, xs, ab); break;
                            case 4: ftile4(wp, kc, x0, xs, ab); break;
                            case 2: ftile2(wp, kc, x0, xs, ab); break;
                            default: ftile1(wp, kc, x0, xs, ab); break;
                        }
                    }
                }
                i += t;
            }
        }
        for (int pnl = 0; pnl < pairs; pnl++) {
            int pn = nr - 16 * pnl < 16 ? nr - 16 * pnl : 16;
            __mmask16 keep = (__mmask16) ((1u << pn) - 1);
            for (int i = 0; i < n; i++) {
                _mm512_mask_storeu_ps(out + (int64_t) i * os + r + 16 * pnl, keep, _mm512_load_ps(acc + ((int64_t) pnl * n + i) * 16));
            }
        }
        r += nr;
    }
    return 0;
#else
    /* portable: the same order (one accumulator, k ascending, fused multiply-add) */
    float *row = (float *) scratch;
    for (int32_t r = r0; r < r1; r++) {
        to_float(type, w + (int64_t) r * wrb, row, k);
        for (int32_t i = 0; i < n; i++) {
            const float *xi = x + (int64_t) i * xs;
            float a = 0;
            for (int j = 0; j < k; j++) {
                a = fmaf(row[j], xi[j], a);
            }
            out[(int64_t) i * os + r] = a;
        }
    }
    return 0;
#endif
}
