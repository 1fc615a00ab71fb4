/* Vector helpers shared by the training kernels (internal): a deterministic e^x, tail masks. */
#ifndef CRIA_TRAIN_SIMD_H
#define CRIA_TRAIN_SIMD_H
#include "matmul.h"

#if CRIA_VNNI
/* e^x for 16 floats: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r, then scaled by 2^n.
 * Within 2 ulp over the float range; pure multiply-adds, so the same bits on every run. */
static inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-103.9f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* 2^x for 16 floats x <= 0, zero in lanes off k: x = n + r with |r| <= 1/2, a degree-5 polynomial for 2^r
 * (fitted near-minimax on [-1/2, 1/2]: within 2.5e-7 relative, float rounding included), scaled by 2^n;
 * -inf and anything below -150 give 0. Pure multiply-adds: the same bits on every run. */
static inline __m512 exp2_16_neg(__mmask16 k, __m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-150.0f));
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.327647129e-03f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.675541893e-03f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.550713092e-02f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.402212024e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.931469440e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.000000119e+00f));
    return _mm512_maskz_scalef_ps(k, p, n);
}

static inline __mmask16 mask_of(int n) {
    return n >= 16 ? (__mmask16) 0xffff : n <= 0 ? (__mmask16) 0 : (__mmask16) ((1u << n) - 1);
}
#endif

#endif
