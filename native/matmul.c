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

#define PR 16  /* weight rows per panel: one per 32-bit lane of a 512-bit register */
#define MAXT 8 /* inputs dotted together */

int32_t cria_features(void) {
    return CRIA_VNNI ? 1 : 0;
}

int32_t cria_supports(int32_t type) {
    kind k;
    return type == T_F32 || type == T_F16 || type == T_BF16 || kind_of(type, &k);
}

/*
 * The quantized path. Weight rows are taken 16 at a time (a panel) and a chunk of CH values at a
 * time: the chunk is unpacked (unpack.h) and transposed so that each 64-byte line holds 4
 * consecutive values of all 16 rows. One VNNI instruction then multiplies 16 rows by 4 activation
 * values (broadcast), and the 16-row int32 sums of each block of 16 values become float once,
 * scaled by 16 weight scales times one activation scale. Output r of input i accumulates, for
 * each block b of 16 values in order:
 *     acc = fma(float(dot_b), ws_b * xd_b, acc);  mins = fma(wm_b, xs_b, mins)
 * and ends as acc - mins, whatever the number of inputs or rows: a token's result never
 * depends on what else is in the batch. The chunk stays in L1 while every input uses it.
 */
#define CH 256
#define FCH 64 /* float path: values per chunk */

typedef struct {
    uint8_t *u;   /* [PR][CH] unpacked rows */
    float *sc;    /* [PR][CH/16] */
    float *mn;    /* [PR][CH/16] */
    uint8_t *w;   /* [CH/4][PR][4] transposed chunk */
    float *s;     /* [CH/16][PR] weight scales */
    float *m;     /* [CH/16][PR] weight offsets and mins (value = s * u - m) */
    float *acc;   /* [n][PR] running sums of the panel */
    float *mins;  /* [n][PR] */
} panel_buf;

int64_t cria_matmul_scratch_bytes(int32_t k, int32_t n) {
    int64_t quant = 2 * (int64_t) PR * CH + 4 * (int64_t) PR * (CH / 16) * 4 + 2 * (int64_t) n * PR * 4;
    int64_t flt = (int64_t) k * 4 + 4 * FCH * 64 + 4 * (int64_t) n * 64;
    return (quant > flt ? quant : flt) + 512;
}

static panel_buf panel_at(uint8_t *scratch, int32_t n) {
    panel_buf p;
    uint8_t *q = (uint8_t *) (((uintptr_t) scratch + 63) & ~(uintptr_t) 63);
    p.u = q;
    p.w = q + (int64_t) PR * CH;
    p.sc = (float *) (p.w + (int64_t) PR * CH);
    p.mn = p.sc + PR * (CH / 16);
    p.s = p.mn + PR * (CH / 16);
    p.m = p.s + PR * (CH / 16);
    p.acc = p.m + PR * (CH / 16);
    p.mins = p.acc + (int64_t) n * PR;
    return p;
}

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

/* Unpacks values [k0, k0 + CH) of rows [r, r + nr) (rows past nr are zero) and transposes them.
 * Written once, instantiated per type (always inlined with a constant type) so that each type's
 * unpacking is straight-line code with its constants hoisted. */
static inline __attribute__((always_inline)) void make_chunk_of(const int32_t type, const kind *kd, const uint8_t *w,
                                                                 int64_t wrb, int r, int nr, int k0, int kc, panel_buf *p) {
    const int nb = CH / 16;
    for (int rr = 0; rr < PR; rr++) {
        uint8_t *u = p->u + rr * CH;
        float *sc = p->sc + rr * nb;
        float *mn = p->mn + rr * nb;
        if (rr >= nr) {
            memset(u, 0, CH);
            memset(sc, 0, (size_t) nb * 4);
            memset(mn, 0, (size_t) nb * 4);
            continue;
        }
        const uint8_t *row = w + (int64_t) (r + rr) * wrb + (int64_t) (k0 / kd->group) * kd->bytes;
        if (!kd->mins) {
            memset(mn, 0, (size_t) nb * 4);
        }
        for (int g = 0; g < kc / kd->group; g++) {
            unpack(type, row + (int64_t) g * kd->bytes, u + g * kd->group, sc + g * (kd->group / 16), mn + g * (kd->group / 16));
        }
        if (kc < CH) { /* the row's last, short chunk: the tiles stop at kc; nothing stale stays past it */
            memset(u + kc, 0, (size_t) (CH - kc));
            memset(sc + kc / 16, 0, (size_t) (nb - kc / 16) * 4);
            memset(mn + kc / 16, 0, (size_t) (nb - kc / 16) * 4);
        }
    }
    float off = kd->shift >= 0 ? (float) (1 << kd->shift) : 0.0f;
#if CRIA_VNNI
    /* scales and mins: [16 rows][16 blocks] -> [16 blocks][16 rows] */
    __m512i vs[16], vm[16];
    for (int rr = 0; rr < 16; rr++) {
        vs[rr] = _mm512_load_si512(p->sc + rr * nb);
        vm[rr] = _mm512_load_si512(p->mn + rr * nb);
    }
    transpose16(vs);
    transpose16(vm);
    __m512 offv = _mm512_set1_ps(off);
    for (int b = 0; b < nb; b++) {
        __m512 sv = _mm512_castsi512_ps(vs[b]);
        _mm512_store_ps(p->s + b * PR, sv);
        _mm512_store_ps(p->m + b * PR, _mm512_add_ps(_mm512_castsi512_ps(vm[b]), _mm512_mul_ps(offv, sv)));
    }
    for (int c = 0; c < CH / 64; c++) {
        __m512i v[16];
        for (int rr = 0; rr < 16; rr++) {
            v[rr] = _mm512_load_si512(p->u + rr * CH + 64 * c);
        }
        transpose16(v);
        for (int j = 0; j < 16; j++) {
            _mm512_store_si512(p->w + (16 * c + j) * 64, v[j]);
        }
    }
#else
    for (int b = 0; b < nb; b++) {
        for (int rr = 0; rr < PR; rr++) {
            float sv = p->sc[rr * nb + b];
            p->s[b * PR + rr] = sv;
            p->m[b * PR + rr] = p->mn[rr * nb + b] + off * sv;
        }
    }
    for (int j = 0; j < CH / 4; j++) {
        for (int rr = 0; rr < PR; rr++) {
            memcpy(p->w + (j * PR + rr) * 4, p->u + rr * CH + 4 * j, 4);
        }
    }
#endif
}

