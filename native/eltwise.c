/* Row-wise operations of the forward pass: RMSNorm, rotary embedding, SwiGLU, GeGLU, residual add, KV store.
 * Cheap per token, but called many times per token: in C they cost microseconds from the first
 * token on, with no JIT warm-up. Each row is computed on its own, so results never depend on
 * how rows are split between threads. */
#include "cria.h"
#include "train_simd.h"
#include <math.h>
#include <string.h>
#include "unpack.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

void cria_rmsnorm(const float *x, int64_t xs, float *out, int64_t os, int32_t r0, int32_t r1, int32_t d, const float *w, float eps) {
    for (int32_t i = r0; i < r1; i++) {
        const float *r = x + i * xs;
        float *o = out + i * os;
        double ss = 0;
        int j = 0;
#if defined(__AVX512F__)
        __m512 acc = _mm512_setzero_ps();
        for (; j + 16 <= d; j += 16) {
            __m512 v = _mm512_loadu_ps(r + j);
            acc = _mm512_fmadd_ps(v, v, acc);
        }
        ss = _mm512_reduce_add_ps(acc);
#endif
        for (; j < d; j++) {
            ss += (double) r[j] * r[j];
        }
        float scale = (float) (1.0 / sqrt(ss / d + eps));
        j = 0;
#if defined(__AVX512F__)
        __m512 sc = _mm512_set1_ps(scale);
        for (; j + 16 <= d; j += 16) {
            _mm512_storeu_ps(o + j, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(r + j), sc), _mm512_loadu_ps(w + j)));
        }
#endif
        for (; j < d; j++) {
            o[j] = r[j] * scale * w[j];
        }
    }
}

void cria_swiglu(float *a, const float *b, int64_t from, int64_t to) {
    for (int64_t i = from; i < to; i++) {
        float g = a[i];
        a[i] = g / (1.0f + expf(-g)) * b[i];
    }
}

/* a = gelu(a) * b, GELU in its tanh form (Gemma's feed-forward gate); tanh(u) as 1 - 2 / (e^(2u) + 1),
 * 16 at a time with train_simd.h's e^x (a scalar tanhf per value was most of the op). */
void cria_geglu(float *a, const float *b, int64_t from, int64_t to) {
    int64_t i = from;
#if CRIA_VNNI
    const __m512 c0 = _mm512_set1_ps(0.7978845608f), c1 = _mm512_set1_ps(0.044715f), one = _mm512_set1_ps(1.0f);
    const __m512 two = _mm512_set1_ps(2.0f), half = _mm512_set1_ps(0.5f);
    for (; i + 16 <= to; i += 16) {
        __m512 g = _mm512_loadu_ps(a + i);
        __m512 u = _mm512_mul_ps(c0, _mm512_fmadd_ps(_mm512_mul_ps(c1, g), _mm512_mul_ps(g, g), g));
        __m512 t = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(exp16(_mm512_mul_ps(two, u)), one)));
        __m512 r = _mm512_mul_ps(_mm512_mul_ps(half, g), _mm512_add_ps(one, t));
        _mm512_storeu_ps(a + i, _mm512_mul_ps(r, _mm512_loadu_ps(b + i)));
    }
#endif
    for (; i < to; i++) {
        float g = a[i];
        a[i] = 0.5f * g * (1.0f + tanhf(0.7978845608f * (g + 0.044715f * g * g * g))) * b[i];
    }
}

void cria_add(float *x, const float *y, int64_t count) {
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= count; i += 16) {
        _mm512_storeu_ps(x + i, _mm512_add_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    }
#endif
    for (; i < count; i++) {
        x[i] += y[i];
    }
}

/* Rotates the heads of rows [r0, r1) (row i at position pos[i]); inv[p] is pair p's inverse frequency. */
void cria_rope(float *x, int64_t xs, int32_t r0, int32_t r1, int32_t heads, int32_t head_dim, int32_t dims, int32_t neox,
               const int32_t *pos, const double *inv, float *cs) {
    int half = dims / 2;
    for (int32_t i = r0; i < r1; i++) {
        for (int p = 0; p < half; p++) {
            double theta = pos[i] * inv[p];
            cs[2 * p] = (float) cos(theta);
            cs[2 * p + 1] = (float) sin(theta);
        }
        float *row = x + i * xs;
        for (int h = 0; h < heads; h++) {
            float *b = row + (int64_t) h * head_dim;
            for (int p = 0; p < half; p++) {
                int ia = neox ? p : 2 * p;
                int ib = neox ? p + half : 2 * p + 1;
                float x0 = b[ia], x1 = b[ib], c = cs[2 * p], s = cs[2 * p + 1];
                b[ia] = x0 * c - x1 * s;
                b[ib] = x0 * s + x1 * c;
            }
        }
    }
}

/* float to IEEE half, round to nearest even (the F16C instruction's rounding). */
static uint16_t f2h(float f) {
#if defined(__F16C__)
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff) {
        return (uint16_t) (sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
    }
    int e = (int) exp - 127 + 15;
    if (e >= 31) {
        return (uint16_t) (sign | 0x7c00);
    }
    if (e <= 0) {
        if (e < -10) {
            return (uint16_t) sign;
        }
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1))) {
            h++;
        }
        return (uint16_t) (sign | h);
    }
    uint32_t h = ((uint32_t) e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) {
        h++;
    }
    return (uint16_t) (sign | h);
#endif
}

/* One row of d floats (src_off bytes into src) into the cache (dst_off bytes into dst) as F16 (f16 != 0) or F32. */
void cria_store_row(const uint8_t *src_base, int64_t src_off, uint8_t *dst_base, int64_t dst_off, int32_t d, int32_t f16) {
    const float *src = (const float *) (src_base + src_off);
    uint8_t *dst = dst_base + dst_off;
    if (!f16) {
        memcpy(dst, src, (size_t) d * 4);
        return;
    }
    int j = 0;
#if defined(__AVX512F__)
    for (; j + 16 <= d; j += 16) {
        _mm256_storeu_si256((__m256i *) (dst + 2 * j), _mm512_cvtps_ph(_mm512_loadu_ps(src + j), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
#endif
    for (; j < d; j++) {
        uint16_t h = f2h(src[j]);
        memcpy(dst + 2 * j, &h, 2);
    }
}
