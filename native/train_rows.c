/* Training's row-wise ops (rmsnorm and its backward, rope, AdamW, dropout): each entry point does one thread's
 * share (rows, columns or elements) and allocates nothing. Every result element is computed by one
 * thread in an order fixed by the shapes: rmsnorm's weight gradient sums each fixed block of rows in
 * order, then the blocks in order. */
#include "train.h"
#include "train_simd.h"
#include <math.h>
#include <string.h>

/* Σ x[0..dim)² in an order fixed by dim. */
static inline float sum_squares(const float *x, int32_t dim) {
#if CRIA_VNNI
    __m512 acc = _mm512_setzero_ps();
    for (int32_t c = 0; c < dim; c += 16) {
        __m512 v = _mm512_maskz_loadu_ps(mask_of(dim - c), x + c);
        acc = _mm512_fmadd_ps(v, v, acc);
    }
    return _mm512_reduce_add_ps(acc);
#else
    float s = 0;
    for (int32_t c = 0; c < dim; c++) {
        s += x[c] * x[c];
    }
    return s;
#endif
}

void cria_train_rmsnorm(const float *x, const float *w, float *out, float *rstd, int32_t dim, float eps, int32_t r0, int32_t r1) {
    for (int32_t r = r0; r < r1; r++) {
        const float *xr = x + (int64_t) r * dim;
        float *o = out + (int64_t) r * dim;
        float rs = (float) (1.0 / sqrt((double) (sum_squares(xr, dim) / (float) dim + eps)));
        rstd[r] = rs;
#if CRIA_VNNI
        __m512 vr = _mm512_set1_ps(rs);
        for (int32_t c = 0; c < dim; c += 16) {
            __mmask16 m = mask_of(dim - c);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + c), vr);
            _mm512_mask_storeu_ps(o + c, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + c)));
        }
#else
        for (int32_t c = 0; c < dim; c++) {
            o[c] = xr[c] * rs * w[c];
        }
#endif
    }
}

void cria_train_rmsnorm_backward_dx(const float *g, const float *x, const float *w, const float *rstd, float *dx, int32_t dim,
                                    int32_t r0, int32_t r1) {
    for (int32_t r = r0; r < r1; r++) {
        const float *gr = g + (int64_t) r * dim, *xr = x + (int64_t) r * dim;
        float *d = dx + (int64_t) r * dim;
        float rs = rstd[r];
#if CRIA_VNNI
        __m512 acc = _mm512_setzero_ps();
        for (int32_t c = 0; c < dim; c += 16) {
            __mmask16 m = mask_of(dim - c);
            __m512 gw = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, gr + c), _mm512_maskz_loadu_ps(m, w + c));
            acc = _mm512_fmadd_ps(gw, _mm512_maskz_loadu_ps(m, xr + c), acc);
        }
        float k = -_mm512_reduce_add_ps(acc) * rs * rs * rs / (float) dim;
        __m512 vk = _mm512_set1_ps(k), vr = _mm512_set1_ps(rs);
        for (int32_t c = 0; c < dim; c += 16) {
            __mmask16 m = mask_of(dim - c);
            __m512 gw = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, gr + c), _mm512_maskz_loadu_ps(m, w + c));
            __m512 t = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xr + c), vk, _mm512_maskz_loadu_ps(m, d + c));
            _mm512_mask_storeu_ps(d + c, m, _mm512_fmadd_ps(gw, vr, t));
        }
#else
        float sum = 0;
        for (int32_t c = 0; c < dim; c++) {
            sum += gr[c] * w[c] * xr[c];
        }
        float k = -sum * rs * rs * rs / (float) dim;
        for (int32_t c = 0; c < dim; c++) {
            d[c] = gr[c] * w[c] * rs + (xr[c] * k + d[c]);
        }
#endif
    }
}

