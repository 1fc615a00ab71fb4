/* Training's matrix products: out = x.w^T, dx = g.w, dw += g^T.x, on one register-blocked kernel.
 * The kernel keeps a tile of MR rows by 32 columns (two 16-float registers per row) of the result in
 * registers and runs the whole reduction through it: each step loads two vectors of the right-hand
 * side and broadcasts MR values of the left. Every result element is one fused multiply-add chain
 * over the reduction in ascending order (starting from 0, or from the value it accumulates into),
 * whatever the tile, so results do not depend on how rows are split over threads. */
#include "train.h"
#include "matmul.h"
#include "train_simd.h"
#include <math.h>
#include <string.h>

#define NR 32   /* columns per packed panel of the right-hand side: two vectors */
#define MR 12   /* rows per register tile: 24 accumulators of the 32 registers */
#ifndef KC
#define KC 192  /* most reduction rows per block: a packed panel block (at most KC x NR, 24 KiB) stays in L1 */
#endif
#define KCW 256 /* input rows per block of dw's reduction (x's rows packed, 32 KiB a panel) */
#define MC 96   /* left-hand rows per block: reused across every panel while they sit in L2 */

static inline int64_t round_up(int64_t v, int64_t to) {
    return (v + to - 1) / to * to;
}

/* Rows per block of a reduction of k: the fewest blocks of at most KC, of equal size (k = 288 is
 * two blocks of 144, not 128 + 128 + 32, whose last would pay a tile's load and store for little). */
static inline int kblock(int k) {
    int blocks = (k + KC - 1) / KC;
    return (int) round_up((k + blocks - 1) / blocks, 4);
}

int64_t cria_train_matmul_scratch(int32_t k, int32_t o) {
    int64_t fwd = round_up(o, NR) * k;                        /* w^T packed */
    int64_t dx = (int64_t) o * round_up(k, NR);               /* w packed */
    int64_t dw = (int64_t) KCW * (round_up(k, NR) + round_up(o, MR)) + 16; /* a block of x and one of g */
    int64_t m = fwd > dx ? fwd : dx;
    return (m > dw ? m : dw) + 16;
}

#if CRIA_VNNI
/* c[r][0..16 NV) (= or +=) sum_kk a(r, kk) * b[kk][0..16 NV) for r < R; a(r, kk) = a[r * ars + kk * aks],
 * b a packed panel block (rows of NR floats); masks m0, m1 on c's two vectors. */
