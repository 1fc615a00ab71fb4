/* Training's causal attention and its backward, one (window, KV head) item at a time. The item's
 * keys and values are transposed into scratch ([hd][len]), so that a query row's scores, and in
 * backward the gradients of its keys and values, run 16 keys per vector. Backward recomputes the
 * probabilities from q, k and the kept log-sum-exp (flash style: nothing of size len x len is kept
 * between the passes) and takes D_i = dout_i . out_i. Each item owns its rows of dk and dv and sums
 * into them over its heads and query rows in one fixed order. */
#include "train.h"
#include "train_simd.h"
#include <math.h>
#include <string.h>

int32_t cria_train_keep(int64_t seed, int64_t index, float p) {
    if (p <= 0) {
        return 1;
    }
    uint64_t z = (uint64_t) seed + ((uint64_t) index + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z = z ^ (z >> 31);
    return (int64_t) (z >> 40) >= (int64_t) (p * (float) (1 << 24));
}

static inline int32_t padded(int32_t len) {
    return (len + 15) & ~15;
}

int64_t cria_train_attention_scratch(int32_t len, int32_t hd) {
    return (int64_t) padded(len) * (4 * (int64_t) hd + 4) + 64;
}

/* kt[d][j] = src row (row0 + j), values off .. off + hd (rows rs floats apart), j < len; zeros up to lp. */
static void transpose_in(const float *src, int64_t rs, int64_t row0, int64_t off, int32_t len, int32_t lp, int32_t hd, float *kt) {
    for (int d = 0; d < hd; d++) {
        float *dst = kt + (int64_t) d * lp;
        const float *s = src + row0 * rs + off + d;
        for (int j = 0; j < len; j++) {
            dst[j] = s[(int64_t) j * rs];
        }
        for (int j = len; j < lp; j++) {
            dst[j] = 0;
        }
    }
}

/* Dropout factors of keys [0, nk) of one (row, head): 0 or 1/(1-p). */
static void drop_factors(int64_t seed, int64_t base, int32_t nk, float drop, float *m) {
    float kept = 1.0f / (1.0f - drop);
    for (int j = 0; j < nk; j++) {
        m[j] = cria_train_keep(seed, base + j, drop) ? kept : 0.0f;
    }
}

#if CRIA_VNNI
/* s[0 .. nk) = scale * q . k_j over keys j (kt: [hd][lp]); returns their max. Lanes past nk hold -inf. */
static inline float scores(const float *q, const float *kt, int32_t lp, int32_t hd, int32_t nk, float scale, float *s) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int c = 0; c < nk; c += 16) {
        __m512 acc = _mm512_setzero_ps();
        for (int d = 0; d < hd; d++) {
            acc = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_load_ps(kt + (int64_t) d * lp + c), acc);
        }
        acc = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), mask_of(nk - c), _mm512_mul_ps(acc, _mm512_set1_ps(scale)));
        _mm512_store_ps(s + c, acc);
        mx = _mm512_max_ps(mx, acc);
    }
    return _mm512_reduce_max_ps(mx);
}

/* out[0 .. hd) = sum_j p[j] * row_j, rows of the values of keys j < nk: as a dot product per value over
 * the transposed rows (hd <= 16) or as a scaled sum of rows (rows rs floats apart from base). */
static inline void weighted_sum(const float *p, int32_t nk, const float *vt, int32_t lp, const float *base, int64_t rs,
                                int32_t hd, float *out) {
    if (hd <= 16) {
        for (int d = 0; d < hd; d++) {
            __m512 acc = _mm512_setzero_ps();
            for (int c = 0; c < nk; c += 16) {
                acc = _mm512_fmadd_ps(_mm512_load_ps(p + c), _mm512_load_ps(vt + (int64_t) d * lp + c), acc);
            }
            out[d] = _mm512_reduce_add_ps(acc);
        }
        return;
    }
    for (int d0 = 0; d0 < hd; d0 += 64) {
        __m512 a[4];
        for (int u = 0; u < 4; u++) {
            a[u] = _mm512_setzero_ps();
        }
        int nv = (hd - d0 + 15) / 16 < 4 ? (hd - d0 + 15) / 16 : 4;
        for (int j = 0; j < nk; j++) {
            __m512 pj = _mm512_set1_ps(p[j]);
            const float *r = base + (int64_t) j * rs + d0;
            for (int u = 0; u < nv; u++) {
                a[u] = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(mask_of(hd - d0 - 16 * u), r + 16 * u), a[u]);
            }
        }
        for (int u = 0; u < nv; u++) {
            _mm512_mask_storeu_ps(out + d0 + 16 * u, mask_of(hd - d0 - 16 * u), a[u]);
        }
    }
}
#endif