static void make_chunk(int32_t type, const kind *kd, const uint8_t *w, int64_t wrb, int r, int nr, int k0, int kc, panel_buf *p) {
    switch (type) {
#define CASE(T) case T: make_chunk_of(T, kd, w, wrb, r, nr, k0, kc, p); return;
        CASE(T_Q4_0) CASE(T_Q4_1) CASE(T_Q5_0) CASE(T_Q5_1) CASE(T_Q8_0) CASE(T_IQ4_NL)
        CASE(T_Q2_K) CASE(T_Q3_K) CASE(T_Q4_K) CASE(T_Q5_K) CASE(T_Q6_K) CASE(T_IQ4_XS)
#undef CASE
        default: return;
    }
}

#if CRIA_VNNI
#include "panel.h"

#define TILE_BODY(T)                                                                                       \
    static void tile##T(const panel_buf *p, int k0, int nb, act_row *x, float *acc0, float *mins0) {      \
        __m512 acc[T], mins[T];                                                                            \
        for (int t = 0; t < T; t++) {                                                                      \
            acc[t] = _mm512_load_ps(acc0 + t * PR);                                                        \
            mins[t] = _mm512_load_ps(mins0 + t * PR);                                                      \
        }                                                                                                  \
        for (int b = 0; b < nb; b++) {                                                                     \
            __m512i dot[T];                                                                                \
            for (int t = 0; t < T; t++) {                                                                  \
                dot[t] = _mm512_setzero_si512();                                                           \
            }                                                                                              \
            const uint8_t *wb = p->w + b * 4 * 64;                                                         \
            int kb = k0 + 16 * b;                                                                          \
            for (int g = 0; g < 4; g++) {                                                                  \
                __m512i wv = _mm512_load_si512(wb + 64 * g);                                               \
                for (int t = 0; t < T; t++) {                                                              \
                    int32_t xq;                                                                            \
                    memcpy(&xq, x[t].qs + kb + 4 * g, 4);                                                  \
                    dot[t] = _mm512_dpbusd_epi32(dot[t], wv, _mm512_set1_epi32(xq));                       \
                }                                                                                          \
            }                                                                                              \
            __m512 ws = _mm512_load_ps(p->s + b * PR);                                                    \
            __m512 wm = _mm512_load_ps(p->m + b * PR);                                                    \
            for (int t = 0; t < T; t++) {                                                                  \
                __m512 sc = _mm512_mul_ps(ws, _mm512_set1_ps(x[t].d[kb / 16]));                           \
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[t]), sc, acc[t]);                         \
                mins[t] = _mm512_fmadd_ps(wm, _mm512_set1_ps(x[t].xs[kb / 16]), mins[t]);                 \
            }                                                                                              \
        }                                                                                                  \
        for (int t = 0; t < T; t++) {                                                                      \
            _mm512_store_ps(acc0 + t * PR, acc[t]);                                                        \
            _mm512_store_ps(mins0 + t * PR, mins[t]);                                                      \
        }                                                                                                  \
    }
TILE_BODY(1)
TILE_BODY(2)
TILE_BODY(4)
TILE_BODY(8)

