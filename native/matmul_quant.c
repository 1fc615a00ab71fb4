/* Matrix products of quantized ggml weights with 8-bit activations: the CPU backend's hot loop.
 * Each group of a block of rows is unpacked once (unpack.h) and dotted with 8-bit activations
 * (act.h) by VNNI (u8 x s8 -> s32); the int32 sums of each block of 16 values become float once,
 * scaled by the block's weight and activation scales. */
#include "cria.h"
#include "act.h"
#include "matmul.h"
#include "unpack.h"
#include <string.h>

#define MAXT 8 /* inputs dotted together */

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

int64_t matmul_quant_scratch(int32_t n) {
    return 2 * (int64_t) PR * CH + 4 * (int64_t) PR * (CH / 16) * 4 + 2 * (int64_t) n * PR * 4;
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

/* What tile() and the fused paths share: dot[t] += one line of 16 rows x 4 values of input t (at value kv);
 * a block of 16 values becomes float as tile() does it; the running sums in and out. T is a
 * constant where these are inlined, so the arrays stay in registers. */
static inline __attribute__((always_inline)) void dot_line(const int T, __m512i w, const act_row *x, int kv, __m512i *dot) {
    for (int t = 0; t < T; t++) {
        int32_t xq;
        memcpy(&xq, x[t].qs + kv, 4);
        dot[t] = _mm512_dpbusd_epi32(dot[t], w, _mm512_set1_epi32(xq));
    }
}

static inline __attribute__((always_inline)) void block_sum(const int T, const __m512i *dot, __m512 ws, __m512 wm, const act_row *x,
                                                            int kb, __m512 *acc, __m512 *mins) {
    for (int t = 0; t < T; t++) {
        __m512 sc = _mm512_mul_ps(ws, _mm512_set1_ps(x[t].d[kb / 16]));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[t]), sc, acc[t]);
        mins[t] = _mm512_fmadd_ps(wm, _mm512_set1_ps(x[t].xs[kb / 16]), mins[t]);
    }
}

static inline __attribute__((always_inline)) void sums_in(const int T, const float *acc0, const float *mins0, __m512 *acc, __m512 *mins) {
    for (int t = 0; t < T; t++) {
        acc[t] = _mm512_load_ps(acc0 + t * PR);
        mins[t] = _mm512_load_ps(mins0 + t * PR);
    }
}

static inline __attribute__((always_inline)) void sums_out(const int T, const __m512 *acc, const __m512 *mins, float *acc0, float *mins0) {
    for (int t = 0; t < T; t++) {
        _mm512_store_ps(acc0 + t * PR, acc[t]);
        _mm512_store_ps(mins0 + t * PR, mins[t]);
    }
}

/* Software prefetch of a packed stream, PF_L2_AHEAD bytes ahead of what is being dotted: decode
 * reads every weight once per token from DRAM. Which streams get it, and into which cache, is
 * cria_prefetch_mode() (cpu.c), chosen once: on the Intel Xeon VM every stream prefetched into L2
 * took llama-1B Q4_K_M decoding from 22.6 to 26.9 t/s, while on the AMD EPYC (Zen 4) VM prefetches
 * into L1 of the Q6_K and Q4_0 streams measured slower and only Q4_K's gained (BENCHMARKS.md). */
__attribute__((visibility("hidden"))) int32_t cria_prefetch_mode(void);
#ifndef PF_L2_AHEAD
#define PF_L2_AHEAD 8192
#endif
static int pf_mode_cached = -1;

static inline int pf_mode(void) {
    int m = __atomic_load_n(&pf_mode_cached, __ATOMIC_RELAXED);
    if (m < 0) {
        m = cria_prefetch_mode(); /* threads that race here store the same value */
        __atomic_store_n(&pf_mode_cached, m, __ATOMIC_RELAXED);
    }
    return m;
}

#define PF_L1_AHEAD 1024

/* The bytes [p, p + bytes) of a stream, PF_L2_AHEAD bytes on, into L2, and PF_L1_AHEAD bytes on
 * (by then in L2) into L1 (in mode 2; the second measured +2.7 to +4.5 % on whole-model decode). */
