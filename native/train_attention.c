/* Training's causal attention and its backward, one (window, KV head) item at a time, flash style:
 * the item's keys and values are packed into scratch twice, transposed ([hd][lp], zero-padded) for
 * the products that run along keys (scores q.k_j and dout.v_j, 16 keys per vector) and row-major
 * ([lp][hv], hv = hd rounded up to 8 or 16) for those that run along the head dimension (out = P v,
 * dq = dS k). Query rows go 8 at a time (a register tile of 8 rows x 16 keys), so that each key and
 * value is read once per 8 rows and, in backward, the transposed dk and dv accumulators are read and
 * written once per 8 rows; key blocks past the block's last row are skipped, the diagonal block is
 * masked. The scores (forward) or dS (backward) of the 8 rows are kept in scratch for all their keys
 * (8 x len floats): nothing of size len x len exists, and backward recomputes the probabilities from
 * q, k and the kept log-sum-exp, with D_i = dout_i . out_i.
 *
 * Determinism: one thread takes a whole item, and every sum runs in an order fixed by the shapes
 * (dk and dv: heads of the group, then query blocks, then the block's rows in order). */
#include "train.h"
#include "train_simd.h"
#include <math.h>
#include <string.h>

#define LOG2E 1.44269504088896341f
#define LN2 0.693147180559945309f


int32_t cria_train_keep(int64_t seed, int64_t index, float p) {
    if (p <= 0) {
        return 1;
    }
    uint64_t z = (uint64_t) seed + ((uint64_t) index + 1) * SPLITMIX_A;
    z = (z ^ (z >> 30)) * SPLITMIX_B;
    z = (z ^ (z >> 27)) * SPLITMIX_C;
    z = z ^ (z >> 31);
    return (int64_t) (z >> 40) >= (int64_t) (p * (float) (1 << 24));
}

static inline int32_t padded(int32_t len) {
    return (len + 15) & ~15;
}

/* Floats of a packed row-major key or value row. */
static inline int32_t row_width(int32_t hd) {
    return hd <= 8 ? 8 : (hd + 15) & ~15;
}

/* Query rows of a tile. */
#define BR 8

