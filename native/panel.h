/* Direct panel builders for the hot weight types: 16 full rows of a CH-value chunk go straight
 * from ggml blocks to the transposed VNNI layout (4 values of 16 rows per 64-byte line), without
 * the generic unpack-then-transpose round trip. Each produces exactly what make_chunk_of does
 * for the same type (same bytes, same scales), so results do not depend on the path taken. */
#ifndef CRIA_PANEL_H
#define CRIA_PANEL_H
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#include <stdint.h>

/* Column c (0..3) of rows 4q..4q+3 for each of 4 registers -> 4 registers of 16 rows. */
static inline void lanes4x4(__m512i t[4]) {
    __m512i a = _mm512_shuffle_i32x4(t[0], t[1], 0x44);
    __m512i b = _mm512_shuffle_i32x4(t[0], t[1], 0xEE);
    __m512i c = _mm512_shuffle_i32x4(t[2], t[3], 0x44);
    __m512i d = _mm512_shuffle_i32x4(t[2], t[3], 0xEE);
    t[0] = _mm512_shuffle_i32x4(a, c, 0x88);
    t[1] = _mm512_shuffle_i32x4(a, c, 0xDD);
    t[2] = _mm512_shuffle_i32x4(b, d, 0x88);
    t[3] = _mm512_shuffle_i32x4(b, d, 0xDD);
}

/* 16 bytes at p + rr * stride for rows rr = 0..15 -> d[m] = bytes 4m..4m+3 of every row (lane = row). */
static inline void gather16x16(const uint8_t *p, int64_t stride, __m512i d[4]) {
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    for (int q = 0; q < 4; q++) {
        const uint8_t *r = p + 4 * q * stride;
        __m512i z = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *) r));
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *) (r + stride)), 1);
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *) (r + 2 * stride)), 2);
        z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *) (r + 3 * stride)), 3);
        /* lanes are rows, dwords are columns: make lanes columns */
        d[q] = _mm512_permutexvar_epi32(idx, z);
    }
    lanes4x4(d);
}