static inline __attribute__((always_inline)) void ahead_l2(int mode, const uint8_t *p, int bytes) {
    if (mode == 2) {
        for (int o = 0; o < bytes; o += 64) {
            __builtin_prefetch(p + PF_L2_AHEAD + o, 0, 2);
            __builtin_prefetch(p + PF_L1_AHEAD + o, 0, 3);
        }
    }
}

/* The inputs with their values, scales and sums counted from value k0 (a multiple of 16). */
static inline __attribute__((always_inline)) void acts_from(const int T, const act_row *x, int k0, act_row *out) {
    for (int t = 0; t < T; t++) {
        out[t].qs = x[t].qs + k0;
        out[t].d = x[t].d + k0 / AB;
        out[t].xs = x[t].xs + k0 / AB;
    }
}

/* dot[t] /= 16, exactly: sums of high nibbles masked in place are multiples of 16. */
static inline __attribute__((always_inline)) void dots_shift4(const int T, __m512i *dot) {
    for (int t = 0; t < T; t++) {
        dot[t] = _mm512_srai_epi32(dot[t], 4);
    }
}

static inline __attribute__((always_inline)) void dots_zero(const int T, __m512i *dot) {
    for (int t = 0; t < T; t++) {
        dot[t] = _mm512_setzero_si512();
    }
}

#define TILE_BODY(T)                                                                                        \
    static void tile##T(const panel_buf *p, int k0, int nb, act_row *x, float *acc0, float *mins0) {        \
        __m512 acc[T], mins[T];                                                                             \
        sums_in(T, acc0, mins0, acc, mins);                                                                 \
        for (int b = 0; b < nb; b++) {                                                                      \
            __m512i dot[T];                                                                                 \
            dots_zero(T, dot);                                                                              \
            const uint8_t *wb = p->w + b * 4 * 64;                                                          \
            int kb = k0 + 16 * b;                                                                           \
            for (int g = 0; g < 4; g++) {                                                                   \
                __m512i wv = _mm512_load_si512(wb + 64 * g);                                                \
                dot_line(T, wv, x, kb + 4 * g, dot);                                                        \
            }                                                                                               \
            __m512 ws = _mm512_load_ps(p->s + b * PR);                                                      \
            __m512 wm = _mm512_load_ps(p->m + b * PR);                                                      \
            block_sum(T, dot, ws, wm, x, kb, acc, mins);                                                    \
        }                                                                                                   \
        sums_out(T, acc, mins, acc0, mins0);                                                                \
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

/* Q4_0 and Q8_0 from their packed stream (panel.h's layout: per 32-value block, the gathered
 * vectors, then 16 halves of scale), dotted without building the panel: the arithmetic of tile()
 * on the bytes the builder would store, in the same order, so the results are the same bit for
 * bit. For a few inputs (decode) the builder's stores and reloads cost more than the dots. */
#define FUSED_BODY(T, eight, name)                                                                          \
    static void name(const uint8_t *cur, int k0, int kc, act_row *x0, float *acc0, float *mins0) {          \
        const __m512i lo4 = _mm512_set1_epi8(15), flip = _mm512_set1_epi8((char) 0x80);                     \
        const __m512 off = _mm512_set1_ps(eight ? 128.0f : 8.0f);                                           \
        __m512 acc[T], mins[T];                                                                             \
        sums_in(T, acc0, mins0, acc, mins);                                                                 \
        const int pf = pf_mode();                                                                           \
        act_row x[T];                                                                                       \
        acts_from(T, x0, k0, x);                                                                            \
        for (int j = 0; j < kc / 32; j++, acts_from(T, x, 32, x)) { /* x from block j's first value */     \
            ahead_l2(pf, cur, eight ? 544 : 288);                                                           \
            __m512i d[8];                                                                                   \
            for (int m = 0; m < (eight ? 8 : 4); m++) {                                                     \
                d[m] = _mm512_loadu_si512(cur + 64 * m);                                                    \
            }                                                                                               \
            cur += eight ? 512 : 256;                                                                       \
            __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) cur));                         \
            cur += 32;                                                                                      \
            __m512 wm = _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(off, ws));                         \
            for (int h = 0; h < 2; h++) {                                                                   \
                const int kb = 16 * h;                                                                      \
                __m512i dot[T];                                                                             \
                dots_zero(T, dot);                                                                          \
                for (int m = 0; m < 4; m++) {                                                               \
                    __m512i wv = eight ? _mm512_xor_si512(d[4 * h + m], flip)                               \
                                       : h ? _mm512_and_si512(_mm512_srli_epi16(d[m], 4), lo4)              \
                                           : _mm512_and_si512(d[m], lo4);                                   \
                    dot_line(T, wv, x, kb + 4 * m, dot);                                                    \
                }                                                                                           \
                block_sum(T, dot, ws, wm, x, kb, acc, mins);                                                \
            }                                                                                               \
        }                                                                                                   \
        sums_out(T, acc, mins, acc0, mins0);                                                                \
    }