static inline __attribute__((always_inline)) void kern(const int R, const int NV, int kc, const float *a, int64_t ars, int64_t aks,
                                                       const float *b, float *c, int64_t cs, __mmask16 m0, __mmask16 m1, int load) {
    __m512 c0[MR], c1[MR];
    for (int r = 0; r < R; r++) {
        if (load) {
            c0[r] = _mm512_maskz_loadu_ps(m0, c + r * cs);
            if (NV > 1) {
                c1[r] = _mm512_maskz_loadu_ps(m1, c + r * cs + 16);
            }
        } else {
            /* the tile is written at the end: its lines are fetched while the products run */
            _mm_prefetch((const char *) (c + r * cs), _MM_HINT_ET0);
            if (NV > 1) {
                _mm_prefetch((const char *) (c + r * cs + 16), _MM_HINT_ET0);
            }
            c0[r] = _mm512_setzero_ps();
            c1[r] = _mm512_setzero_ps();
        }
    }
    for (int kk = 0; kk < kc; kk++) {
        __m512 b0 = _mm512_load_ps(b + kk * NR);
        __m512 b1 = NV > 1 ? _mm512_load_ps(b + kk * NR + 16) : b0;
        const float *ak = a + kk * aks;
        for (int r = 0; r < R; r++) {
            __m512 av = _mm512_set1_ps(ak[r * ars]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            if (NV > 1) {
                c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        _mm512_mask_storeu_ps(c + r * cs, m0, c0[r]);
        if (NV > 1) {
            _mm512_mask_storeu_ps(c + r * cs + 16, m1, c1[r]);
        }
    }
}

/* Rows [0, m) against one panel block of NV vectors: MR rows at a time, then 8, 4 and single rows
 * (always inlined with a constant NV, so each kern below is specialized). */
static inline __attribute__((always_inline)) void rows_nv(const int NV, int m, int kc, const float *a, int64_t ars, int64_t aks,
                                                          const float *b, float *c, int64_t cs, __mmask16 m0, __mmask16 m1, int load) {
    int r = 0;
    for (; r + MR <= m; r += MR) {
        kern(MR, NV, kc, a + r * ars, ars, aks, b, c + r * cs, cs, m0, m1, load);
    }
    for (; r + 8 <= m; r += 8) {
        kern(8, NV, kc, a + r * ars, ars, aks, b, c + r * cs, cs, m0, m1, load);
    }
    for (; r + 4 <= m; r += 4) {
        kern(4, NV, kc, a + r * ars, ars, aks, b, c + r * cs, cs, m0, m1, load);
    }
    for (; r < m; r++) {
        kern(1, NV, kc, a + r * ars, ars, aks, b, c + r * cs, cs, m0, m1, load);
    }
}

/* Rows [0, m) against one panel block: two vectors, or one when the panel has at most 16 columns left. */
static void rows_kern(int m, int kc, const float *a, int64_t ars, int64_t aks, const float *b, float *c, int64_t cs, int cols,
                      int load) {
    __mmask16 m0 = mask_of(cols), m1 = mask_of(cols - 16);
    if (cols > 16) {
        rows_nv(2, m, kc, a, ars, aks, b, c, cs, m0, m1, load);
    } else {
        rows_nv(1, m, kc, a, ars, aks, b, c, cs, m0, m1, load);
    }
}

/* Packs B (kk, j) = b[kk * bks + j * bjs] for kk in [k0, k0 + kc), j in [0, n) into panel blocks:
 * panel p is kc rows of NR floats (zeros past n) at dst + p * kc * NR. */
static void pack_b(const float *b, int64_t bks, int64_t bjs, int k0, int kc, int n, float *dst) {
    int panels = (n + NR - 1) / NR;
    for (int p = 0; p < panels; p++) {
        float *d = dst + (int64_t) p * kc * NR;
        int cols = n - p * NR < NR ? n - p * NR : NR;
        if (bjs == 1) {
            __mmask16 m0 = mask_of(cols), m1 = mask_of(cols - 16);
            for (int kk = 0; kk < kc; kk++) {
                const float *src = b + (int64_t) (k0 + kk) * bks + p * NR;
                _mm512_store_ps(d + kk * NR, _mm512_maskz_loadu_ps(m0, src));
                _mm512_store_ps(d + kk * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
        } else {
            /* transposing: column j of B is contiguous along kk */
            for (int j = 0; j < NR; j++) {
                if (j < cols) {
                    const float *src = b + (int64_t) (p * NR + j) * bjs + (int64_t) k0 * bks;
                    for (int kk = 0; kk < kc; kk++) {
                        d[kk * NR + j] = src[kk * bks];
                    }
                } else {
                    for (int kk = 0; kk < kc; kk++) {
                        d[kk * NR + j] = 0;
                    }
                }
            }
        }
    }
}

/* Packs all of B (k rows, n columns) block by block: block kb (rows [kb, kb + kc)) at dst + kb * round_up(n, NR). */
static void pack_b_all(const float *b, int64_t bks, int64_t bjs, int k, int n, float *dst) {
    int64_t np = round_up(n, NR);
    int kcb = kblock(k);
    for (int kb = 0; kb < k; kb += kcb) {
        pack_b(b, bks, bjs, kb, k - kb < kcb ? k - kb : kcb, n, dst + kb * np);
    }
}

/* One product of a row block: C[i][j] (= or, with acc, +=) sum_kk A(i, kk) B(kk, j) for j < n, kk < k;
 * A(i, kk) = a[i * ars + kk], B packed by pack_b_all. */
typedef struct {
    const float *a;
    int64_t ars;
    const float *bp;
    int n, k;
    float *c;
    int64_t cs;
    int acc;
} part;

/* Rows [0, m) of every part, a block of MC rows at a time through all the parts (so that rows the
 * parts share, or a C they share, stay in cache from one part to the next). Each element is one
 * fused multiply-add chain over kk ascending from 0 or from C, whatever the blocking. */
static void gemm_parts(int m, int count, const part *parts) {
    /* packed weights that together outgrow half of L2 are taken one after the other, each over
     * all the rows, so that each stays in L2 (the rows then come again from L3) */
    int64_t packed = 0;
    for (int j = 0; j < count; j++) {
        packed += round_up(parts[j].n, NR) * parts[j].k * 4;
    }
    if (count > 1 && packed > (512 << 10)) {
        for (int j = 0; j < count; j++) {
            gemm_parts(m, 1, &parts[j]);
        }
        return;
    }
    for (int ib = 0; ib < m; ib += MC) {
        int mb = m - ib < MC ? m - ib : MC;
        int next = ib + MC < m ? (m - ib - MC < MC ? m - ib - MC : MC) : 0;
        for (int j = 0; j < count; j++) {
            const part *q = &parts[j];
            const float *a = q->a + ib * q->ars;
            float *c = q->c + ib * q->cs;
            int n = q->n, k = q->k;
            if (k == 0) {
                for (int i = 0; i < mb && !q->acc; i++) {
                    memset(c + i * q->cs, 0, (size_t) n * 4);
                }
                continue;
            }
            int64_t np = round_up(n, NR);
            int kcb = kblock(k);
            int panels = (n + NR - 1) / NR;
            /* the next block's rows of a are fetched into L2 a few per panel (rows of 64 to 768
             * floats are too short for the hardware prefetcher to follow) */
            int per = (next + panels - 1) / panels;
            for (int kb = 0; kb < k; kb += kcb) {
                int kc = k - kb < kcb ? k - kb : kcb;
                for (int p = 0; p < panels; p++) {
                    for (int r = p * per; r < (p + 1) * per && r < next; r++) {
                        const char *row = (const char *) (a + (MC + r) * q->ars + kb);
                        for (int off = 0; off < kc * 4 + 63; off += 64) {
                            _mm_prefetch(row + off, _MM_HINT_T1);
                        }
                    }
                    rows_kern(mb, kc, a + kb, q->ars, 1, q->bp + kb * np + (int64_t) p * kc * NR, c + p * NR, q->cs, n - p * NR,
                              q->acc || kb > 0);
                }
            }
        }
    }
}

/* dw_j[r][c] += sum_i g_j[i][r] x[i][c] (i < n, c < k) for the rows [r0, r1) of the weights stacked
 * (d[j] = {g, gs, dw, o}; dw rows k floats apart). x is packed once per block of KCW rows for all
 * the weights; each weight's slivers of g are copied beside it. */
static void dw_parts(const float *x, int64_t xs, int n, int k, int count, const int64_t *d, int r0, int r1, float *scratch) {
    float *bp = scratch;                           /* KCW rows of x, packed in panels */
    float *ap = scratch + KCW * round_up(k, NR);   /* the same rows of g's columns: ap[s][kk][MR] per sliver s */
    for (int kb = 0; kb < n; kb += KCW) {
        int kc = n - kb < KCW ? n - kb : KCW;
        int next = n - kb - kc < KCW ? n - kb - kc : KCW;
        pack_b(x, xs, 1, kb, kc, k, bp);
        int64_t base = 0;
        int first = 1;
        for (int j = 0; j < count; j++) {
            const float *g = (const float *) (intptr_t) d[4 * j];
            int64_t gs = d[4 * j + 1];
            float *dw = (float *) (intptr_t) d[4 * j + 2];
            int o = (int) d[4 * j + 3];
            int lo = r0 - base > 0 ? (int) (r0 - base) : 0;
            int hi = r1 - base < o ? (int) (r1 - base) : o;
            base += o;
            if (lo >= hi) {
                continue;
            }
            int m = hi - lo;
            /* g's rows are gs apart (often a power-of-two stride that maps every row onto the same
             * few cache sets): each sliver's values are copied together, row by row of g */
            for (int kk = 0; kk < kc; kk++) {
                const float *src = g + (int64_t) (kb + kk) * gs + lo;
                for (int s = 0; s * MR < m; s++) {
                    __mmask16 mk = mask_of(m - s * MR < MR ? m - s * MR : MR);
                    _mm512_mask_storeu_ps(ap + (int64_t) s * kc * MR + kk * MR, mk, _mm512_maskz_loadu_ps(mk, src + s * MR));
                }
            }
            /* the next block's rows of this g (and, with the first weight, of x) are fetched into L2 a few per tile */
            int gx = first ? 2 * next : next;
            first = 0;
            int calls = ((k + NR - 1) / NR) * ((m + MR - 1) / MR);
            int per = (gx + calls - 1) / calls, u = 0;
            for (int p = 0; p * NR < k; p++) {
                for (int s = 0; s * MR < m; s++) {
                    for (int e = u + per; u < e && u < gx; u++) {
                        const char *row = u < next ? (const char *) (g + (int64_t) (kb + kc + u) * gs + lo)
                                                   : (const char *) (x + (int64_t) (kb + kc + u - next) * xs);
                        int bytes = (u < next ? m : k) * 4 + 63;
                        for (int off = 0; off < bytes; off += 64) {
                            _mm_prefetch(row + off, _MM_HINT_T1);
                        }
                    }
                    rows_kern(m - s * MR < MR ? m - s * MR : MR, kc, ap + (int64_t) s * kc * MR, 1, MR, bp + (int64_t) p * kc * NR,
                              dw + (int64_t) (lo + s * MR) * k + p * NR, k, k - p * NR, 1);
                }
            }
        }
    }
}
#endif

void cria_train_matmul_multi(const float *x, int64_t xo, int64_t xs, int32_t i0, int32_t i1, int32_t k, int32_t count,
                             const int64_t *desc, float *scratch) {
    x += xo + (int64_t) i0 * xs;
#if CRIA_VNNI
    part parts[CRIA_TRAIN_MAX_PARTS];
    float *bp = scratch;
    for (int j = 0; j < count; j++) {
        const float *w = (const float *) (intptr_t) desc[4 * j];
        int o = (int) desc[4 * j + 2];
        int64_t os = desc[4 * j + 3];
        /* B(kk, r) = w[r][kk] */
        pack_b_all(w, 1, k, k, o, bp);
        parts[j] = (part) {x, xs, bp, o, k, (float *) (intptr_t) desc[4 * j + 1] + (int64_t) i0 * os, os, 0};
        bp += round_up(o, NR) * k;
    }
    gemm_parts(i1 - i0, count, parts);
#else
    (void) scratch;
    for (int j = 0; j < count; j++) {
        const float *w = (const float *) (intptr_t) desc[4 * j];
        float *out = (float *) (intptr_t) desc[4 * j + 1];
        int o = (int) desc[4 * j + 2];
        int64_t os = desc[4 * j + 3];
        for (int i = 0; i < i1 - i0; i++) {
            for (int r = 0; r < o; r++) {
                float s = 0;
                for (int kk = 0; kk < k; kk++) {
                    s = fmaf(x[(int64_t) i * xs + kk], w[(int64_t) r * k + kk], s);
                }
                out[(int64_t) (i0 + i) * os + r] = s;
            }
        }
    }
#endif
}

void cria_train_matmul(const float *x, int64_t xo, int64_t xs, int32_t i0, int32_t i1, int32_t k, const float *w, int32_t o,
                       float *out, int64_t oo, int64_t os, float *scratch) {
    int64_t desc[4] = {(int64_t) (intptr_t) w, (int64_t) (intptr_t) (out + oo), o, os};
    cria_train_matmul_multi(x, xo, xs, i0, i1, k, 1, desc, scratch);
}

void cria_train_matmul_dx_multi(int32_t i0, int32_t i1, int32_t k, int32_t count, const int64_t *desc, float *dx, int64_t dxo,
                                int64_t dxs, int32_t accumulate, float *scratch) {
    dx += dxo + (int64_t) i0 * dxs;
#if CRIA_VNNI
    part parts[CRIA_TRAIN_MAX_PARTS];
    float *bp = scratch;
    for (int j = 0; j < count; j++) {
        const float *g = (const float *) (intptr_t) desc[4 * j];
        int64_t gs = desc[4 * j + 1];
        const float *w = (const float *) (intptr_t) desc[4 * j + 2];
        int o = (int) desc[4 * j + 3];
        /* B(r, c) = w[r][c]; the products add up into dx in order */
        pack_b_all(w, k, 1, o, k, bp);
        parts[j] = (part) {g + (int64_t) i0 * gs, gs, bp, k, o, dx, dxs, accumulate || j > 0};
        bp += (int64_t) o * round_up(k, NR);
    }
    gemm_parts(i1 - i0, count, parts);
#else
    (void) scratch;
    for (int i = 0; i < i1 - i0; i++) {
        for (int c = 0; c < k; c++) {
            float s = accumulate ? dx[(int64_t) i * dxs + c] : 0;
            for (int j = 0; j < count; j++) {
                const float *g = (const float *) (intptr_t) desc[4 * j];
                int64_t gs = desc[4 * j + 1];
                const float *w = (const float *) (intptr_t) desc[4 * j + 2];
                int o = (int) desc[4 * j + 3];
                for (int r = 0; r < o; r++) {
                    s = fmaf(g[(int64_t) (i0 + i) * gs + r], w[(int64_t) r * k + c], s);
                }
            }
            dx[(int64_t) i * dxs + c] = s;
        }
    }
#endif
}

void cria_train_matmul_dx(const float *g, int64_t go, int64_t gs, int32_t i0, int32_t i1, int32_t o, const float *w, int32_t k,
                          float *dx, int64_t dxo, int64_t dxs, int32_t accumulate, float *scratch) {
    int64_t desc[4] = {(int64_t) (intptr_t) (g + go), gs, (int64_t) (intptr_t) w, o};
    cria_train_matmul_dx_multi(i0, i1, k, 1, desc, dx, dxo, dxs, accumulate, scratch);
}

void cria_train_matmul_dw_multi(const float *x, int64_t xo, int64_t xs, int32_t n, int32_t k, int32_t count, const int64_t *desc,
                                int32_t r0, int32_t r1, float *scratch) {
    x += xo;
#if CRIA_VNNI
    dw_parts(x, xs, n, k, count, desc, r0, r1, scratch);
#else
    (void) scratch;
    int64_t base = 0;
    for (int j = 0; j < count; j++) {
        const float *g = (const float *) (intptr_t) desc[4 * j];
        int64_t gs = desc[4 * j + 1];
        float *dw = (float *) (intptr_t) desc[4 * j + 2];
        int o = (int) desc[4 * j + 3];
        for (int r = 0; r < o; r++) {
            if (base + r < r0 || base + r >= r1) {
                continue;
            }
            for (int c = 0; c < k; c++) {
                float s = dw[(int64_t) r * k + c];
                for (int i = 0; i < n; i++) {
                    s = fmaf(g[(int64_t) i * gs + r], x[(int64_t) i * xs + c], s);
                }
                dw[(int64_t) r * k + c] = s;
            }
        }
        base += o;
    }
#endif
}

void cria_train_matmul_dw(const float *g, int64_t go, int64_t gs, const float *x, int64_t xo, int64_t xs, int32_t n, int32_t r0,
                          int32_t r1, int32_t k, float *dw, int64_t dws, float *scratch) {
    /* rows [r0, r1) of a weight with dws-float rows: a weight of r1 - r0 rows of dws floats, k of them taken */
    int64_t desc[4] = {(int64_t) (intptr_t) (g + go + r0), gs, (int64_t) (intptr_t) (dw + (int64_t) r0 * dws), r1 - r0};
    if (dws == k) {
        cria_train_matmul_dw_multi(x, xo, xs, n, k, 1, desc, 0, r1 - r0, scratch);
    } else {
        for (int r = r0; r < r1; r++) { /* never taken by the callers: dw rows are always k floats */
            for (int c = 0; c < k; c++) {
                float s = dw[(int64_t) r * dws + c];
                for (int i = 0; i < n; i++) {
                    s = fmaf(g[go + (int64_t) i * gs + r], x[xo + (int64_t) i * xs + c], s);
                }
                dw[(int64_t) r * dws + c] = s;
            }
        }
    }
}

/* The loss of one row of logits l (vocab values; target t >= 0) and, with grad, its gradient
 * scale * (softmax - onehot) written over l. */
static double xent_row(float *l, int vocab, int t, float scale, int grad) {
#if CRIA_VNNI
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int v = 0; v < vocab; v += 16) {
        mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), mask_of(vocab - v), l + v));
    }
    float max = _mm512_reduce_max_ps(mx);
    float lt = l[t];
    __m512 acc = _mm512_setzero_ps(), m16 = _mm512_set1_ps(max);
    for (int v = 0; v < vocab; v += 16) {
        __mmask16 m = mask_of(vocab - v);
        __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, l + v), m16)));
        acc = _mm512_add_ps(acc, e);
        if (grad) {
            _mm512_mask_storeu_ps(l + v, m, e); /* kept for the gradient: one exponential per logit */
        }
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (grad) {
        __m512 f = _mm512_set1_ps(scale / sum);
        for (int v = 0; v < vocab; v += 16) {
            __mmask16 m = mask_of(vocab - v);
            _mm512_mask_storeu_ps(l + v, m, _mm512_mul_ps(f, _mm512_maskz_loadu_ps(m, l + v)));
        }
        l[t] -= scale;
    }
    return (double) (max + logf(sum)) - lt;