int64_t cria_train_attention_scratch(int32_t len, int32_t hd) {
    int64_t lp = padded(len);
    return lp * (4 * (int64_t) hd + row_width(hd) + BR + 4) + 2 * BR * (int64_t) hd + 64;
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

#if CRIA_VNNI

/* kr[j][0 .. hv) = src row (row0 + j), values off .. off + hd, zeros past hd, for j < len; zero rows up to lp. */
static void rows_in(const float *src, int64_t rs, int64_t row0, int64_t off, int32_t len, int32_t lp, int32_t hd, int32_t hv,
                    float *kr) {
    for (int j = 0; j < len; j++) {
        const float *s = src + (row0 + j) * rs + off;
        float *dst = kr + (int64_t) j * hv;
        memcpy(dst, s, sizeof(float) * hd);
        for (int d = hd; d < hv; d++) {
            dst[d] = 0;
        }
    }
    memset(kr + (int64_t) len * hv, 0, sizeof(float) * (lp - len) * hv);
}

/* xb[d][r] = scale * row r of the tile (rows[r], r < nr; zeros for r >= nr), d < hd: the tile's values
 * of one d side by side, for broadcasts off one pointer. */
static void tile_in(const float *const *rows, int32_t nr, int32_t hd, float scale, float *xb) {
    for (int d = 0; d < hd; d++) {
        for (int r = 0; r < BR; r++) {
            xb[d * BR + r] = r < nr ? rows[r][d] * scale : 0.0f;
        }
    }
}


/* s[r] = q_r . k_j for keys c .. c + 15 (kt: [hd][lp]) and dp[r] = g_r . v_j (when vt), r < BR; the tile's
 * rows packed by tile_in (qb, gb). */
static inline __attribute__((always_inline)) void tile_scores(const float *qb, const float *gb, const float *kt,
                                                              const float *vt, int32_t lp, int32_t hd, int32_t c, __m512 *s,
                                                              __m512 *dp) {
    for (int r = 0; r < BR; r++) {
        s[r] = _mm512_setzero_ps();
        if (vt) {
            dp[r] = _mm512_setzero_ps();
        }
    }
    for (int d = 0; d < hd; d++) {
        __m512 kv = _mm512_load_ps(kt + (int64_t) d * lp + c);
        for (int r = 0; r < BR; r++) {
            s[r] = _mm512_fmadd_ps(_mm512_set1_ps(qb[d * BR + r]), kv, s[r]);
        }
        if (vt) {
            __m512 vv = _mm512_load_ps(vt + (int64_t) d * lp + c);
            for (int r = 0; r < BR; r++) {
                dp[r] = _mm512_fmadd_ps(_mm512_set1_ps(gb[d * BR + r]), vv, dp[r]);
            }
        }
    }
}

/* The scores, probabilities or dS of a tile's rows for all their keys are kept blocked: key block cb
 * (keys 16 cb .. 16 cb + 15) of the BR rows at sb + cb * BR * 16, row r's 16 values at r * 16 on. */
#define BLOCK (BR * 16)

/* out_r[d0 + 16u ..] = scale * sum_j p[r][j] * vr[j][d0 + 16u ..] over the nb key blocks of p (blocked,
 * zeros past each row's keys), for NC chunks of 16 values from d0, stored for rows r < nr (d < hd).
 * vr has nb * 16 rows (zeros past the keys). */
static inline __attribute__((always_inline)) void rowprod16(const float *p, int32_t nb, const float *vr, int32_t hv, int32_t d0,
                                                            int nc, float *const *out, int32_t nr, int32_t hd, const float *scale) {
    __m512 acc[BR][3];
    for (int r = 0; r < BR; r++) {
        for (int u = 0; u < nc; u++) {
            acc[r][u] = _mm512_setzero_ps();
        }
    }
    for (int32_t cb = 0; cb < nb; cb++) {
        const float *pb = p + (int64_t) cb * BLOCK, *vb = vr + (int64_t) cb * 16 * hv + d0;
        for (int j = 0; j < 16; j++) {
            __m512 x[3];
            for (int u = 0; u < nc; u++) {
                x[u] = _mm512_load_ps(vb + (int64_t) j * hv + 16 * u);
            }
            for (int r = 0; r < BR; r++) {
                __m512 pr = _mm512_set1_ps(pb[r * 16 + j]);
                for (int u = 0; u < nc; u++) {
                    acc[r][u] = _mm512_fmadd_ps(pr, x[u], acc[r][u]);
                }
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        __m512 sv = _mm512_set1_ps(scale[r]);
        for (int u = 0; u < nc; u++) {
            _mm512_mask_storeu_ps(out[r] + d0 + 16 * u, mask_of(hd - d0 - 16 * u), _mm512_mul_ps(acc[r][u], sv));
        }
    }
}

/* The same for rows of at most 8 values (hv = 8), 8 lanes a vector. */
static inline void rowprod8(const float *p, int32_t nb, const float *vr, float *const *out, int32_t nr, int32_t hd,
                            const float *scale) {
    __m256 acc[BR];
    for (int r = 0; r < BR; r++) {
        acc[r] = _mm256_setzero_ps();
    }
    for (int32_t cb = 0; cb < nb; cb++) {
        const float *pb = p + (int64_t) cb * BLOCK, *vb = vr + (int64_t) cb * 16 * 8;
        for (int j = 0; j < 16; j++) {
            __m256 x = _mm256_load_ps(vb + j * 8);
            for (int r = 0; r < BR; r++) {
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(pb[r * 16 + j]), x, acc[r]);
            }
        }
    }
    __mmask8 m = (__mmask8) ((1u << hd) - 1);
    for (int r = 0; r < nr; r++) {
        _mm256_mask_storeu_ps(out[r], m, _mm256_mul_ps(acc[r], _mm256_set1_ps(scale[r])));
    }
}

/* out rows (r < nr) = scale[r] * p (nb blocks) times vr ([16 nb][hv]). */
static void rowprod(const float *p, int32_t nb, const float *vr, int32_t hv, float *const *out, int32_t nr, int32_t hd,
                    const float *scale) {
    if (hv == 8) {
        rowprod8(p, nb, vr, out, nr, hd, scale);
        return;
    }
    int32_t d0 = 0;
    for (; d0 + 48 <= hv; d0 += 48) {
        rowprod16(p, nb, vr, hv, d0, 3, out, nr, hd, scale);
    }
    if (hv - d0 == 32) {
        rowprod16(p, nb, vr, hv, d0, 2, out, nr, hd, scale);
    } else if (hv - d0 == 16) {
        rowprod16(p, nb, vr, hv, d0, 1, out, nr, hd, scale);
    }
}

void cria_train_attention(const float *q, const float *k, const float *v, float *out, float *lse, int32_t len, int32_t heads,
                          int32_t kv_heads, int32_t hd, int32_t item0, int32_t item1, float drop, int64_t seed, float *scratch) {
    int32_t lp = padded(len), group = heads / kv_heads, hv = row_width(hd);
    int64_t qs = (int64_t) heads * hd, ks = (int64_t) kv_heads * hd;
    float scale = 1.0f / sqrtf((float) hd);
    float *kt = scratch, *vr = kt + (int64_t) hd * lp, *sb = vr + (int64_t) hv * lp, *qb = sb + (int64_t) BR * lp;
    dropper dr = dropper_of(drop > 0 ? drop : 0.5f);
    for (int32_t item = item0; item < item1; item++) {
        int32_t b = item / kv_heads, g = item % kv_heads;
        int64_t row0 = (int64_t) b * len;
        transpose_in(k, ks, row0, (int64_t) g * hd, len, lp, hd, kt);
        rows_in(v, ks, row0, (int64_t) g * hd, len, lp, hd, hv, vr);
        for (int32_t h = g * group; h < (g + 1) * group; h++) {
            for (int32_t t0 = 0; t0 < len; t0 += BR) {
                int32_t nr = len - t0 < BR ? len - t0 : BR, kend = t0 + nr, nb = (kend + 15) / 16;
                const float *qr[BR];
                float *orow[BR];
                for (int r = 0; r < BR; r++) {
                    int64_t i = row0 + t0 + (r < nr ? r : nr - 1);
                    qr[r] = q + i * qs + (int64_t) h * hd;
                    orow[r] = out + i * qs + (int64_t) h * hd;
                }
                tile_in(qr, nr, hd, scale * LOG2E, qb);
                /* scaled scores (in log2 units) of the tile's rows, masked past each row's position, and their maxima */
                __m512 mx[BR], s[BR], ninf = _mm512_set1_ps(-INFINITY);
                float rs[BR];
                for (int r = 0; r < BR; r++) {
                    mx[r] = ninf;
                }
                for (int32_t cb = 0; cb < nb; cb++) {
                    int32_t c = cb * 16;
                    tile_scores(qb, 0, kt, 0, lp, hd, c, s, 0);
                    for (int r = 0; r < BR; r++) {
                        __m512 x = _mm512_mask_mov_ps(ninf, mask_of(t0 + r + 1 - c), s[r]);
                        _mm512_store_ps(sb + (int64_t) cb * BLOCK + r * 16, x);
                        mx[r] = _mm512_max_ps(mx[r], x);
                    }
                }
                /* probabilities (with dropout), log-sum-exp; 1/sum scales the product */
                for (int r = 0; r < BR; r++) {
                    float *sr = sb + r * 16;
                    if (r >= nr) {
                        for (int32_t cb = 0; cb < nb; cb++) {
                            _mm512_store_ps(sr + (int64_t) cb * BLOCK, _mm512_setzero_ps());
                        }
                        continue;
                    }
                    int32_t t = t0 + r;
                    int64_t i = row0 + t;
                    __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx[r])), acc = _mm512_setzero_ps();
                    for (int32_t cb = 0; cb < nb; cb++) {
                        float *x = sr + (int64_t) cb * BLOCK;
                        __m512 e = exp2_16_neg(mask_of(t + 1 - cb * 16), _mm512_sub_ps(_mm512_load_ps(x), m));
                        _mm512_store_ps(x, e);
                        acc = _mm512_add_ps(acc, e);
                    }
                    float sum = _mm512_reduce_add_ps(acc);
                    lse[i * heads + h] = _mm512_cvtss_f32(m) * LN2 + logf(sum);
                    rs[r] = 1.0f / sum;
                    if (drop > 0) {
                        int64_t base = (i * heads + h) * len;
                        for (int32_t cb = 0; cb < nb; cb++) {
                            float *x = sr + (int64_t) cb * BLOCK;
                            _mm512_store_ps(x, _mm512_mul_ps(_mm512_load_ps(x), drop16(&dr, seed, base + cb * 16)));
                        }
                    }
                }
                rowprod(sb, nb, vr, hv, orow, nr, hd, rs);
            }
        }
    }
}