/* The 16-bit float at p + rr * stride for each row, as 16 floats. */
static inline __m512 gather_f16(const uint8_t *p, int64_t stride) {
    const __m512i rows = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    __m512i v = _mm512_i32gather_epi32(_mm512_mullo_epi32(rows, _mm512_set1_epi32((int32_t) stride)), p, 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
}

/* The 32-bit word at p + rr * stride for each row. */
static inline __m512i gather_u32(const uint8_t *p, int64_t stride) {
    const __m512i rows = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    return _mm512_i32gather_epi32(_mm512_mullo_epi32(rows, _mm512_set1_epi32((int32_t) stride)), p, 1);
}

/* How a panel builder reads its 16 rows (the same code serves every mode, so the bytes a packed
 * weight gives back are the bytes a gather gives):
 *   GATHER: from the ggml rows;
 *   RECORD: from the ggml rows, and each gathered vector is appended to a stream (packing);
 *   REPLAY: from such a stream, one contiguous read per vector (a packed weight);
 *   COUNT:  nothing is read, the stream's length is counted (zeros go on). */
enum { GATHER = 0, RECORD = 1, REPLAY = 2, COUNT = 3 };

static inline __attribute__((always_inline)) void g16(const int mode, uint8_t **cur, const uint8_t *p, int64_t stride, __m512i d[4]) {
    if (mode == REPLAY) {
        for (int m = 0; m < 4; m++) {
            d[m] = _mm512_loadu_si512(*cur + 64 * m);
        }
    } else if (mode == COUNT) {
        for (int m = 0; m < 4; m++) {
            d[m] = _mm512_setzero_si512();
        }
    } else {
        gather16x16(p, stride, d);
        if (mode == RECORD) {
            for (int m = 0; m < 4; m++) {
                _mm512_storeu_si512(*cur + 64 * m, d[m]);
            }
        }
    }
    if (mode != GATHER) {
        *cur += 256;
    }
}

/* gather_f16, keeping the 16 halves (32 bytes) in the stream. */
static inline __attribute__((always_inline)) __m512 gf16(const int mode, uint8_t **cur, const uint8_t *p, int64_t stride) {
    __m256i h;
    if (mode == REPLAY) {
        h = _mm256_loadu_si256((const __m256i *) *cur);
    } else if (mode == COUNT) {
        h = _mm256_setzero_si256();
    } else {
        h = _mm512_cvtepi32_epi16(gather_u32(p, stride));
        if (mode == RECORD) {
            _mm256_storeu_si256((__m256i *) *cur, h);
        }
    }
    if (mode != GATHER) {
        *cur += 32;
    }
    return _mm512_cvtph_ps(h);
}

static inline __attribute__((always_inline)) __m512i gu32(const int mode, uint8_t **cur, const uint8_t *p, int64_t stride) {
    __m512i v;
    if (mode == REPLAY) {
        v = _mm512_loadu_si512(*cur);
    } else if (mode == COUNT) {
        v = _mm512_setzero_si512();
    } else {
        v = gather_u32(p, stride);
        if (mode == RECORD) {
            _mm512_storeu_si512(*cur, v);
        }
    }
    if (mode != GATHER) {
        *cur += 64;
    }
    return v;
}

/* The scale and offset of a 32-value group: the same for both of its 16-value activation blocks. */
static inline void store_scales2(float *ps, float *pm, int j, __m512 s, __m512 m) {
    _mm512_store_ps(ps + (2 * j) * 16, s);
    _mm512_store_ps(ps + (2 * j + 1) * 16, s);
    _mm512_store_ps(pm + (2 * j) * 16, m);
    _mm512_store_ps(pm + (2 * j + 1) * 16, m);
}

/* Q4_0: per block column, 16 bytes of nibbles per row. */
static inline __attribute__((always_inline)) void panel_q4_0(const int M, uint8_t **C, const uint8_t *w, int64_t wrb, int k0, int kc, uint8_t *pw, float *ps, float *pm) {
    const __m512i lo4 = _mm512_set1_epi8(15);
    for (int j = 0; j < kc / 32; j++) {
        const uint8_t *b = w + (int64_t) (k0 / 32 + j) * 18;
        __m512i d[4];
        g16(M, C, b + 2, wrb, d);
        for (int m = 0; m < 4; m++) {
            _mm512_store_si512(pw + (8 * j + m) * 64, _mm512_and_si512(d[m], lo4));
            _mm512_store_si512(pw + (8 * j + 4 + m) * 64, _mm512_and_si512(_mm512_srli_epi16(d[m], 4), lo4));
        }
        __m512 s = gf16(M, C, b, wrb);
        __m512 m = _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(_mm512_set1_ps(8.0f), s));
        store_scales2(ps, pm, j, s, m);
    }
}

/* Q8_0: per block column, 32 signed bytes per row (two halves of 16). */
static inline __attribute__((always_inline)) void panel_q8_0(const int M, uint8_t **C, const uint8_t *w, int64_t wrb, int k0, int kc, uint8_t *pw, float *ps, float *pm) {
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    for (int j = 0; j < kc / 32; j++) {
        const uint8_t *b = w + (int64_t) (k0 / 32 + j) * 34;
        for (int h = 0; h < 2; h++) {
            __m512i d[4];
            g16(M, C, b + 2 + 16 * h, wrb, d);
            for (int m = 0; m < 4; m++) {
                _mm512_store_si512(pw + (8 * j + 4 * h + m) * 64, _mm512_xor_si512(d[m], flip));
            }
        }
        __m512 s = gf16(M, C, b, wrb);
        __m512 m = _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(_mm512_set1_ps(128.0f), s));
        store_scales2(ps, pm, j, s, m);
    }
}