FUSED_BODY(1, 0, fused1_q4)
FUSED_BODY(2, 0, fused2_q4)
FUSED_BODY(4, 0, fused4_q4)
FUSED_BODY(1, 1, fused1_q8)
FUSED_BODY(2, 1, fused2_q8)
FUSED_BODY(4, 1, fused4_q8)

/* Q4_1, Q5_0, Q5_1 and IQ4_NL from their packed stream (panel_legacy's order: per 32-value block the
 * gathered nibbles, [the 5 types: the qh words,] then the words that hold d [and the min]), dotted
 * as FUSED_BODY does Q4_0: panel_legacy's arithmetic on the same bytes, in the same order, so the
 * results are tile()'s bit for bit. Before, these types rebuilt the whole panel from the stream
 * and read it back (Q5_0 is most of a Qwen2.5-0.5B Q4_K_M file: rows of 896 values are no
 * multiple of 256, so llama.cpp gives those weights Q5_0 instead of Q4_K). */
#define FUSED_LEGACY(T, withmin, five, nl, name)                                                               \
    static void name(const uint8_t *cur, int k0, int kc, act_row *x0, float *acc0, float *mins0) {          \
        const __m512i lo4 = _mm512_set1_epi8(15), flip = _mm512_set1_epi8((char) 0x80);                     \
        const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) IQ4NL));             \
        const __m512i signbit = _mm512_set1_epi32((int32_t) 0x80000000);                                    \
        __m512 acc[T], mins[T];                                                                             \
        sums_in(T, acc0, mins0, acc, mins);                                                                 \
        const int pf = pf_mode();                                                                           \
        act_row x[T];                                                                                       \
        acts_from(T, x0, k0, x);                                                                            \
        for (int j = 0; j < kc / 32; j++, acts_from(T, x, 32, x)) { /* x from block j's first value */     \
            ahead_l2(pf, cur, five ? 384 : 320);                                                            \
            __m512i d[4];                                                                                   \
            for (int m = 0; m < 4; m++) {                                                                   \
                d[m] = _mm512_loadu_si512(cur + 64 * m);                                                    \
            }                                                                                               \
            cur += 256;                                                                                     \
            __m512i qh = _mm512_setzero_si512();                                                            \
            if (five) {                                                                                     \
                qh = _mm512_loadu_si512(cur);                                                               \
                cur += 64;                                                                                  \
            }                                                                                               \
            __m512i dm = _mm512_loadu_si512(cur);                                                           \
            cur += 64;                                                                                      \
            __m512 ws = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));                                         \
            __m512 wm;                                                                                      \
            if (withmin) {                                                                                     \
                __m512 neg = _mm512_castsi512_ps(_mm512_xor_si512(                                          \
                        _mm512_castps_si512(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)))), signbit)); \
                wm = _mm512_add_ps(neg, _mm512_mul_ps(_mm512_setzero_ps(), ws));                            \
            } else {                                                                                        \
                wm = _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(_mm512_set1_ps(nl ? 128.0f : 16.0f), ws)); \
            }                                                                                               \
            for (int h = 0; h < 2; h++) {                                                                   \
                const int kb = 16 * h;                                                                      \
                __m512i dot[T];                                                                             \
                dots_zero(T, dot);                                                                          \
                for (int m = 0; m < 4; m++) {                                                               \
                    __m512i wv = h ? _mm512_and_si512(_mm512_srli_epi16(d[m], 4), lo4) : _mm512_and_si512(d[m], lo4); \
                    if (five) {                                                                             \
                        wv = _mm512_or_si512(wv, fifth_bits(qh, 16 * h + 4 * m));                           \
                    }                                                                                       \
                    if (nl) {                                                                               \
                        wv = _mm512_xor_si512(_mm512_shuffle_epi8(table, wv), flip);                        \
                    }                                                                                       \
                    dot_line(T, wv, x, kb + 4 * m, dot);                                                    \
                }                                                                                           \
                block_sum(T, dot, ws, wm, x, kb, acc, mins);                                                \
            }                                                                                               \
        }                                                                                                   \
        sums_out(T, acc, mins, acc0, mins0);                                                                \
    }