void cria_train_attention(const float *q, const float *k, const float *v, float *out, float *lse, int32_t len, int32_t heads,
                          int32_t kv_heads, int32_t hd, int32_t item0, int32_t item1, float drop, int64_t seed, float *scratch) {
    int32_t lp = padded(len), group = heads / kv_heads;
    int64_t qs = (int64_t) heads * hd, ks = (int64_t) kv_heads * hd;
    float scale = 1.0f / sqrtf((float) hd);
    float *kt = scratch, *vt = kt + (int64_t) hd * lp, *s = vt + (int64_t) hd * lp, *m = s + lp;
    for (int32_t item = item0; item < item1; item++) {
        int32_t b = item / kv_heads, g = item % kv_heads;
        int64_t row0 = (int64_t) b * len;
        transpose_in(k, ks, row0, (int64_t) g * hd, len, lp, hd, kt);
        transpose_in(v, ks, row0, (int64_t) g * hd, len, lp, hd, vt);
        for (int32_t h = g * group; h < (g + 1) * group; h++) {
            for (int32_t t = 0; t < len; t++) {
                int64_t i = row0 + t;
                const float *qi = q + i * qs + (int64_t) h * hd;
                float *oi = out + i * qs + (int64_t) h * hd;
                int32_t nk = t + 1;
#if CRIA_VNNI
                float mx = scores(qi, kt, lp, hd, nk, scale, s);
                __m512 acc = _mm512_setzero_ps(), mv = _mm512_set1_ps(mx);
                for (int c = 0; c < nk; c += 16) {
                    __m512 e = _mm512_maskz_mov_ps(mask_of(nk - c), exp16(_mm512_sub_ps(_mm512_load_ps(s + c), mv)));
                    _mm512_store_ps(s + c, e);
                    acc = _mm512_add_ps(acc, e);
                }
                float sum = _mm512_reduce_add_ps(acc);
                lse[i * heads + h] = mx + logf(sum);
                if (drop > 0) {
                    drop_factors(seed, (i * heads + h) * len, nk, drop, m);
                    for (int j = 0; j < nk; j++) {
                        s[j] *= m[j];
                    }
                }
                weighted_sum(s, nk, vt, lp, v + row0 * ks + (int64_t) g * hd, ks, hd, oi);
                float inv = 1.0f / sum;
                for (int d = 0; d < hd; d++) {
                    oi[d] *= inv;
                }
#else
                float mx = -INFINITY;
                for (int j = 0; j < nk; j++) {
                    float a = 0;
                    for (int d = 0; d < hd; d++) {
                        a = fmaf(qi[d], kt[(int64_t) d * lp + j], a);
                    }
                    s[j] = a * scale;
                    mx = s[j] > mx ? s[j] : mx;
                }
                float sum = 0;
                for (int j = 0; j < nk; j++) {
                    s[j] = expf(s[j] - mx);
                    sum += s[j];
                }
                lse[i * heads + h] = mx + logf(sum);
                if (drop > 0) {
                    drop_factors(seed, (i * heads + h) * len, nk, drop, m);
                    for (int j = 0; j < nk; j++) {
                        s[j] *= m[j];
                    }
                }
                for (int d = 0; d < hd; d++) {
                    float a = 0;
                    for (int j = 0; j < nk; j++) {
                        a = fmaf(s[j], vt[(int64_t) d * lp + j], a);
                    }
                    oi[d] = a / sum;
                }
#endif
            }
        }
    }
}