/* Q4_K and Q5_K: one super-block (CH = 256 values); 6-bit scales and mins decoded for 16 rows at
 * once. Q5_K adds a fifth bit per value from qh (bit 2g of byte l for value 64g + l, bit 2g + 1
 * for value 64g + 32 + l) and keeps its 4-bit parts 32 bytes further on. */
static inline __attribute__((always_inline)) void panel_q45_k(const int M, uint8_t **C, const int five, const uint8_t *w, int64_t wrb, int k0,
                                                               uint8_t *pw, float *ps, float *pm) {
    const __m512i lo4 = _mm512_set1_epi8(15);
    const __m512i one = _mm512_set1_epi8(1);
    const uint8_t *b = w + (int64_t) (k0 / 256) * (five ? 176 : 144);
    const uint8_t *qs = b + (five ? 48 : 16);
    /* the block's first 16 bytes for all 16 rows: d and dmin, then the 12 bytes of packed scales
     * (gathered first, so a packed stream is read front to back) */
    __m512i head[4];
    g16(M, C, b, wrb, head);
    /* then [Q5_K: both 16-byte columns h of high bits,] then the nibbles group by group, column 0
     * then 1 of each: the order the fused product reads them, so a packed stream is one run */
    __m512i qh[2][4];
    if (five) {
        g16(M, C, b + 16, wrb, qh[0]);
        g16(M, C, b + 32, wrb, qh[1]);
    }
    for (int g = 0; g < 4; g++) {
        for (int h = 0; h < 2; h++) {
            __m512i d[4];
            g16(M, C, qs + 32 * g + 16 * h, wrb, d);
            for (int m = 0; m < 4; m++) {
                /* bytes 16h + 4m of the group: low nibbles are values 64g + 16h + 4m, high ones 64g + 32 + 16h + 4m */
                __m512i lo = _mm512_and_si512(d[m], lo4), hi = _mm512_and_si512(_mm512_srli_epi16(d[m], 4), lo4);
                if (five) { /* 16-bit shifts: bit s of each byte lands in that byte's bit 0 */
                    lo = _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh[h][m], 2 * g), one), 4));
                    hi = _mm512_or_si512(hi, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh[h][m], 2 * g + 1), one), 4));
                }
                _mm512_store_si512(pw + (16 * g + 4 * h + m) * 64, lo);
                _mm512_store_si512(pw + (16 * g + 8 + 4 * h + m) * 64, hi);
            }
        }
    }
    __m512i dd = head[0];
    __m512 dv = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
    __m512 dminv = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
    __m512i s0 = head[1], s1 = head[2], s2 = head[3];
    const __m512i m63 = _mm512_set1_epi32(63), m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3);
    for (int j = 0; j < 8; j++) {
        __m512i sc, mn;
        if (j < 4) {
            sc = _mm512_and_si512(_mm512_srli_epi32(s0, 8 * j), m63);
            mn = _mm512_and_si512(_mm512_srli_epi32(s1, 8 * j), m63);
        } else {
            int q = 8 * (j - 4);
            __m512i x = _mm512_srli_epi32(s2, q);
            sc = _mm512_or_si512(_mm512_and_si512(x, m15), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s0, q + 6), m3), 4));
            mn = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(x, 4), m15), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s1, q + 6), m3), 4));
        }
        __m512 s = _mm512_mul_ps(dv, _mm512_cvtepi32_ps(sc));
        __m512 m = _mm512_add_ps(_mm512_mul_ps(dminv, _mm512_cvtepi32_ps(mn)), _mm512_mul_ps(_mm512_setzero_ps(), s));
        store_scales2(ps, pm, j, s, m);
    }
}