FUSED_LEGACY(1, 0, 1, 0, fused1_q5_0)
FUSED_LEGACY(2, 0, 1, 0, fused2_q5_0)
FUSED_LEGACY(1, 1, 0, 0, fused1_q4_1)
FUSED_LEGACY(2, 1, 0, 0, fused2_q4_1)
FUSED_LEGACY(1, 1, 1, 0, fused1_q5_1)
FUSED_LEGACY(2, 1, 1, 0, fused2_q5_1)
FUSED_LEGACY(1, 0, 0, 1, fused1_iq4_nl)
FUSED_LEGACY(2, 0, 0, 1, fused2_iq4_nl)

/* One of the four, for inputs two at a time (then one). */
static void fused_legacy(int32_t type, const uint8_t *cur, int k0, int kc, act_row *x, int n, float *acc, float *mins) {
    for (int t = 0; t < n; t += 2) {
        int two = n - t >= 2;
        switch (type) {
            case T_Q5_0: (two ? fused2_q5_0 : fused1_q5_0)(cur, k0, kc, x + t, acc + t * PR, mins + t * PR); break;
            case T_Q4_1: (two ? fused2_q4_1 : fused1_q4_1)(cur, k0, kc, x + t, acc + t * PR, mins + t * PR); break;
            case T_Q5_1: (two ? fused2_q5_1 : fused1_q5_1)(cur, k0, kc, x + t, acc + t * PR, mins + t * PR); break;
            default: (two ? fused2_iq4_nl : fused1_iq4_nl)(cur, k0, kc, x + t, acc + t * PR, mins + t * PR); break;
        }
    }
}

/* Q6_K from its packed stream (panel_q6_k's order: the word that ends with d and the 16 scales,
 * then per half and 16-byte column h the gathered low bits of two runs and the high bits), one
 * super-block per chunk. Each half's 8 blocks of 16 values are dotted in integers first (h = 0
 * gives the even blocks, h = 1 the odd ones), then become float in block order, as tile() does. */