#else
    float max = -INFINITY;
    for (int v = 0; v < vocab; v++) {
        max = l[v] > max ? l[v] : max;
    }
    float lt = l[t];
    float sum = 0;
    for (int v = 0; v < vocab; v++) {
        float e = expf(l[v] - max);
        sum += e;
        if (grad) {
            l[v] = e;
        }
    }
    if (grad) {
        float f = scale / sum;
        for (int v = 0; v < vocab; v++) {
            l[v] *= f;
        }
        l[t] -= scale;
    }
    return (double) (max + logf(sum)) - lt;
#endif
}

void cria_train_softmax_xent(float *logits, int64_t lo, int64_t ls, int32_t r0, int32_t r1, int32_t vocab, const int32_t *targets,
                             float scale, int32_t grad, double *loss) {
    for (int32_t r = r0; r < r1; r++) {
        float *l = logits + lo + (int64_t) r * ls;
        int32_t t = targets[r];
        if (t < 0) {
            loss[r] = 0;
            if (grad) {
                memset(l, 0, (size_t) vocab * 4);
            }
            continue;
        }
        loss[r] = xent_row(l, vocab, t, scale, grad);
    }
}

int64_t cria_train_xent_scratch(int32_t dim, int32_t vocab) {
    return round_up(vocab, NR) * dim + (int64_t) vocab * round_up(dim, NR) + 16;
}