/* Q6_K: one super-block; 4 + 2 bit values, 16 signed 8-bit scales per row. */
static inline __attribute__((always_inline)) void panel_q6_k(const int M, uint8_t **C, const uint8_t *w, int64_t wrb, int k0, uint8_t *pw, float *ps, float *pm) {
    const __m512i lo4 = _mm512_set1_epi8(15), lo2 = _mm512_set1_epi8(3);
    const uint8_t *b = w + (int64_t) (k0 / 256) * 210;
    /* d is the block's last two bytes: read the word that ends there, so no byte past the block is
     * touched; d and the scales are gathered first, so a packed stream is read front to back */
    __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(gu32(M, C, b + 206, wrb), 16)));
    __m512i scales[4];
    g16(M, C, b + 192, wrb, scales);
    for (int half = 0; half < 2; half++) {
        const uint8_t *ql = b + 64 * half, *qh = b + 128 + 32 * half;
        for (int h = 0; h < 2; h++) { /* bytes 16h .. 16h + 15 of each 32-byte run */
            __m512i l0[4], l1[4], hh[4];
            g16(M, C, ql + 16 * h, wrb, l0);
            g16(M, C, ql + 32 + 16 * h, wrb, l1);
            g16(M, C, qh + 16 * h, wrb, hh);
            for (int m = 0; m < 4; m++) {
                int l = 16 * h + 4 * m; /* value offset within each group of 32 */
                __m512i q0 = _mm512_or_si512(_mm512_and_si512(l0[m], lo4), _mm512_slli_epi16(_mm512_and_si512(hh[m], lo2), 4));
                __m512i q1 = _mm512_or_si512(_mm512_and_si512(l1[m], lo4),
                        _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hh[m], 2), lo2), 4));
                __m512i q2 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0[m], 4), lo4),
                        _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hh[m], 4), lo2), 4));
                __m512i q3 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1[m], 4), lo4),
                        _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hh[m], 6), lo2), 4));
                int base = 128 * half + l; /* value index in the super-block */
                _mm512_store_si512(pw + (base / 4) * 64, q0);
                _mm512_store_si512(pw + ((base + 32) / 4) * 64, q1);
                _mm512_store_si512(pw + ((base + 64) / 4) * 64, q2);
                _mm512_store_si512(pw + ((base + 96) / 4) * 64, q3);
            }
        }
    }
    __m512 off = _mm512_set1_ps(32.0f);
    for (int q = 0; q < 4; q++) {
        __m512i sc4 = scales[q];
        for (int j = 0; j < 4; j++) {
            __m512i v = _mm512_srai_epi32(_mm512_slli_epi32(sc4, 24 - 8 * j), 24); /* sign-extended byte j */
            __m512 s = _mm512_mul_ps(d, _mm512_cvtepi32_ps(v));
            _mm512_store_ps(ps + (4 * q + j) * 16, s);
            _mm512_store_ps(pm + (4 * q + j) * 16, _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(off, s)));
        }
    }
}

/* The 5 types' fifth bits as 16 in each byte whose bit is set: byte c of each 4-byte group (a row's
 * 4 values on one line) takes bit c of the row's qh word shifted right by `shift`. */
static inline __attribute__((always_inline)) __m512i fifth_bits(__m512i qh, int shift) {
    /* replicate each dword's low byte over the dword, then pick bit c in byte c */
    const __m512i rep = _mm512_set_epi8(12, 12, 12, 12, 8, 8, 8, 8, 4, 4, 4, 4, 0, 0, 0, 0, 12, 12, 12, 12, 8, 8, 8, 8, 4, 4, 4, 4,
            0, 0, 0, 0, 12, 12, 12, 12, 8, 8, 8, 8, 4, 4, 4, 4, 0, 0, 0, 0, 12, 12, 12, 12, 8, 8, 8, 8, 4, 4, 4, 4, 0, 0, 0, 0);
    const __m512i pick = _mm512_set1_epi32(0x08040201), sixteen = _mm512_set1_epi8(16);
    return _mm512_maskz_mov_epi8(_mm512_test_epi8_mask(_mm512_shuffle_epi8(_mm512_srli_epi32(qh, shift), rep), pick), sixteen);
}