#define FUSED_Q6(T, name)                                                                                   \
    static void name(const uint8_t *cur, int k0, act_row *x0, float *acc0, float *mins0) {                  \
        act_row x[T];                                                                                       \
        acts_from(T, x0, k0, x);                                                                            \
        const __m512i lo4 = _mm512_set1_epi8(15), lo2 = _mm512_set1_epi8(3);                                \
        __m512 acc[T], mins[T];                                                                             \
        sums_in(T, acc0, mins0, acc, mins);                                                                 \
        const uint8_t *tail = cur; /* d's word, then the scales; the columns follow */                                                                   \
        __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_loadu_si512(tail), 16))); \
        const __m512 off = _mm512_set1_ps(32.0f);                                                           \
        const int pf = pf_mode();                                                                           \
        const int chunk = 320 + 4 * 768; /* the tail, then 4 columns (half, h) */                           \
        for (int half = 0; half < 2; half++) {                                                              \
            ahead_l2(pf, cur + half * (chunk / 2), chunk / 2);                                              \
            __m512i dot[8][T];                                                                              \
            for (int b = 0; b < 8; b++) {                                                                   \
                dots_zero(T, dot[b]);                                                                       \
            }                                                                                               \
            for (int h = 0; h < 2; h++) {                                                                   \
                const uint8_t *c = cur + 320 + (2 * half + h) * 768;                                              \
                for (int m = 0; m < 4; m++) {                                                               \
                    __m512i l0 = _mm512_loadu_si512(c + 64 * m), l1 = _mm512_loadu_si512(c + 256 + 64 * m); \
                    __m512i hh = _mm512_loadu_si512(c + 512 + 64 * m);                                      \
                    __m512i q[4];                                                                           \
                    q[0] = _mm512_or_si512(_mm512_and_si512(l0, lo4), _mm512_slli_epi16(_mm512_and_si512(hh, lo2), 4)); \
                    q[1] = _mm512_or_si512(_mm512_and_si512(l1, lo4),                                       \
                            _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hh, 2), lo2), 4));         \
                    q[2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), lo4),                 \
                            _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hh, 4), lo2), 4));         \
                    q[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), lo4),                 \
                            _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hh, 6), lo2), 4));         \
                    for (int i = 0; i < 4; i++) {                                                           \
                        int b = 2 * i + h; /* block within the half */                                      \
                        const int kv = 128 * half + 16 * b + 4 * m;                                         \
                        dot_line(T, q[i], x, kv, dot[b]);                                                   \
                    }                                                                                       \
                }                                                                                           \
            }                                                                                               \
            for (int b = 0; b < 8; b++) {                                                                   \
                int is = 8 * half + b;                                                                      \
                __m512i sc4 = _mm512_loadu_si512(tail + 64 + 64 * (is / 4));                                \
                __m512i v = _mm512_srai_epi32(_mm512_slli_epi32(sc4, 24 - 8 * (is % 4)), 24);               \
                __m512 ws = _mm512_mul_ps(d, _mm512_cvtepi32_ps(v));                                        \
                __m512 wm = _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(off, ws));                     \
                const int kb = 16 * is;                                                                     \
                block_sum(T, dot[b], ws, wm, x, kb, acc, mins);                                             \
            }                                                                                               \
        }                                                                                                   \
        sums_out(T, acc, mins, acc0, mins0);                                                                \
    }
FUSED_Q6(1, fused1_q6)
FUSED_Q6(2, fused2_q6)

/* Q4_K and Q5_K from their packed stream (panel_q45_k's order: the 16-byte heads, [Q5_K: the high
 * bits of both 16-byte columns,] then for each 64-value group g the nibbles of column 0, then of
 * column 1), one super-block per chunk, read front to back. Group g's four blocks of 16 values
 * are 4g (low nibbles of h = 0), 4g + 1 (h = 1), 4g + 2 and 4g + 3 (high nibbles): reading both
 * columns at once keeps block order. */