void cria_train_rmsnorm_backward(const float *g, const float *x, const float *w, const float *rstd, float *dx, float *partial,
                                 int32_t n, int32_t dim, int32_t b0, int32_t b1) {
    for (int32_t b = b0; b < b1; b++) {
        int32_t r0 = b * CRIA_RMS_BLOCK, r1 = r0 + CRIA_RMS_BLOCK < n ? r0 + CRIA_RMS_BLOCK : n;
        float *pb = partial + (int64_t) b * dim;
        memset(pb, 0, sizeof(float) * dim);
        cria_train_rmsnorm_backward_dx(g, x, w, rstd, dx, dim, r0, r1);
        for (int32_t r = r0; r < r1; r++) {
            const float *gr = g + (int64_t) r * dim, *xr = x + (int64_t) r * dim;
#if CRIA_VNNI
            __m512 rs = _mm512_set1_ps(rstd[r]);
            for (int32_t c = 0; c < dim; c += 16) {
                __mmask16 m = mask_of(dim - c);
                __m512 gx = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, gr + c), rs);
                _mm512_mask_storeu_ps(pb + c, m, _mm512_fmadd_ps(gx, _mm512_maskz_loadu_ps(m, xr + c), _mm512_maskz_loadu_ps(m, pb + c)));
            }
#else
            for (int32_t c = 0; c < dim; c++) {
                pb[c] = fmaf(gr[c] * rstd[r], xr[c], pb[c]);
            }
#endif
        }
    }
}

void cria_train_rmsnorm_backward_dw_sum(const float *partial, int32_t blocks, int32_t dim, float *dw) {
    for (int32_t c = 0; c < dim; c++) {
        float acc = 0;
        for (int32_t b = 0; b < blocks; b++) {
            acc += partial[(int64_t) b * dim + c];
        }
        dw[c] += acc;
    }
}

/* Largest head the vector rope expands per row (bigger ones go value by value). */
#define ROPE_MAX 512 /* (at least 16) */

void cria_train_rope(float *x, int32_t r0, int32_t r1, int32_t len, int32_t heads, int32_t hd, int32_t dims, int32_t neox,
                     const float *cos_t, const float *sin_t, float sign) {
    int32_t half = dims / 2;
    int64_t cols = (int64_t) heads * hd;
    for (int32_t r = r0; r < r1; r++) {
        const float *cs = cos_t + (int64_t) (r % len) * half, *sn = sin_t + (int64_t) (r % len) * half;
        float *row = x + r * cols;
#if CRIA_VNNI
        if (!neox && hd <= ROPE_MAX) {
            /* y = x * C + swap_pairs(x) * S, C = (c_j, c_j), S = (-s_j, s_j) over the head; identity past dims */
            float C[ROPE_MAX], S[ROPE_MAX];
            for (int32_t j = 0; j < half; j++) {
                C[2 * j] = cs[j];
                C[2 * j + 1] = cs[j];
                S[2 * j] = -sign * sn[j];
                S[2 * j + 1] = sign * sn[j];
            }
            for (int32_t d = dims; d < hd; d++) {
                C[d] = 1;
                S[d] = 0;
            }
            if (hd < 16 && 16 % hd == 0) {
                /* heads of 1, 2, 4 or 8 values: 16 / hd heads a vector, the head's pattern repeated */
                for (int32_t c = hd; c < 16; c++) {
                    C[c] = C[c - hd];
                    S[c] = S[c - hd];
                }
                __m512 vc = _mm512_loadu_ps(C), vs = _mm512_loadu_ps(S);
                for (int64_t c = 0; c < cols; c += 16) {
                    __mmask16 m = mask_of((int) (cols - c < 16 ? cols - c : 16));
                    __m512 v = _mm512_maskz_loadu_ps(m, row + c);
                    _mm512_mask_storeu_ps(row + c, m, _mm512_fmadd_ps(_mm512_permute_ps(v, 0xB1), vs, _mm512_mul_ps(v, vc)));
                }
                continue;
            }
            for (int32_t h = 0; h < heads; h++) {
                float *xh = row + (int64_t) h * hd;
                for (int32_t c = 0; c < hd; c += 16) {
                    __mmask16 m = mask_of(hd - c);
                    __m512 v = _mm512_maskz_loadu_ps(m, xh + c);
                    __m512 sw = _mm512_permute_ps(v, 0xB1);
                    __m512 y = _mm512_fmadd_ps(sw, _mm512_maskz_loadu_ps(m, S + c), _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, C + c)));
                    _mm512_mask_storeu_ps(xh + c, m, y);
                }
            }
            continue;
        }