static void tile(const panel_buf *p, int k0, int nb, act_row *x, int nt, float *acc, float *mins) {
    while (nt > 0) {
        int t = nt >= 8 ? 8 : nt >= 4 ? 4 : nt >= 2 ? 2 : 1;
        switch (t) {
            case 8: tile8(p, k0, nb, x, acc, mins); break;
            case 4: tile4(p, k0, nb, x, acc, mins); break;
            case 2: tile2(p, k0, nb, x, acc, mins); break;
            default: tile1(p, k0, nb, x, acc, mins); break;
        }
        x += t;
        acc += t * PR;
        mins += t * PR;
        nt -= t;
    }
}
#else
/* Portable version of the same arithmetic, in the same order. */
static void tile(const panel_buf *p, int k0, int nb, act_row *x, int nt, float *acc, float *mins) {
    for (int t = 0; t < nt; t++) {
        for (int rr = 0; rr < PR; rr++) {
            float a = acc[t * PR + rr], m = mins[t * PR + rr];
            for (int b = 0; b < nb; b++) {
                int kb = k0 + 16 * b;
                int32_t dot = 0;
                for (int j = 0; j < 16; j++) {
                    dot += (int32_t) p->w[((4 * b + j / 4) * PR + rr) * 4 + j % 4] * x[t].qs[kb + j];
                }
                a = fmaf((float) dot, p->s[b * PR + rr] * x[t].d[kb / 16], a);
                m = fmaf(p->m[b * PR + rr], x[t].xs[kb / 16], m);
            }
            acc[t * PR + rr] = a;
            mins[t * PR + rr] = m;
        }
    }
}
#endif

/* Software prefetch, one row stream at a time: each of the panel's rows reads its own run of
 * blocks, and 16 short interleaved runs defeat the hardware prefetcher. Asks for chunk `c` of every
 * row (PF_AHEAD chunks ahead of the one being computed), wrapping into the next panel's rows. */
#define PF_AHEAD 2
static inline void prefetch_ahead(const uint8_t *w, int64_t wrb, int32_t r, int nr, int32_t r1, int c, int chunks, int64_t cb) {
    if (c >= chunks) {
        c -= chunks;
        r += PR;
        nr = r1 - r < PR ? r1 - r : PR;
        if (c >= chunks) {
            return;
        }
    }
    for (int rr = 0; rr < nr; rr++) {
        uintptr_t a = (uintptr_t) (w + (int64_t) (r + rr) * wrb + c * cb);
        for (uintptr_t o = a & ~(uintptr_t) 63; o < a + cb; o += 64) {
            __builtin_prefetch((const void *) o, 0, 3);
        }
    }
}

static int32_t matmul_quant(int32_t type, const uint8_t *w, int64_t wrb, int32_t r0, int32_t r1, int32_t k,
                            const uint8_t *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch) {
    kind kd;
    if (!kind_of(type, &kd) || k % kd.group != 0) {
        return -1;
    }
    panel_buf p = panel_at(scratch, n);
    act_row xr[MAXT];
    int chunks = (k + CH - 1) / CH; /* the last one is short when k is not a multiple of CH */
    for (int32_t r = r0; r < r1; r += PR) {
        int nr = r1 - r < PR ? r1 - r : PR;
        memset(p.acc, 0, (size_t) n * PR * 4);
        memset(p.mins, 0, (size_t) n * PR * 4);
        for (int k0 = 0; k0 < k; k0 += CH) {
            int kc = k - k0 < CH ? k - k0 : CH;
            prefetch_ahead(w, wrb, r, nr, r1, k0 / CH + PF_AHEAD, chunks, (int64_t) (CH / kd.group) * kd.bytes);
#if CRIA_VNNI
            if (nr < PR || (kc < CH && kd.group == 256) || !panel_fast(type, w + (int64_t) r * wrb, wrb, k0, kc, p.w, p.s, p.m))
#endif
                make_chunk(type, &kd, w, wrb, r, nr, k0, kc, &p);
            for (int32_t i = 0; i < n; i += MAXT) {
                int nt = n - i < MAXT ? n - i : MAXT;
                for (int t = 0; t < nt; t++) {
                    xr[t] = act_at((uint8_t *) x + (int64_t) (i + t) * xs, k);
                }
                tile(&p, k0, kc / 16, xr, nt, p.acc + (int64_t) i * PR, p.mins + (int64_t) i * PR);
            }
        }
        for (int32_t i = 0; i < n; i++) {
            for (int rr = 0; rr < nr; rr++) {
                out[(int64_t) i * os + r + rr] = p.acc[(int64_t) i * PR + rr] - p.mins[(int64_t) i * PR + rr];
            }
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

/* Two panels (32 rows) by 8 inputs: each broadcast input value feeds two FMAs. Same order per output. */
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

static int32_t matmul_float(int32_t type, const uint8_t *w, int64_t wrb, int32_t r0, int32_t r1, int32_t k,
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

int32_t cria_matmul(int32_t type, const uint8_t *w, int64_t wrb, int32_t r0, int32_t r1, int32_t k,
                    const void *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch) {
    if (type == T_F32 || type == T_F16 || type == T_BF16) {
        return matmul_float(type, w, wrb, r0, r1, k, (const float *) x, xs, n, out, os, scratch);
    }
    return matmul_quant(type, w, wrb, r0, r1, k, (const uint8_t *) x, xs, n, out, os, scratch);
}