#define FUSED_QK(T, five, name)                                                                             \
    static void name(const uint8_t *cur, int k0, act_row *x0, float *acc0, float *mins0) {                  \
        act_row x[T];                                                                                       \
        acts_from(T, x0, k0, x); /* value indices below count from k0: constants once unrolled */          \
        const __m512i lo4 = _mm512_set1_epi8(15), hi4 = _mm512_set1_epi8((char) 0xF0), one = _mm512_set1_epi8(1); \
        const int hb = five ? 1280 : 1024; /* bytes per column h */                                              \
        const int qs = five ? 512 : 0; /* Q5_K: both columns' high bits come first */                       \
        __m512 acc[T], mins[T];                                                                             \
        sums_in(T, acc0, mins0, acc, mins);                                                                 \
        const uint8_t *head = cur; /* the heads come first; the columns follow */                                                                 \
        __m512i dd = _mm512_loadu_si512(head);                                                              \
        __m512 dv = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));                                             \
        __m512 dminv = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));                   \
        __m512i s0 = _mm512_loadu_si512(head + 64), s1 = _mm512_loadu_si512(head + 128), s2 = _mm512_loadu_si512(head + 192); \
        const __m512i m63 = _mm512_set1_epi32(63), m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3);  \
        const int pf = pf_mode();                                                                           \
        _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {                                              \
            if (pf == 1) {                                                                                  \
                for (int o = 0; o < (256 + 2 * hb) / 4; o += 64) { /* a quarter of the chunk after next */   \
                    __builtin_prefetch(cur + 2 * (256 + 2 * hb) + g * ((256 + 2 * hb) / 4) + o, 0, 3);       \
                }                                                                                           \
            }                                                                                               \
            ahead_l2(pf, cur + g * ((256 + 2 * hb) / 4), (256 + 2 * hb) / 4);                                \
            _Pragma("GCC unroll 2") for (int jj = 0; jj < 2; jj++) { /* the two 32-value scale groups of g */ \
                int j = 2 * g + jj;                                                                         \
                __m512i sc, mn;                                                                             \
                if (j < 4) {                                                                                \
                    sc = _mm512_and_si512(_mm512_srli_epi32(s0, 8 * j), m63);                               \
                    mn = _mm512_and_si512(_mm512_srli_epi32(s1, 8 * j), m63);                               \
                } else {                                                                                    \
                    int sh = 8 * (j - 4);                                                                   \
                    __m512i xx = _mm512_srli_epi32(s2, sh);                                                 \
                    sc = _mm512_or_si512(_mm512_and_si512(xx, m15), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s0, sh + 6), m3), 4)); \
                    mn = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(xx, 4), m15),                   \
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s1, sh + 6), m3), 4));     \
                }                                                                                           \
                __m512 ws = _mm512_mul_ps(dv, _mm512_cvtepi32_ps(sc));                                      \
                __m512 wm = _mm512_add_ps(_mm512_mul_ps(dminv, _mm512_cvtepi32_ps(mn)), _mm512_mul_ps(_mm512_setzero_ps(), ws)); \
                _Pragma("GCC unroll 2") for (int i = 2 * jj; i < 2 * jj + 2; i++) {                         \
                    const int kb = 64 * g + 16 * i;                                                         \
                    __m512i dot[T];                                                                         \
                    dots_zero(T, dot);                                                                      \
                    const int h = i & 1, high = i >> 1; /* block 4g + i: column h, low or high nibbles */  \
                    for (int m = 0; m < 4; m++) { /* lines made as they are used: no array of 16 to spill */ \
                        __m512i v = _mm512_loadu_si512(cur + 256 + qs + (2 * g + h) * 256 + 64 * m);              \
                        /* Q4_K's high nibbles masked in place (16 times the value): one exact shift of the \
                         * block's sums instead of one per line */                                         \
                        __m512i q = five ? _mm512_and_si512(high ? _mm512_srli_epi16(v, 4) : v, lo4)        \
                                         : _mm512_and_si512(v, high ? hi4 : lo4);                           \
                        if (five) {                                                                         \
                            __m512i qh = _mm512_loadu_si512(cur + 256 + h * 256 + 64 * m);                        \
                            q = _mm512_or_si512(q, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 2 * g + high), one), 4)); \
                        }                                                                                   \
                        dot_line(T, q, x, kb + 4 * m, dot);                                                 \
                    }                                                                                       \
                    if (!five && high) {                                                                    \
                        dots_shift4(T, dot);                                                                \
                    }                                                                                       \
                    block_sum(T, dot, ws, wm, x, kb, acc, mins);                                            \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
        sums_out(T, acc, mins, acc0, mins0);                                                                \
    }
FUSED_QK(1, 0, fused1_q4k)
FUSED_QK(2, 0, fused2_q4k)
FUSED_QK(1, 1, fused1_q5k)
FUSED_QK(2, 1, fused2_q5k)