/* Q4_1, Q5_0, Q5_1, IQ4_NL: like Q4_0, with a per-block min (the _1 types), a fifth bit per value
 * from the 32-bit qh word (the 5 types: bit j for value j), or a table lookup (IQ4_NL, stored as
 * value + 128). The offsets and mins match make_chunk_of's: Q5_0 subtracts 16 d, IQ4_NL 128 d; the
 * _1 types add their min (kept as m = -min + 0 d). */
static inline __attribute__((always_inline)) void panel_legacy(const int M, uint8_t **C, const int mins, const int five, const int nl, const uint8_t *w,
                                                               int64_t wrb, int k0, int kc, uint8_t *pw, float *ps, float *pm) {
    const __m512i lo4 = _mm512_set1_epi8(15), flip = _mm512_set1_epi8((char) 0x80);
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) IQ4NL));
    const int bb = 18 + 2 * mins + 4 * five, qs = 2 + 2 * mins + 4 * five, qhoff = 2 + 2 * mins;
    const __m512i signbit = _mm512_set1_epi32((int32_t) 0x80000000);
    for (int j = 0; j < kc / 32; j++) {
        const uint8_t *b = w + (int64_t) (k0 / 32 + j) * bb;
        __m512i d[4];
        g16(M, C, b + qs, wrb, d);
        __m512i qh = five ? gu32(M, C, b + qhoff, wrb) : _mm512_setzero_si512();
        for (int m = 0; m < 4; m++) {
            __m512i lo = _mm512_and_si512(d[m], lo4), hi = _mm512_and_si512(_mm512_srli_epi16(d[m], 4), lo4);
            if (five) {
                lo = _mm512_or_si512(lo, fifth_bits(qh, 4 * m));
                hi = _mm512_or_si512(hi, fifth_bits(qh, 16 + 4 * m));
            }
            if (nl) {
                lo = _mm512_xor_si512(_mm512_shuffle_epi8(table, lo), flip);
                hi = _mm512_xor_si512(_mm512_shuffle_epi8(table, hi), flip);
            }
            _mm512_store_si512(pw + (8 * j + m) * 64, lo);
            _mm512_store_si512(pw + (8 * j + 4 + m) * 64, hi);
        }
        __m512i dm = gu32(M, C, b, wrb); /* d, and the min for the _1 types */
        __m512 s = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
        __m512 mv;
        if (mins) {
            __m512 neg = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)))), signbit));
            mv = _mm512_add_ps(neg, _mm512_mul_ps(_mm512_setzero_ps(), s));
        } else {
            mv = _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(_mm512_set1_ps(nl ? 128.0f : 16.0f), s));
        }
        store_scales2(ps, pm, j, s, mv);
    }
}

/* Q3_K: one super-block of 110 bytes: hmask[32], qs[64], 12 bytes of packed 6-bit scales, d. Value
 * 128 half + 32 sh + l is ((qs[32 half + l] >> 2 sh) & 3) | (bit 4 half + sh of hmask[l]) << 2, less 4. */
static inline __attribute__((always_inline)) void panel_q3_k(const int M, uint8_t **C, const uint8_t *w, int64_t wrb, int k0, uint8_t *pw, float *ps, float *pm) {
    const __m512i three = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    const uint8_t *b = w + (int64_t) (k0 / 256) * 110;
    for (int h = 0; h < 2; h++) { /* bytes 16h .. 16h + 15 of each 32-byte run */
        __m512i hm[4];
        g16(M, C, b + 16 * h, wrb, hm);
        for (int half = 0; half < 2; half++) {
            __m512i q[4];
            g16(M, C, b + 32 + 32 * half + 16 * h, wrb, q);
            for (int sh = 0; sh < 4; sh++) {
                for (int m = 0; m < 4; m++) {
                    __m512i v = _mm512_and_si512(_mm512_srli_epi16(q[m], 2 * sh), three);
                    v = _mm512_or_si512(v, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hm[m], 4 * half + sh), one), 2));
                    _mm512_store_si512(pw + (32 * half + 8 * sh + 4 * h + m) * 64, v);
                }
            }
        }
    }
    /* bytes 94 .. 109: two bytes of qs, the 12 scale bytes, d (nothing past the block is read) */
    __m512i t[4];
    g16(M, C, b + 94, wrb, t);
    __m512 dall = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(t[3], 16)));
    const __m512i m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3), m255 = _mm512_set1_epi32(255);
