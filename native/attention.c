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
    return 4 * ((int64_t) len * group + (int64_t) head_dim) + 256;
}

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
    float *row = scratch + (int64_t) span * group; /* one key or value row as floats */
    for (int t = first; t < len; t++) {
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
        memset(out + (int64_t) g * head_dim, 0, (size_t) head_dim * 4);
    }
    for (int t = first; t < len; t++) {
        const uint8_t *v = vbase + (int64_t) pages[t / page_size] * page_bytes + (int64_t) (t % page_size) * slot_bytes;
        row_f32(v, f16, row, head_dim);
        for (int g = 0; g < group; g++) {
            axpy(scores[(int64_t) g * span + (t - first)], row, out + (int64_t) g * head_dim, head_dim);
        }
    }
}