void cria_train_xent_pack(const float *w, int32_t vocab, int32_t dim, float *scratch) {
#if CRIA_VNNI
    pack_b_all(w, 1, dim, dim, vocab, scratch);                               /* B(c, v) = w[v][c]: the logits */
    pack_b_all(w, dim, 1, vocab, dim, scratch + round_up(vocab, NR) * dim);   /* B(v, c) = w[v][c]: dx */
#else
    (void) w, (void) vocab, (void) dim, (void) scratch;
#endif
}

void cria_train_xent_rows(const float *x, int64_t xs, int32_t r0, int32_t r1, int32_t dim, const float *w, int32_t vocab,
                          const float *packed, float *logits, int64_t lo, int64_t ls, const int32_t *targets, float scale,
                          float *dx, int64_t dxs, double *loss) {
#if CRIA_VNNI
    const float *wt = packed, *wp = packed + round_up(vocab, NR) * dim;
    /* a few rows at a time, so that their logits are still in L1/L2 for the softmax and for dx */
    for (int i0 = r0; i0 < r1; i0 += MC) {
        int m = r1 - i0 < MC ? r1 - i0 : MC;
        float *l = logits + lo + (int64_t) i0 * ls;
        part fwd = {x + (int64_t) i0 * xs, xs, wt, vocab, dim, l, ls, 0};
        gemm_parts(m, 1, &fwd);
        cria_train_softmax_xent(logits, lo, ls, i0, i0 + m, vocab, targets, scale, dx != NULL, loss);
        if (dx != NULL) {
            part bwd = {l, ls, wp, dim, vocab, dx + (int64_t) i0 * dxs, dxs, 0};
            gemm_parts(m, 1, &bwd);
        }
    }
#else
    (void) packed;
    for (int i = r0; i < r1; i++) {
        float *l = logits + lo + (int64_t) i * ls;
        for (int v = 0; v < vocab; v++) {
            float s = 0;
            for (int c = 0; c < dim; c++) {
                s = fmaf(x[(int64_t) i * xs + c], w[(int64_t) v * dim + c], s);
            }
            l[v] = s;
        }
    }
    cria_train_softmax_xent(logits, lo, ls, r0, r1, vocab, targets, scale, dx != NULL, loss);
    if (dx != NULL) {
        for (int i = r0; i < r1; i++) {
            const float *l = logits + lo + (int64_t) i * ls;
            for (int c = 0; c < dim; c++) {
                float s = 0;
                for (int v = 0; v < vocab; v++) {
                    s = fmaf(l[v], w[(int64_t) v * dim + c], s);
                }
                dx[(int64_t) i * dxs + c] = s;
            }
        }
    }
#endif
}