#endif
        for (int32_t h = 0; h < heads; h++) {
            float *xh = row + (int64_t) h * hd;
            for (int32_t j = 0; j < half; j++) {
                float c = cs[j], s = sign * sn[j];
                int32_t i0 = neox ? j : 2 * j, i1 = neox ? j + half : 2 * j + 1;
                float x0 = xh[i0], x1 = xh[i1];
                xh[i0] = x0 * c - x1 * s;
                xh[i1] = x0 * s + x1 * c;
            }
        }
    }
}

void cria_train_adamw(float *p, const float *g, float *m, float *v, int64_t from, int64_t to, float grad_scale, float beta1,
                      float beta2, float eps, float decay, float step_lr, float bias2) {
    float c1 = 1.0f - beta1, c2 = 1.0f - beta2;
    int64_t k = from;
#if CRIA_VNNI
    __m512 gs = _mm512_set1_ps(grad_scale), b1 = _mm512_set1_ps(beta1), b2 = _mm512_set1_ps(beta2), vc1 = _mm512_set1_ps(c1),
           vc2 = _mm512_set1_ps(c2), ve = _mm512_set1_ps(eps), vd = _mm512_set1_ps(decay), vl = _mm512_set1_ps(step_lr),
           vb = _mm512_set1_ps(bias2);
    for (; k < to; k += 16) {
        __mmask16 mk = mask_of((int) (to - k < 16 ? to - k : 16));
        __m512 gv = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, g + k), gs);
        __m512 mv = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, m + k), b1), _mm512_mul_ps(gv, vc1));
        __m512 vv = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, v + k), b2), _mm512_mul_ps(_mm512_mul_ps(gv, gv), vc2));
        __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vv), vb), ve);
        __m512 pv = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, p + k), vd);
        _mm512_mask_storeu_ps(p + k, mk, _mm512_sub_ps(pv, _mm512_div_ps(_mm512_mul_ps(mv, vl), den)));
        _mm512_mask_storeu_ps(m + k, mk, mv);
        _mm512_mask_storeu_ps(v + k, mk, vv);
    }
#endif
    for (; k < to; k++) {
        float gv = g[k] * grad_scale;
        float mv = m[k] * beta1 + gv * c1;
        float vv = v[k] * beta2 + gv * gv * c2;
        float den = sqrtf(vv) / bias2 + eps;
        p[k] = p[k] * decay - mv * step_lr / den;
        m[k] = mv;
        v[k] = vv;
    }
}

void cria_train_dropout(float *x, int64_t from, int64_t to, float p, int64_t seed) {
    float kept = 1.0f / (1.0f - p);
    int64_t k = from;
#if CRIA_VNNI
    dropper dr = dropper_of(p);
    for (; k + 16 <= to; k += 16) {
        __mmask16 m = keep16((uint64_t) seed + ((uint64_t) k + 1) * SPLITMIX_A, dr.lo, dr.hi, dr.thr);
        _mm512_storeu_ps(x + k, _mm512_maskz_mul_ps(m, _mm512_loadu_ps(x + k), dr.kept));
    }
#endif
    for (; k < to; k++) {
        x[k] = cria_train_keep(seed, k, p) ? x[k] * kept : 0.0f;
    }
}