void cria_train_attention_backward(const float *dout, const float *q, const float *k, const float *v, const float *out,
                                   const float *lse, float *dq, float *dk, float *dv, int32_t len, int32_t heads,
                                   int32_t kv_heads, int32_t hd, int32_t item0, int32_t item1, float drop, int64_t seed,
                                   float *scratch) {
    int32_t lp = padded(len), group = heads / kv_heads;
    int64_t qs = (int64_t) heads * hd, ks = (int64_t) kv_heads * hd;
    float scale = 1.0f / sqrtf((float) hd);
    float *kt = scratch, *vt = kt + (int64_t) hd * lp, *dkt = vt + (int64_t) hd * lp, *dvt = dkt + (int64_t) hd * lp;
    float *p = dvt + (int64_t) hd * lp, *ds = p + lp, *m = ds + lp, *pm = m + lp;
    for (int32_t item = item0; item < item1; item++) {
        int32_t b = item / kv_heads, g = item % kv_heads;
        int64_t row0 = (int64_t) b * len;
        transpose_in(k, ks, row0, (int64_t) g * hd, len, lp, hd, kt);
        transpose_in(v, ks, row0, (int64_t) g * hd, len, lp, hd, vt);
        memset(dkt, 0, sizeof(float) * 2 * hd * lp);
        for (int32_t h = g * group; h < (g + 1) * group; h++) {
            for (int32_t t = 0; t < len; t++) {
                int64_t i = row0 + t;
                int64_t at = i * qs + (int64_t) h * hd;
                const float *qi = q + at, *gi = dout + at, *oi = out + at;
                float *dqi = dq + at;
                int32_t nk = t + 1;
                float l = lse[i * heads + h];
                float dd = 0;
                for (int d = 0; d < hd; d++) {
                    dd += gi[d] * oi[d];
                }
                if (drop > 0) {
                    drop_factors(seed, (i * heads + h) * len, nk, drop, m);
                }
#if CRIA_VNNI
                scores(qi, kt, lp, hd, nk, scale, p);
                __m512 lv = _mm512_set1_ps(l), dv16 = _mm512_set1_ps(dd);
                for (int c = 0; c < nk; c += 16) {
                    __mmask16 mk = mask_of(nk - c);
                    __m512 pc = _mm512_maskz_mov_ps(mk, exp16(_mm512_sub_ps(_mm512_load_ps(p + c), lv)));
                    __m512 da = _mm512_setzero_ps();
                    for (int d = 0; d < hd; d++) {
                        da = _mm512_fmadd_ps(_mm512_set1_ps(gi[d]), _mm512_load_ps(vt + (int64_t) d * lp + c), da);
                    }
                    __m512 mc = drop > 0 ? _mm512_maskz_loadu_ps(mk, m + c) : _mm512_set1_ps(1.0f);
                    __m512 pmc = _mm512_mul_ps(pc, mc);
                    __m512 dsc = _mm512_mul_ps(pc, _mm512_fmsub_ps(da, mc, dv16));
                    _mm512_store_ps(ds + c, dsc);
                    _mm512_store_ps(pm + c, pmc);
                    __m512 dss = _mm512_mul_ps(dsc, _mm512_set1_ps(scale));
                    for (int d = 0; d < hd; d++) {
                        float *kd = dkt + (int64_t) d * lp + c, *vd = dvt + (int64_t) d * lp + c;
                        _mm512_store_ps(vd, _mm512_fmadd_ps(_mm512_set1_ps(gi[d]), pmc, _mm512_load_ps(vd)));
                        _mm512_store_ps(kd, _mm512_fmadd_ps(_mm512_set1_ps(qi[d]), dss, _mm512_load_ps(kd)));
                    }
                }
                weighted_sum(ds, nk, kt, lp, k + row0 * ks + (int64_t) g * hd, ks, hd, dqi);
                for (int d = 0; d < hd; d++) {
                    dqi[d] *= scale;
                }
#else
                for (int j = 0; j < nk; j++) {
                    float a = 0, da = 0;
                    for (int d = 0; d < hd; d++) {
                        a = fmaf(qi[d], kt[(int64_t) d * lp + j], a);
                        da = fmaf(gi[d], vt[(int64_t) d * lp + j], da);
                    }
                    float pj = expf(a * scale - l);
                    float mj = drop > 0 ? m[j] : 1.0f;
                    ds[j] = pj * (da * mj - dd);
                    pm[j] = pj * mj;
                    for (int d = 0; d < hd; d++) {
                        dvt[(int64_t) d * lp + j] += gi[d] * pm[j];
                        dkt[(int64_t) d * lp + j] += qi[d] * (ds[j] * scale);
                    }
                }
                for (int d = 0; d < hd; d++) {
                    float a = 0;
                    for (int j = 0; j < nk; j++) {
                        a = fmaf(ds[j], kt[(int64_t) d * lp + j], a);
                    }
                    dqi[d] = a * scale;
                }
#endif
            }
        }
        for (int j = 0; j < len; j++) {
            float *kr = dk + (row0 + j) * ks + (int64_t) g * hd, *vr = dv + (row0 + j) * ks + (int64_t) g * hd;
            for (int d = 0; d < hd; d++) {
                kr[d] = dkt[(int64_t) d * lp + j];
                vr[d] = dvt[(int64_t) d * lp + j];
            }
        }
    }
}
