/* Attention of one query row over a paged KV cache (F16 or F32), all query heads of one KV head
 * group at once so each key and value row is read once for the group. */
#include "cria.h"
#include <math.h>
#include <string.h>
#include "unpack.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

static inline void row_f32(const uint8_t *src, int f16, float *dst, int d) {
    if (!f16) {
        memcpy(dst, src, (size_t) d * 4);
        return;
    }
    int i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= d; i += 16) {
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (src + 2 * i))));
    }
#endif
    for (; i < d; i++) {
        dst[i] = f16f(src + 2 * i);
    }
}

static inline float dot(const float *a, const float *b, int d) {
    int i = 0;
    float s = 0;
#if defined(__AVX512F__)
    __m512 acc = _mm512_setzero_ps();
    for (; i + 16 <= d; i += 16) {
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
    }
    s = _mm512_reduce_add_ps(acc);
#endif
    for (; i < d; i++) {
        s += a[i] * b[i];
    }
    return s;
}

static inline void axpy(float p, const float *x, float *y, int d) {
    int i = 0;
#if defined(__AVX512F__)
    __m512 vp = _mm512_set1_ps(p);
    for (; i + 16 <= d; i += 16) {
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(vp, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    }
#endif
    for (; i < d; i++) {
        y[i] += p * x[i];
    }
}

int64_t cria_attend_scratch_bytes(int32_t len, int32_t group, int32_t head_dim) {
    return 4 * ((int64_t) len * group + 16 * (int64_t) head_dim) + 256;
}

#if defined(__AVX512F__)
/* r[i] = the sum of v[i]'s 16 lanes, for i = 0 .. 15: pairs, then quads folded with unpacks, then
 * the 128-bit lanes with two shuffles (about 3 instructions a vector instead of a full reduction each). */
static inline __m512 hsum16(const __m512 *v) {
    __m512 a[8], b[4], c[2];
    for (int i = 0; i < 8; i++) { /* per 128-bit lane: [x0+x2, y0+y2, x1+x3, y1+y3] of x = v[2i], y = v[2i+1] */
        a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    }
    for (int i = 0; i < 4; i++) { /* per lane: the lane's sums of v[4i] .. v[4i + 3] */
        __m512d x = _mm512_castps_pd(a[2 * i]), y = _mm512_castps_pd(a[2 * i + 1]);
        b[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    for (int i = 0; i < 2; i++) { /* lanes 0 and 1 of each b folded together, then 2 and 3 */
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    }
    return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* out[g] = sum over positions t of p[g][t] * value row t, for NG heads (a constant: the sums stay in
 * registers, 64 dimensions at a time), values in f16. */
static inline __attribute__((always_inline)) void values_f16(const int NG, const uint8_t *vbase, const int32_t *pages, int32_t page_size,
                                                              int64_t page_bytes, int64_t slot_bytes, int32_t first, int32_t len,
                                                              const float *p, int32_t span, float *out, int32_t head_dim) {
    for (int d0 = 0; d0 < head_dim; d0 += 64) {
        __m512 acc[4][4];
        for (int g = 0; g < NG; g++) {
            for (int m = 0; m < 4; m++) {
                acc[g][m] = _mm512_setzero_ps();
            }
        }
        for (int t = first; t < len; t++) {
            const uint8_t *v = vbase + (int64_t) pages[t / page_size] * page_bytes + (int64_t) (t % page_size) * slot_bytes + 2 * (int64_t) d0;
            __m512 vv[4];
            for (int m = 0; m < 4; m++) {
                vv[m] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (v + 32 * m)));
            }
            for (int g = 0; g < NG; g++) {
                __m512 w = _mm512_set1_ps(p[(int64_t) g * span + (t - first)]);
                for (int m = 0; m < 4; m++) {
                    acc[g][m] = _mm512_fmadd_ps(w, vv[m], acc[g][m]);
                }
            }
        }
        for (int g = 0; g < NG; g++) {
            for (int m = 0; m < 4; m++) {
                _mm512_storeu_ps(out + (int64_t) g * head_dim + d0 + 16 * m, acc[g][m]);
            }
        }
    }
}
#endif

/*
 * q, out (at q_off, out_off bytes): the group's query heads, consecutive, head_dim floats each.
 * keys, values at kv_off bytes: the first key/value of this KV head in page 0 of this layer (so position t
 * is at base + pages[t / page_size] * page_bytes + (t % page_size) * slot_bytes). pages: the
 * sequence's page table, at pages_off entries into the table. Positions first .. len - 1 are attended
 * (first > 0 under a sliding window: the keys before it are never read). Each score is scale * q.k,
 * then softcap * tanh(score / softcap) when softcap > 0. Offsets instead of pointers into the middle
 * so that the caller passes whole buffers, slicing nothing.
 */
void cria_attend(const uint8_t *q_buf, int64_t q_off, uint8_t *out_buf, int64_t out_off, int32_t group, int32_t head_dim,
                 const uint8_t *keys, const uint8_t *values, int64_t kv_off, int32_t f16, const int32_t *table, int64_t pages_off,
                 int32_t page_size, int64_t page_bytes, int64_t slot_bytes, int32_t first, int32_t len, float scale, float softcap,
                 float *scratch) {
    const float *q = (const float *) (q_buf + q_off);
    float *out = (float *) (out_buf + out_off);
    const uint8_t *kbase = keys + kv_off, *vbase = values + kv_off;
    const int32_t *pages = table + pages_off;
    const int32_t span = len - first;
    float *scores = scratch;                       /* [group][span] */
    float *row = scratch + (int64_t) span * group; /* 16 key rows as floats, or one value row */
    int t = first;
#if defined(__AVX512F__)
    if (head_dim % 16 == 0) { /* 16 keys at a time: their 16 partial-sum vectors folded into one vector of scores */
        for (; t + 16 <= len; t += 16) {
            for (int i = 0; i < 16; i++) {
                int u = t + i;
                row_f32(kbase + (int64_t) pages[u / page_size] * page_bytes + (int64_t) (u % page_size) * slot_bytes, f16,
                        row + (int64_t) i * head_dim, head_dim);
            }
            for (int g = 0; g < group; g++) {
                const float *qg = q + (int64_t) g * head_dim;
                __m512 acc[16];
                for (int i = 0; i < 16; i++) {
                    acc[i] = _mm512_setzero_ps();
                }
                for (int d = 0; d < head_dim; d += 16) {
                    __m512 qv = _mm512_loadu_ps(qg + d);
                    for (int i = 0; i < 16; i++) {
                        acc[i] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(row + (int64_t) i * head_dim + d), acc[i]);
                    }
                }
                _mm512_storeu_ps(scores + (int64_t) g * span + (t - first), _mm512_mul_ps(hsum16(acc), _mm512_set1_ps(scale)));
            }
        }
    }
#endif
    for (; t < len; t++) {
        const uint8_t *k = kbase + (int64_t) pages[t / page_size] * page_bytes + (int64_t) (t % page_size) * slot_bytes;
        row_f32(k, f16, row, head_dim);
        for (int g = 0; g < group; g++) {
            scores[(int64_t) g * span + (t - first)] = dot(q + (int64_t) g * head_dim, row, head_dim) * scale;
        }
    }
    if (softcap > 0) {
        for (int64_t i = 0; i < (int64_t) group * span; i++) {
            scores[i] = softcap * tanhf(scores[i] / softcap);
        }
    }
    for (int g = 0; g < group; g++) {
        float *s = scores + (int64_t) g * span;
        float max = -INFINITY;
        for (int t = 0; t < span; t++) {
            max = s[t] > max ? s[t] : max;
        }
        float sum = 0;
        for (int t = 0; t < span; t++) {
            s[t] = expf(s[t] - max);
            sum += s[t];
        }
        float inv = 1.0f / sum;
        for (int t = 0; t < span; t++) {
            s[t] *= inv;
        }
    }
#if defined(__AVX512F__)
    if (head_dim % 64 == 0 && f16) { /* up to 4 heads x 64 dims of the output held in registers over all positions */
        for (int g0 = 0; g0 < group; g0 += 4) {
            switch (group - g0 < 4 ? group - g0 : 4) {
                case 4: values_f16(4, vbase, pages, page_size, page_bytes, slot_bytes, first, len, scores + (int64_t) g0 * span, span,
                                   out + (int64_t) g0 * head_dim, head_dim); break;
                case 3: values_f16(3, vbase, pages, page_size, page_bytes, slot_bytes, first, len, scores + (int64_t) g0 * span, span,
                                   out + (int64_t) g0 * head_dim, head_dim); break;
                case 2: values_f16(2, vbase, pages, page_size, page_bytes, slot_bytes, first, len, scores + (int64_t) g0 * span, span,
                                   out + (int64_t) g0 * head_dim, head_dim); break;
                default: values_f16(1, vbase, pages, page_size, page_bytes, slot_bytes, first, len, scores + (int64_t) g0 * span, span,
                                    out + (int64_t) g0 * head_dim, head_dim); break;
            }
        }
        return;
    }
#endif
    memset(out, 0, (size_t) group * head_dim * 4); /* the group's heads are consecutive */
    for (int t = first; t < len; t++) {
        const uint8_t *v = vbase + (int64_t) pages[t / page_size] * page_bytes + (int64_t) (t % page_size) * slot_bytes;
        row_f32(v, f16, row, head_dim);
        for (int g = 0; g < group; g++) {
            axpy(scores[(int64_t) g * span + (t - first)], row, out + (int64_t) g * head_dim, head_dim);
        }
    }
}