/* out = silu(g) * u over elements [from, to). */
void cria_train_swiglu(const float *g, const float *u, float *out, int64_t from, int64_t to) {
    int64_t e = from;
#if CRIA_VNNI
    __m512 one = _mm512_set1_ps(1.0f);
    for (; e < to; e += 16) {
        __mmask16 m = mask_of((int) (to - e < 16 ? to - e : 16));
        __m512 gv = _mm512_maskz_loadu_ps(m, g + e);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), gv))));
        _mm512_mask_storeu_ps(out + e, m, _mm512_mul_ps(_mm512_mul_ps(gv, s), _mm512_maskz_loadu_ps(m, u + e)));
    }
#else
    for (; e < to; e++) {
        float s = 1.0f / (1.0f + expf(-g[e]));
        out[e] = g[e] * s * u[e];
    }
#endif
}

/* dg = dout * u * silu'(g), du = dout * silu(g) over elements [from, to); silu'(g) = s (1 + g (1 - s)), s = sigmoid(g). */
void cria_train_swiglu_backward(const float *dout, const float *g, const float *u, float *dg, float *du, int64_t from, int64_t to) {
    int64_t e = from;
#if CRIA_VNNI
    __m512 one = _mm512_set1_ps(1.0f);
    for (; e < to; e += 16) {
        __mmask16 m = mask_of((int) (to - e < 16 ? to - e : 16));
        __m512 gv = _mm512_maskz_loadu_ps(m, g + e);
        __m512 dv = _mm512_maskz_loadu_ps(m, dout + e);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), gv))));
        __m512 ds = _mm512_mul_ps(s, _mm512_fmadd_ps(gv, _mm512_sub_ps(one, s), one));
        __m512 dgv = _mm512_mul_ps(_mm512_mul_ps(dv, _mm512_maskz_loadu_ps(m, u + e)), ds);
        _mm512_mask_storeu_ps(du + e, m, _mm512_mul_ps(dv, _mm512_mul_ps(gv, s)));
        _mm512_mask_storeu_ps(dg + e, m, dgv);
    }
#else
    for (; e < to; e++) {
        float s = 1.0f / (1.0f + expf(-g[e]));
        float dgv = dout[e] * u[e] * (s * (1.0f + g[e] * (1.0f - s)));
        du[e] = dout[e] * (g[e] * s);
        dg[e] = dgv;
    }
#endif
}