/* The inputs in groups of up to 4 (more would be cheaper through the built panel). */
static void fused(int eight, const uint8_t *cur, int k0, int kc, act_row *x, int nt, float *acc, float *mins) {
    while (nt > 0) {
        int t = nt >= 4 ? 4 : nt >= 2 ? 2 : 1;
        switch (t) {
            case 4: (eight ? fused4_q8 : fused4_q4)(cur, k0, kc, x, acc, mins); break;
            case 2: (eight ? fused2_q8 : fused2_q4)(cur, k0, kc, x, acc, mins); break;
            default: (eight ? fused1_q8 : fused1_q4)(cur, k0, kc, x, acc, mins); break;
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

/* Up to how many inputs a packed weight is dotted straight from its stream (fused*), rather than
 * through the built panel, which pays its stores once for all inputs. */
#ifndef FUSED_N_LEGACY
#define FUSED_N_LEGACY 4
#endif
#ifndef FUSED_N_Q6
#define FUSED_N_Q6 4
#endif
_Static_assert(FUSED_N_LEGACY <= MAXT && FUSED_N_Q6 <= MAXT, "the fused paths take their inputs in one act_row array");
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

/* Bytes of a packed chunk of kc values (panel.h's COUNT mode: what the builder would read); 0 when
 * the type has no direct builder. */
static int64_t count_stream_bytes(int32_t type, int kc) {
#if CRIA_VNNI
    static __thread uint8_t pw[PR * CH] __attribute__((aligned(64)));
    static __thread float ps[PR * (CH / 16)] __attribute__((aligned(64))), pm[PR * (CH / 16)] __attribute__((aligned(64)));
    uint8_t base[1];
    uint8_t *cur = base;
    if (!panel_any(COUNT, &cur, type, 0, 0, 0, kc, pw, ps, pm)) {
        return 0;
    }
    return cur - base;
#else
    (void) type;
    (void) kc;
    return 0;
#endif
}

/* count_stream_bytes, counted once per type and chunk length (kc is a multiple of 64 up to CH):
 * every product on a packed weight asks, and the count runs a whole builder. Threads that race
 * here store the same value. */
static int64_t chunk_stream_bytes(int32_t type, int kc) {
    static int64_t known[32][CH / 64 + 1];
    if (type < 0 || type >= 32 || kc <= 0 || kc > CH || kc % 64 != 0) {
        return count_stream_bytes(type, kc);
    }
    int64_t v = __atomic_load_n(&known[type][kc / 64], __ATOMIC_RELAXED);
    if (v == 0) {
        v = count_stream_bytes(type, kc);
        v = v > 0 ? v : -1; /* -1: the type has no direct builder */
        __atomic_store_n(&known[type][kc / 64], v, __ATOMIC_RELAXED);
    }
    return v > 0 ? v : 0;
}

/* The packed form: the weight's full 16-row panels, one after the other, each its chunks in order,
 * each chunk the vectors its builder gathers, as it gathers them (panel.h). The rows of a last
 * partial panel are not packed (they are read from the weight). */
static int layout(int32_t type, int32_t k, int64_t *chunk, int64_t *panel) {
    kind kd;
    if (!kind_of(type, &kd) || k <= 0 || k % kd.group != 0 || (kd.group == 256 && k % CH != 0)) {
        return 0;
    }
    int64_t full = chunk_stream_bytes(type, CH);
    if (full <= 0) {
        return 0;
    }
    int last = k % CH;
    *chunk = full;
    *panel = (int64_t) (k / CH) * full + (last ? chunk_stream_bytes(type, last) : 0);
    return 1;
}

int64_t matmul_quant_packed_bytes(int32_t type, int32_t rows, int32_t k) {
    int64_t chunk, panel;
    if (rows < PR || !layout(type, k, &chunk, &panel)) {
        return 0;
    }
    return (int64_t) (rows / PR) * panel;
}

int32_t matmul_quant_pack(int32_t type, const uint8_t *w, int64_t wrb, int32_t p0, int32_t p1, int32_t k, uint8_t *packed) {
#if CRIA_VNNI
    int64_t chunk, panel;
    if (!layout(type, k, &chunk, &panel)) {
        return -1;
    }
    static __thread uint8_t pw[PR * CH] __attribute__((aligned(64)));
    static __thread float ps[PR * (CH / 16)] __attribute__((aligned(64))), pm[PR * (CH / 16)] __attribute__((aligned(64)));
    for (int32_t q = p0; q < p1; q++) {
        uint8_t *cur = packed + (int64_t) q * panel;
        for (int k0 = 0; k0 < k; k0 += CH) {
            int kc = k - k0 < CH ? k - k0 : CH;
            panel_any(RECORD, &cur, type, w + (int64_t) q * PR * wrb, wrb, k0, kc, pw, ps, pm);
        }
    }
    return 0;
#else
    (void) type; (void) w; (void) wrb; (void) p0; (void) p1; (void) k; (void) packed;
    return -1;
#endif
}

int32_t matmul_quant(int32_t type, const uint8_t *w, int64_t wrb, const uint8_t *packed, int32_t r0, int32_t r1, int32_t k,
                     const uint8_t *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch) {
    kind kd;
    if (!kind_of(type, &kd) || k % kd.group != 0) {
        return -1;
    }
    int64_t pchunk = 0, ppanel = 0;
    if (packed != 0 && (r0 % PR != 0 || !layout(type, k, &pchunk, &ppanel))) {
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
            int built = 0;
#if CRIA_VNNI
            if (packed != 0 && nr == PR && n <= FUSED_N_LEGACY && (type == T_Q4_0 || type == T_Q8_0)) {
                const uint8_t *cur = packed + (int64_t) (r / PR) * ppanel + (int64_t) (k0 / CH) * pchunk;
                for (int t = 0; t < n; t++) {
                    xr[t] = act_at((uint8_t *) x + (int64_t) t * xs, k);
                }
                fused(type == T_Q8_0, cur, k0, kc, xr, n, p.acc, p.mins);
                continue;
            }
            if (packed != 0 && nr == PR && n <= FUSED_N_LEGACY
                    && (type == T_Q5_0 || type == T_Q4_1 || type == T_Q5_1 || type == T_IQ4_NL)) {
                const uint8_t *cur = packed + (int64_t) (r / PR) * ppanel + (int64_t) (k0 / CH) * pchunk;
                for (int t = 0; t < n; t++) {
                    xr[t] = act_at((uint8_t *) x + (int64_t) t * xs, k);
                }
                fused_legacy(type, cur, k0, kc, xr, n, p.acc, p.mins);
                continue;
            }
            if (packed != 0 && nr == PR && n <= FUSED_N_Q6 && (type == T_Q4_K || type == T_Q5_K)) {
                const uint8_t *cur = packed + (int64_t) (r / PR) * ppanel + (int64_t) (k0 / CH) * pchunk;
                for (int t = 0; t < n; t++) {
                    xr[t] = act_at((uint8_t *) x + (int64_t) t * xs, k);
                }
                for (int t = 0; t < n; t += 2) {
                    int two = n - t >= 2;
                    (type == T_Q5_K ? (two ? fused2_q5k : fused1_q5k) : (two ? fused2_q4k : fused1_q4k))(cur, k0, xr + t, p.acc + t * PR,
                                                                                                     p.mins + t * PR);
                }
                continue;
            }
            if (packed != 0 && nr == PR && n <= FUSED_N_Q6 && type == T_Q6_K) {
                const uint8_t *cur = packed + (int64_t) (r / PR) * ppanel + (int64_t) (k0 / CH) * pchunk;
                for (int t = 0; t < n; t++) {
                    xr[t] = act_at((uint8_t *) x + (int64_t) t * xs, k);
                }
                for (int t = 0; t < n; t += 2) {
                    (n - t >= 2 ? fused2_q6 : fused1_q6)(cur, k0, xr + t, p.acc + t * PR, p.mins + t * PR);
                }
                continue;
            }
            if (packed != 0 && nr == PR) {
                uint8_t *cur = (uint8_t *) packed + (int64_t) (r / PR) * ppanel + (int64_t) (k0 / CH) * pchunk;
                /* one stream: the hardware prefetcher follows it (software prefetches only stalled here) */
                built = panel_any(REPLAY, &cur, type, 0, 0, k0, kc, p.w, p.s, p.m);
            } else {
                prefetch_ahead(w, wrb, r, nr, r1, k0 / CH + PF_AHEAD, chunks, (int64_t) (CH / kd.group) * kd.bytes);
                built = !(nr < PR || (kc < CH && kd.group == 256)) && panel_fast(type, w + (int64_t) r * wrb, wrb, k0, kc, p.w, p.s, p.m);
            }
#else
            prefetch_ahead(w, wrb, r, nr, r1, k0 / CH + PF_AHEAD, chunks, (int64_t) (CH / kd.group) * kd.bytes);
#endif
            if (!built) {
                make_chunk(type, &kd, w, wrb, r, nr, k0, kc, &p);
            }
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