#define SBYTE(j) _mm512_and_si512(_mm512_srli_epi32(t[(2 + (j)) / 4], 8 * ((2 + (j)) % 4)), m255)
    for (int is = 0; is < 16; is++) {
        __m512i low = is < 8 ? _mm512_and_si512(SBYTE(is), m15) : _mm512_srli_epi32(SBYTE(is - 8), 4);
        __m512i high = _mm512_and_si512(_mm512_srli_epi32(SBYTE(8 + is % 4), 2 * (is / 4)), m3);
        __m512i sc = _mm512_sub_epi32(_mm512_or_si512(low, _mm512_slli_epi32(high, 4)), _mm512_set1_epi32(32));
        __m512 s = _mm512_mul_ps(dall, _mm512_cvtepi32_ps(sc));
        _mm512_store_ps(ps + is * 16, s);
        _mm512_store_ps(pm + is * 16, _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(_mm512_set1_ps(4.0f), s)));
    }
#undef SBYTE
}

/* Q2_K: one super-block of 84 bytes: 16 scale bytes (scale in the low nibble, min in the high one),
 * qs[64], d, dmin. Value 128 half + 32 sh + l is (qs[32 half + l] >> 2 sh) & 3. */
static inline __attribute__((always_inline)) void panel_q2_k(const int M, uint8_t **C, const uint8_t *w, int64_t wrb, int k0, uint8_t *pw, float *ps, float *pm) {
    const __m512i three = _mm512_set1_epi8(3);
    const uint8_t *b = w + (int64_t) (k0 / 256) * 84;
    for (int half = 0; half < 2; half++) {
        for (int h = 0; h < 2; h++) {
            __m512i q[4];
            g16(M, C, b + 16 + 32 * half + 16 * h, wrb, q);
            for (int sh = 0; sh < 4; sh++) {
                for (int m = 0; m < 4; m++) {
                    _mm512_store_si512(pw + (32 * half + 8 * sh + 4 * h + m) * 64, _mm512_and_si512(_mm512_srli_epi16(q[m], 2 * sh), three));
                }
            }
        }
    }
    __m512i dd = gu32(M, C, b + 80, wrb);
    __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
    __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
    __m512i t[4];
    g16(M, C, b, wrb, t);
    const __m512i m15 = _mm512_set1_epi32(15);
    for (int is = 0; is < 16; is++) {
        __m512i byte = _mm512_srli_epi32(t[is / 4], 8 * (is % 4));
        __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(byte, m15)), d);
        __m512 mn = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(byte, 4), m15)), dmin);
        _mm512_store_ps(ps + is * 16, s);
        _mm512_store_ps(pm + is * 16, _mm512_add_ps(mn, _mm512_mul_ps(_mm512_setzero_ps(), s)));
    }
}

/* IQ4_XS: one super-block of 136 bytes: d, 16 bits of high scale parts, 4 bytes of low parts, then
 * 8 runs of 16 bytes (32 values each, looked up in the IQ4_NL table and stored as value + 128). */
