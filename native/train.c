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

#define NR 32   /* result columns per tile: two vectors */
#define MB 48   /* rows per block: a block's rows are reused across every panel while they sit in L2 */
#define KB 256  /* input rows per block of dw's reduction */

int64_t cria_train_matmul_scratch(int32_t k, int32_t o) {
    return (int64_t) ((o + NR - 1) / NR) * NR * k + 16;
}

#if CRIA_VNNI
/* c[r][0..32) (= or +=) sum_kk a(r, kk) * b[kk][0..32) for r < MR; a(r, kk) = a[r * ars + kk * aks],
 * b rows bks floats apart (masks m0, m1 on its two vectors and on c's). */
static inline __attribute__((always_inline)) void kern(const int MR, int kc, const float *a, int64_t ars, int64_t aks,
                                                       const float *b, int64_t bks, float *c, int64_t cs, __mmask16 m0,
                                                       __mmask16 m1, int load) {
    __m512 c0[12], c1[12];
    for (int r = 0; r < MR; r++) {
        if (load) {
            c0[r] = _mm512_maskz_loadu_ps(m0, c + r * cs);
            c1[r] = _mm512_maskz_loadu_ps(m1, c + r * cs + 16);
        } else {
            c0[r] = _mm512_setzero_ps();
            c1[r] = _mm512_setzero_ps();
        }
    }
    for (int kk = 0; kk < kc; kk++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b + kk * bks);
        __m512 b1 = _mm512_maskz_loadu_ps(m1, b + kk * bks + 16);
        const float *ak = a + kk * aks;
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(ak[r * ars]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    for (int r = 0; r < MR; r++) {
        _mm512_mask_storeu_ps(c + r * cs, m0, c0[r]);
        _mm512_mask_storeu_ps(c + r * cs + 16, m1, c1[r]);
    }
}

/* Rows [0, m) of a tile column: 12 rows at a time, then 8, 4 and single rows. */
static void rows_kern(int m, int kc, const float *a, int64_t ars, int64_t aks, const float *b, int64_t bks, float *c,
                      int64_t cs, __mmask16 m0, __mmask16 m1, int load) {
    int r = 0;
    for (; r + 12 <= m; r += 12) {
        kern(12, kc, a + r * ars, ars, aks, b, bks, c + r * cs, cs, m0, m1, load);
    }
    for (; r + 8 <= m; r += 8) {
        kern(8, kc, a + r * ars, ars, aks, b, bks, c + r * cs, cs, m0, m1, load);
    }
    for (; r + 4 <= m; r += 4) {
        kern(4, kc, a + r * ars, ars, aks, b, bks, c + r * cs, cs, m0, m1, load);
    }
    for (; r < m; r++) {
        kern(1, kc, a + r * ars, ars, aks, b, bks, c + r * cs, cs, m0, m1, load);
    }
}

#endif

void cria_train_matmul(const float *x, int64_t xo, int64_t xs, int32_t i0, int32_t i1, int32_t k, const float *w, int32_t o,
                       float *out, int64_t oo, int64_t os, float *scratch) {
    x += xo;
    out += oo;
#if CRIA_VNNI
    int panels = (o + NR - 1) / NR;
    /* w^T in panels of 32 columns: wt[p][kk][j] = w[32p + j][kk], zeros past o */
    float *wt = scratch;
    for (int p = 0; p < panels; p++) {
        float *dst = wt + (int64_t) p * k * NR;
        for (int j = 0; j < NR; j++) {
            int r = p * NR + j;
            if (r < o) {
                const float *src = w + (int64_t) r * k;
                for (int kk = 0; kk < k; kk++) {
                    dst[kk * NR + j] = src[kk];
                }
            } else {
                for (int kk = 0; kk < k; kk++) {
                    dst[kk * NR + j] = 0;
                }
            }
        }
    }
    for (int ib = i0; ib < i1; ib += MB) {
        int m = i1 - ib < MB ? i1 - ib : MB;
        for (int p = 0; p < panels; p++) {
            int cols = o - p * NR;
            rows_kern(m, k, x + (int64_t) ib * xs, xs, 1, wt + (int64_t) p * k * NR, NR, out + (int64_t) ib * os + p * NR, os,
                      mask_of(cols), mask_of(cols - 16), 0);
        }
    }
#else
    (void) scratch;
    for (int i = i0; i < i1; i++) {
        for (int r = 0; r < o; r++) {
            float s = 0;
            for (int kk = 0; kk < k; kk++) {
                s = fmaf(x[(int64_t) i * xs + kk], w[(int64_t) r * k + kk], s);
            }
            out[(int64_t) i * os + r] = s;
        }
    }
#endif
}

void cria_train_matmul_dx(const float *g, int64_t go, int64_t gs, int32_t i0, int32_t i1, int32_t o, const float *w, int32_t k,
                          float *dx, int64_t dxo, int64_t dxs, int32_t accumulate) {
    g += go;
    dx += dxo;
#if CRIA_VNNI
    int panels = (k + NR - 1) / NR;
    for (int ib = i0; ib < i1; ib += MB) {
        int m = i1 - ib < MB ? i1 - ib : MB;
        for (int p = 0; p < panels; p++) {
            int cols = k - p * NR;
            rows_kern(m, o, g + (int64_t) ib * gs, gs, 1, w + p * NR, k, dx + (int64_t) ib * dxs + p * NR, dxs, mask_of(cols),
                      mask_of(cols - 16), accumulate);
        }
    }
#else
    for (int i = i0; i < i1; i++) {
        for (int c = 0; c < k; c++) {
            float s = accumulate ? dx[(int64_t) i * dxs + c] : 0;
            for (int r = 0; r < o; r++) {
                s = fmaf(g[(int64_t) i * gs + r], w[(int64_t) r * k + c], s);
            }
            dx[(int64_t) i * dxs + c] = s;
        }
    }
#endif
}

void cria_train_matmul_dw(const float *g, int64_t go, int64_t gs, const float *x, int64_t xo, int64_t xs, int32_t n, int32_t r0,
                          int32_t r1, int32_t k, float *dw, int64_t dws) {
    g += go;
    x += xo;
#if CRIA_VNNI
    int panels = (k + NR - 1) / NR;
    for (int kb = 0; kb < n; kb += KB) {
        int kc = n - kb < KB ? n - kb : KB;
        for (int p = 0; p < panels; p++) {
            int cols = k - p * NR;
            rows_kern(r1 - r0, kc, g + (int64_t) kb * gs + r0, 1, gs, x + (int64_t) kb * xs + p * NR, xs,
                      dw + (int64_t) r0 * dws + p * NR, dws, mask_of(cols), mask_of(cols - 16), 1);
        }
    }
#else
    for (int r = r0; r < r1; r++) {
        for (int c = 0; c < k; c++) {
            float s = dw[(int64_t) r * dws + c];
            for (int i = 0; i < n; i++) {
                s = fmaf(g[(int64_t) i * gs + r], x[(int64_t) i * xs + c], s);
            }
            dw[(int64_t) r * dws + c] = s;
        }
    }
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
        float max = -INFINITY;
        for (int v = 0; v < vocab; v++) {
            max = l[v] > max ? l[v] : max;
        }
        float sum;
#if CRIA_VNNI
        __m512 acc = _mm512_setzero_ps();
        __m512 mx = _mm512_set1_ps(max);
        for (int v = 0; v < vocab; v += 16) {
            __mmask16 m = mask_of(vocab - v);
            acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, l + v), mx))));
        }
        sum = _mm512_reduce_add_ps(acc);
#else
        sum = 0;
        for (int v = 0; v < vocab; v++) {
            sum += expf(l[v] - max);
        }
#endif
        float lse = max + logf(sum);
        loss[r] = (double) lse - l[t];
        if (!grad) {
            continue;
        }
#if CRIA_VNNI
        __m512 ls16 = _mm512_set1_ps(lse), sc = _mm512_set1_ps(scale);
        for (int v = 0; v < vocab; v += 16) {
            __mmask16 m = mask_of(vocab - v);
            __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, l + v), ls16));
            _mm512_mask_storeu_ps(l + v, m, _mm512_mul_ps(sc, e));
        }
#else
        for (int v = 0; v < vocab; v++) {
            l[v] = scale * expf(l[v] - lse);
        }
#endif
        l[t] -= scale;
    }
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