void cria_train_attention_backward(const float *dout, const float *q, const float *k, const float *v, const float *out,
                                   const float *lse, float *dq, float *dk, float *dv, int32_t len, int32_t heads,
                                   int32_t kv_heads, int32_t hd, int32_t item0, int32_t item1, float drop, int64_t seed,
                                   float *scratch) {
    int32_t lp = padded(len), group = heads / kv_heads, hv = row_width(hd);
    int64_t qs = (int64_t) heads * hd, ks = (int64_t) kv_heads * hd;
    float scale = 1.0f / sqrtf((float) hd);
    float *kt = scratch, *vt = kt + (int64_t) hd * lp, *dkt = vt + (int64_t) hd * lp, *dvt = dkt + (int64_t) hd * lp;
    float *kr = dvt + (int64_t) hd * lp, *sb = kr + (int64_t) hv * lp, *qb = sb + (int64_t) BR * lp, *gb = qb + BR * hd;
    dropper dr = dropper_of(drop > 0 ? drop : 0.5f);
    for (int32_t item = item0; item < item1; item++) {
        int32_t b = item / kv_heads, g = item % kv_heads;
        int64_t row0 = (int64_t) b * len;
        transpose_in(k, ks, row0, (int64_t) g * hd, len, lp, hd, kt);
        transpose_in(v, ks, row0, (int64_t) g * hd, len, lp, hd, vt);
        rows_in(k, ks, row0, (int64_t) g * hd, len, lp, hd, hv, kr);
        memset(dkt, 0, sizeof(float) * 2 * hd * lp);
        for (int32_t h = g * group; h < (g + 1) * group; h++) {
            for (int32_t t0 = 0; t0 < len; t0 += BR) {
                int32_t nr = len - t0 < BR ? len - t0 : BR, kend = t0 + nr, nb = (kend + 15) / 16;
                const float *qr[BR], *gr[BR];
                float *dqr[BR];
                float dd[BR], l[BR];
                for (int r = 0; r < BR; r++) {
                    int64_t i = row0 + t0 + (r < nr ? r : nr - 1);
                    int64_t at = i * qs + (int64_t) h * hd;
                    qr[r] = q + at;
                    gr[r] = dout + at;
                    dqr[r] = dq + at;
                    float a = 0;
                    for (int d = 0; d < hd; d++) {
                        a += gr[r][d] * out[at + d];
                    }
                    dd[r] = r < nr ? a : 0;
                    l[r] = lse[i * heads + h] * LOG2E;
                }
                tile_in(qr, nr, hd, scale * LOG2E, qb);
                tile_in(gr, nr, hd, 1.0f, gb);
                for (int32_t cb = 0; cb < nb; cb++) {
                    int32_t c = cb * 16;
                    __m512 s[BR], dp[BR];
                    tile_scores(qb, gb, kt, vt, lp, hd, c, s, dp);
                    for (int r = 0; r < BR; r++) {
                        __mmask16 mk = mask_of(r < nr ? t0 + r + 1 - c : 0);
                        __m512 pc = exp2_16_neg(mk, _mm512_sub_ps(s[r], _mm512_set1_ps(l[r])));
                        if (drop > 0) {
                            __m512 f = drop16(&dr, seed, ((row0 + t0 + r) * heads + h) * len + c);
                            s[r] = _mm512_mul_ps(pc, _mm512_fmsub_ps(dp[r], f, _mm512_set1_ps(dd[r]))); /* dS */
                            dp[r] = _mm512_mul_ps(pc, f);                                                /* P with dropout */
                        } else {
                            s[r] = _mm512_mul_ps(pc, _mm512_sub_ps(dp[r], _mm512_set1_ps(dd[r])));
                            dp[r] = pc;
                        }
                        _mm512_store_ps(sb + (int64_t) cb * BLOCK + r * 16, s[r]);
                    }
                    for (int d = 0; d < hd; d++) {
                        float *vd = dvt + (int64_t) d * lp + c, *kd = dkt + (int64_t) d * lp + c;
                        __m512 av = _mm512_load_ps(vd), ak = _mm512_load_ps(kd);
                        for (int r = 0; r < BR; r++) {
                            av = _mm512_fmadd_ps(_mm512_set1_ps(gb[d * BR + r]), dp[r], av);
                            ak = _mm512_fmadd_ps(_mm512_set1_ps(qb[d * BR + r]), s[r], ak);
                        }
                        _mm512_store_ps(vd, av);
                        _mm512_store_ps(kd, ak);
                    }
                }
                float sc[BR];
                for (int r = 0; r < BR; r++) {
                    sc[r] = scale;
                }
                rowprod(sb, nb, kr, hv, dqr, nr, hd, sc);
            }
        }
        for (int j = 0; j < len; j++) {
            float *kro = dk + (row0 + j) * ks + (int64_t) g * hd, *vro = dv + (row0 + j) * ks + (int64_t) g * hd;
            for (int d = 0; d < hd; d++) {
                kro[d] = dkt[(int64_t) d * lp + j] * LN2;
                vro[d] = dvt[(int64_t) d * lp + j];
            }
        }
    }
}

#else /* portable C: one query row at a time */

/* Dropout factors of keys [0, nk) of one (row, head): 0 or 1/(1-p). */
static void drop_factors(int64_t seed, int64_t base, int32_t nk, float drop, float *m) {
    float kept = 1.0f / (1.0f - drop);
    for (int j = 0; j < nk; j++) {
        m[j] = cria_train_keep(seed, base + j, drop) ? kept : 0.0f;
    }
}

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
    float *ds = dvt + (int64_t) hd * lp, *m = ds + lp;
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
                for (int j = 0; j < nk; j++) {
                    float a = 0, da = 0;
                    for (int d = 0; d < hd; d++) {
                        a = fmaf(qi[d], kt[(int64_t) d * lp + j], a);
                        da = fmaf(gi[d], vt[(int64_t) d * lp + j], da);
                    }
                    float pj = expf(a * scale - l);
                    float mj = drop > 0 ? m[j] : 1.0f;
                    ds[j] = pj * (da * mj - dd);
                    for (int d = 0; d < hd; d++) {
                        dvt[(int64_t) d * lp + j] += gi[d] * (pj * mj);
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

#endif
