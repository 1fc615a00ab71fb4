/* Vector helpers shared by the training kernels (internal): a deterministic e^x, tail masks. */
#ifndef CRIA_TRAIN_SIMD_H
#define CRIA_TRAIN_SIMD_H
#include "matmul.h"

/* Dropout's mask (TrainOps.keep): splitmix64 of seed + (index + 1) * A, kept when its top 24 bits reach p * 2^24. */
#define SPLITMIX_A 0x9E3779B97F4A7C15ULL
#define SPLITMIX_B 0xBF58476D1CE4E5B9ULL
#define SPLITMIX_C 0x94D049BB133111EBULL

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

/* The keep mask of 16 consecutive elements idx0 .. idx0 + 15 under seed (TrainOps.keep, bit for bit):
 * z0 = seed + (idx0 + 1) * A, and lanes add lane * A (offsets of lanes 0..7 in lo, 8..15 in hi). */
static inline __mmask16 keep16(uint64_t z0, __m512i lo, __m512i hi, __m512i thr) {
    __m512i a = _mm512_add_epi64(_mm512_set1_epi64((int64_t) z0), lo);
    __m512i b = _mm512_add_epi64(_mm512_set1_epi64((int64_t) z0), hi);
    __m512i mb = _mm512_set1_epi64((int64_t) SPLITMIX_B), mc = _mm512_set1_epi64((int64_t) SPLITMIX_C);
    a = _mm512_mullo_epi64(_mm512_xor_si512(a, _mm512_srli_epi64(a, 30)), mb);
    b = _mm512_mullo_epi64(_mm512_xor_si512(b, _mm512_srli_epi64(b, 30)), mb);
    a = _mm512_mullo_epi64(_mm512_xor_si512(a, _mm512_srli_epi64(a, 27)), mc);
    b = _mm512_mullo_epi64(_mm512_xor_si512(b, _mm512_srli_epi64(b, 27)), mc);
    a = _mm512_srli_epi64(_mm512_xor_si512(a, _mm512_srli_epi64(a, 31)), 40);
    b = _mm512_srli_epi64(_mm512_xor_si512(b, _mm512_srli_epi64(b, 31)), 40);
    return (__mmask16) (_mm512_cmpge_epu64_mask(a, thr) | ((unsigned) _mm512_cmpge_epu64_mask(b, thr) << 8));
}

/* The dropout state of one call: lane offsets and threshold. */
typedef struct {
    __m512i lo, hi, thr;
    __m512 kept;
} dropper;

static inline dropper dropper_of(float drop) {
    dropper r;
    r.lo = _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_epi64((int64_t) SPLITMIX_A));
    r.hi = _mm512_mullo_epi64(_mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi64((int64_t) SPLITMIX_A));
    r.thr = _mm512_set1_epi64((int64_t) (drop * (float) (1 << 24)));
    r.kept = _mm512_set1_ps(1.0f / (1.0f - drop));
    return r;
}

/* The dropout factors (0 or 1/(1-p)) of elements idx0 .. idx0 + 15. */
static inline __m512 drop16(const dropper *dr, int64_t seed, int64_t idx0) {
    uint64_t z0 = (uint64_t) seed + ((uint64_t) idx0 + 1) * SPLITMIX_A;
    return _mm512_maskz_mov_ps(keep16(z0, dr->lo, dr->hi, dr->thr), dr->kept);
}
#endif

#endif