static inline __attribute__((always_inline)) void panel_iq4_xs(const int M, uint8_t **C, const uint8_t *w, int64_t wrb, int k0, uint8_t *pw, float *ps, float *pm) {
    const __m512i lo4 = _mm512_set1_epi8(15), flip = _mm512_set1_epi8((char) 0x80);
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) IQ4NL));
    const uint8_t *b = w + (int64_t) (k0 / 256) * 136;
    for (int ib = 0; ib < 8; ib++) {
        __m512i d[4];
        g16(M, C, b + 8 + 16 * ib, wrb, d);
        for (int m = 0; m < 4; m++) {
            __m512i lo = _mm512_and_si512(d[m], lo4), hi = _mm512_and_si512(_mm512_srli_epi16(d[m], 4), lo4);
            _mm512_store_si512(pw + (8 * ib + m) * 64, _mm512_xor_si512(_mm512_shuffle_epi8(table, lo), flip));
            _mm512_store_si512(pw + (8 * ib + 4 + m) * 64, _mm512_xor_si512(_mm512_shuffle_epi8(table, hi), flip));
        }
    }
    __m512i t[4];
    g16(M, C, b, wrb, t);
    __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(t[0]));
    __m512i sh = _mm512_srli_epi32(t[0], 16);
    const __m512i m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3);
    for (int ib = 0; ib < 8; ib++) {
        __m512i low = _mm512_and_si512(_mm512_srli_epi32(t[1], 8 * (ib / 2) + 4 * (ib % 2)), m15);
        __m512i high = _mm512_and_si512(_mm512_srli_epi32(sh, 2 * ib), m3);
        __m512i ls = _mm512_sub_epi32(_mm512_or_si512(low, _mm512_slli_epi32(high, 4)), _mm512_set1_epi32(32));
        __m512 s = _mm512_mul_ps(d, _mm512_cvtepi32_ps(ls));
        __m512 mv = _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(_mm512_set1_ps(128.0f), s));
        store_scales2(ps, pm, ib, s, mv);
    }
}

/* Builds the chunk for 16 full rows when the type has a direct builder; returns 0 otherwise. The
 * 32-value block types take a short last chunk (kc < CH values, a multiple of 64); the 256-value
 * super-block types never have one. `mode` and `cur` as for g16: the rows, or a packed stream. */
static inline __attribute__((always_inline)) int panel_any(const int M, uint8_t **C, int32_t type, const uint8_t *w, int64_t wrb,
                                                           int k0, int kc, uint8_t *pw, float *ps, float *pm) {
    switch (type) {
        case T_Q4_0: panel_q4_0(M, C, w, wrb, k0, kc, pw, ps, pm); return 1;
        case T_Q8_0: panel_q8_0(M, C, w, wrb, k0, kc, pw, ps, pm); return 1;
        case T_Q4_1: panel_legacy(M, C, 1, 0, 0, w, wrb, k0, kc, pw, ps, pm); return 1;
        case T_Q5_0: panel_legacy(M, C, 0, 1, 0, w, wrb, k0, kc, pw, ps, pm); return 1;
        case T_Q5_1: panel_legacy(M, C, 1, 1, 0, w, wrb, k0, kc, pw, ps, pm); return 1;
        case T_IQ4_NL: panel_legacy(M, C, 0, 0, 1, w, wrb, k0, kc, pw, ps, pm); return 1;
        case T_Q4_K: panel_q45_k(M, C, 0, w, wrb, k0, pw, ps, pm); return 1;
        case T_Q5_K: panel_q45_k(M, C, 1, w, wrb, k0, pw, ps, pm); return 1;
        case T_Q6_K: panel_q6_k(M, C, w, wrb, k0, pw, ps, pm); return 1;
        case T_Q3_K: panel_q3_k(M, C, w, wrb, k0, pw, ps, pm); return 1;
        case T_Q2_K: panel_q2_k(M, C, w, wrb, k0, pw, ps, pm); return 1;
        case T_IQ4_XS: panel_iq4_xs(M, C, w, wrb, k0, pw, ps, pm); return 1;
        default: return 0;
    }
}

static inline int panel_fast(int32_t type, const uint8_t *w, int64_t wrb, int k0, int kc, uint8_t *pw, float *ps, float *pm) {
    return panel_any(GATHER, 0, type, w, wrb, k0, kc, pw, ps, pm);
}
#endif
#endif
