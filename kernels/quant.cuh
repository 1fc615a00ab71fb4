// ggml block formats decoded on the device: one struct per weight type that turns "chunk" c of a row
// (values 32c .. 32c+31) into 32 floats in registers. Shared by the embed and matmul families.
#pragma once
#include "common.cuh"

// Every type decodes a row in chunks of 32 consecutive values. For the 32-value block types a
// chunk is one block; for the 256-value K and IQ4_XS types it is sub-block c % 8 of block c / 8.
// A decoder computes each value with the same float operations as the Java codec in
// cria.tensor (which is bit-exact with ggml), up to fused multiply-adds.
//
// Members: BLOCK (values per block), BYTES (bytes per block), ALIGN (the alignment every block
// start is guaranteed: gcd(BYTES, 16), since rows start at multiples of BYTES in a 256-byte
// aligned allocation), and chunk(row, c, cols, v).

#define CRIA_CHUNK 32

static __constant__ int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                               1, 13, 25, 38, 53, 69, 89, 113};

struct DeqF32 {
    static constexpr int BLOCK = 1, BYTES = 4, ALIGN = 4;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int cols, float* v) {
        const float* r = reinterpret_cast<const float*>(row) + CRIA_CHUNK * c;
        if (cols % CRIA_CHUNK == 0) {  // rows are whole multiples of 128 bytes: 16-byte loads
#pragma unroll
            for (int k = 0; k < 4; k++) {
                load_f8(r + 8 * k, v + 8 * k);
            }
        } else {
            const int left = cols - CRIA_CHUNK * c;
#pragma unroll
            for (int j = 0; j < CRIA_CHUNK; j++) {
                v[j] = j < left ? r[j] : 0.0f;
            }
        }
    }
};

// F16 and BF16 rows: 16-bit floats, turned into float by Cvt::f.
struct CvtF16 {
    static __device__ __forceinline__ float f(uint16_t h) { return h2f(h); }
};
struct CvtBF16 {
    static __device__ __forceinline__ float f(uint16_t h) { return bf2f(h); }
};

template <class Cvt>
struct Deq16 {
    static constexpr int BLOCK = 1, BYTES = 2, ALIGN = 2;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int cols, float* v) {
        const uint16_t* r = reinterpret_cast<const uint16_t*>(row) + CRIA_CHUNK * c;
        if (cols % CRIA_CHUNK == 0) {  // 64-byte rows: four 16-byte loads of 8 halves
            uint32_t w[16];
            load_words<64, 16>(reinterpret_cast<const uint8_t*>(r), w);
#pragma unroll
            for (int k = 0; k < 16; k++) {
                v[2 * k] = Cvt::f((uint16_t) (w[k] & 0xffffu));
                v[2 * k + 1] = Cvt::f((uint16_t) (w[k] >> 16));
            }
        } else {
            const int left = cols - CRIA_CHUNK * c;
#pragma unroll
            for (int j = 0; j < CRIA_CHUNK; j++) {
                v[j] = j < left ? Cvt::f(r[j]) : 0.0f;
            }
        }
    }
};
using DeqF16 = Deq16<CvtF16>;
using DeqBF16 = Deq16<CvtBF16>;

// Q4_0 (18 bytes): f16 d, 16 bytes; byte j holds value j (low nibble) and j + 16 (high). x = d (q - 8).
struct DeqQ4_0 {
    static constexpr int BLOCK = 32, BYTES = 18, ALIGN = 2;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) c * BYTES;
        const float d = h2f(ld_u16(b));
        uint32_t w[4];
        load_words<16, ALIGN>(b + 2, w);
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const uint32_t q = byte_at(w, j);
            v[j] = (float) ((int) (q & 15u) - 8) * d;
            v[j + 16] = (float) ((int) (q >> 4) - 8) * d;
        }
    }
};

// Q4_1 (20 bytes): f16 d, f16 m, 16 bytes of nibbles as Q4_0. x = d q + m.
struct DeqQ4_1 {
    static constexpr int BLOCK = 32, BYTES = 20, ALIGN = 4;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) c * BYTES;
        const float d = h2f(ld_u16(b));
        const float m = h2f(ld_u16(b + 2));
        uint32_t w[4];
        load_words<16, ALIGN>(b + 4, w);
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const uint32_t q = byte_at(w, j);
            v[j] = (float) (q & 15u) * d + m;
            v[j + 16] = (float) (q >> 4) * d + m;
        }
    }
};

// Q5_0 (22 bytes): f16 d, u32 qh (bit j = fifth bit of value j), 16 bytes of nibbles. x = d (q - 16).
struct DeqQ5_0 {
    static constexpr int BLOCK = 32, BYTES = 22, ALIGN = 2;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) c * BYTES;
        const float d = h2f(ld_u16(b));
        const uint32_t qh = ld_u32_a2(b + 2);
        uint32_t w[4];
        load_words<16, ALIGN>(b + 6, w);
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const uint32_t q = byte_at(w, j);
            const uint32_t h0 = ((qh >> j) << 4) & 0x10u;
            const uint32_t h1 = (qh >> (j + 12)) & 0x10u;
            v[j] = (float) ((int) ((q & 15u) | h0) - 16) * d;
            v[j + 16] = (float) ((int) ((q >> 4) | h1) - 16) * d;
        }
    }
};

// Q5_1 (24 bytes): f16 d, f16 m, u32 qh, 16 bytes of nibbles. x = d q + m.
struct DeqQ5_1 {
    static constexpr int BLOCK = 32, BYTES = 24, ALIGN = 8;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) c * BYTES;
        const float d = h2f(ld_u16(b));
        const float m = h2f(ld_u16(b + 2));
        CRIA_CHECK_ALIGN(b + 4, 4);
        const uint32_t qh = *reinterpret_cast<const uint32_t*>(b + 4);
        uint32_t w[4];
        load_words<16, ALIGN>(b + 8, w);
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const uint32_t q = byte_at(w, j);
            const uint32_t h0 = ((qh >> j) << 4) & 0x10u;
            const uint32_t h1 = (qh >> (j + 12)) & 0x10u;
            v[j] = (float) ((q & 15u) | h0) * d + m;
            v[j + 16] = (float) ((q >> 4) | h1) * d + m;
        }
    }
};

// Q8_0 (34 bytes): f16 d, 32 signed bytes. x = d q.
struct DeqQ8_0 {
    static constexpr int BLOCK = 32, BYTES = 34, ALIGN = 2;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) c * BYTES;
        const float d = h2f(ld_u16(b));
        uint32_t w[8];
        load_words<32, ALIGN>(b + 2, w);
#pragma unroll
        for (int j = 0; j < 32; j++) {
            v[j] = (float) (int8_t) byte_at(w, j) * d;
        }
    }
};

// IQ4_NL (18 bytes): f16 d, nibbles as Q4_0 indexing a fixed non-linear grid. x = d grid[q].
struct DeqIQ4_NL {
    static constexpr int BLOCK = 32, BYTES = 18, ALIGN = 2;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) c * BYTES;
        const float d = h2f(ld_u16(b));
        uint32_t w[4];
        load_words<16, ALIGN>(b + 2, w);
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const uint32_t q = byte_at(w, j);
            v[j] = d * (float) kIq4nlValues[q & 15u];
            v[j + 16] = d * (float) kIq4nlValues[q >> 4];
        }
    }
};

// Q2_K (84 bytes): 16 scale bytes (low nibble scale, high nibble min), 64 bytes of 2-bit values,
// f16 d at 80, f16 dmin at 82. Sub-block sub = 4 half + s covers the 32 bytes at 16 + 32 half,
// bits 2s..2s+1; its first 16 values use scale byte 8 half + 2s, the next 16 the one after.
struct DeqQ2_K {
    static constexpr int BLOCK = 256, BYTES = 84, ALIGN = 4;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) (c >> 3) * BYTES;
        const int sub = c & 7;
        const int half = sub >> 2;
        const int shift = 2 * (sub & 3);
        const float d = h2f(ld_u16(b + 80));
        const float dmin = h2f(ld_u16(b + 82));
        uint32_t w[8];
        load_words<32, ALIGN>(b + 16 + 32 * half, w);
#pragma unroll
        for (int part = 0; part < 2; part++) {
            const uint32_t sc = b[8 * half + shift + part];  // 8 half + 2 s + part
            const float dl = d * (float) (sc & 15u);
            const float ml = dmin * (float) (sc >> 4);
#pragma unroll
            for (int l = 0; l < 16; l++) {
                const uint32_t q = (byte_at(w, 16 * part + l) >> shift) & 3u;
                v[16 * part + l] = dl * (float) q - ml;
            }
        }
    }
};

// Q3_K (110 bytes): hmask[32] at 0, 2-bit values qs[64] at 32, 12 bytes of packed 6-bit scales at
// 96, f16 d at 108. Sub-block sub = 4 half + s: bits 2s of the 32 bytes at 32 + 32 half, high
// bit 4 half + s of hmask (set means +0, clear means -4), scales 8 half + 2s and the next.
struct DeqQ3_K {
    static constexpr int BLOCK = 256, BYTES = 110, ALIGN = 2;
    static __device__ __forceinline__ int scale(const uint8_t* s, int j) {
        const int low = j < 8 ? (s[j] & 15) : (s[j - 8] >> 4);
        const int high = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        return low | (high << 4);
    }
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) (c >> 3) * BYTES;
        const int sub = c & 7;
        const int half = sub >> 2;
        const int s = sub & 3;
        const float d = h2f(ld_u16(b + 108));
        uint32_t q[8];
        uint32_t hm[8];
        load_words<32, ALIGN>(b + 32 + 32 * half, q);
        load_words<32, ALIGN>(b, hm);
        const int hbit = 4 * half + s;
#pragma unroll
        for (int part = 0; part < 2; part++) {
            const float dl = d * (float) (scale(b + 96, 8 * half + 2 * s + part) - 32);
#pragma unroll
            for (int l = 0; l < 16; l++) {
                const int k = 16 * part + l;
                const int lo = (int) ((byte_at(q, k) >> (2 * s)) & 3u);
                const int hi = ((byte_at(hm, k) >> hbit) & 1u) ? 0 : 4;
                v[k] = dl * (float) (lo - hi);
            }
        }
    }
};

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K block (12 packed bytes at s).
__device__ __forceinline__ void scale_min_k4(const uint8_t* s, int j, int* sc, int* m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q4_K (144 bytes): f16 d, f16 dmin, 12 scale bytes, qs[128] at 16. Sub-block sub: the 32 bytes
// at 16 + 32 (sub / 2), low nibbles for even sub, high for odd. x = d sc q - dmin m.
// Q5_K (176 bytes, FIVE): as Q4_K plus qh[32] at 16 (bit sub of byte l is the fifth bit of value l
// of sub-block sub); the nibbles move to 48.
template <bool FIVE>
struct DeqQ45_K {
    static constexpr int BLOCK = 256, BYTES = FIVE ? 176 : 144, ALIGN = 16;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) (c >> 3) * BYTES;
        const int sub = c & 7;
        const float d = h2f(ld_u16(b));
        const float dmin = h2f(ld_u16(b + 2));
        int sc, m;
        scale_min_k4(b + 4, sub, &sc, &m);
        const float d1 = d * (float) sc;
        const float m1 = dmin * (float) m;
        uint32_t ql[8];
        uint32_t qh[8];
        load_words<32, ALIGN>(b + (FIVE ? 48 : 16) + 32 * (sub >> 1), ql);
        if (FIVE) {
            load_words<32, ALIGN>(b + 16, qh);
        }
        const int shift = 4 * (sub & 1);
#pragma unroll
        for (int l = 0; l < 32; l++) {
            uint32_t q = (byte_at(ql, l) >> shift) & 15u;
            if (FIVE) {
                q += ((byte_at(qh, l) >> sub) & 1u) << 4;
            }
            v[l] = d1 * (float) q - m1;
        }
    }
};
using DeqQ4_K = DeqQ45_K<false>;
using DeqQ5_K = DeqQ45_K<true>;

// Q6_K (210 bytes): ql[128] at 0, qh[64] at 128, int8 scales[16] at 192, f16 d at 208.
// Sub-block sub = 4 h + r: values 128 h + 32 r + l take the low (r < 2) or high nibble of
// ql[64 h + 32 (r & 1) + l], bits 2r of qh[32 h + l], and scale 8 h + 2 r + l / 16.
struct DeqQ6_K {
    static constexpr int BLOCK = 256, BYTES = 210, ALIGN = 2;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) (c >> 3) * BYTES;
        const int sub = c & 7;
        const int h = sub >> 2;
        const int r = sub & 3;
        const float d = h2f(ld_u16(b + 208));
        uint32_t ql[8];
        uint32_t qh[8];
        load_words<32, ALIGN>(b + 64 * h + 32 * (r & 1), ql);
        load_words<32, ALIGN>(b + 128 + 32 * h, qh);
        const int lshift = 4 * (r >> 1);
        const int hshift = 2 * r;
        const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * h + 2 * r);
        const float s0 = (float) sc[0];
        const float s1 = (float) sc[1];
#pragma unroll
        for (int l = 0; l < 32; l++) {
            const int q = (int) (((byte_at(ql, l) >> lshift) & 15u) | (((byte_at(qh, l) >> hshift) & 3u) << 4)) - 32;
            v[l] = d * (l < 16 ? s0 : s1) * (float) q;
        }
    }
};

// IQ4_XS (136 bytes): f16 d, u16 scales_h, scales_l[4], qs[128] at 8. Sub-block ib has the 6-bit
// scale (low 4 bits from scales_l, high 2 from scales_h) and the 16 bytes at 8 + 16 ib, laid out
// as IQ4_NL. x = d (ls - 32) grid[q].
struct DeqIQ4_XS {
    static constexpr int BLOCK = 256, BYTES = 136, ALIGN = 8;
    static __device__ __forceinline__ void chunk(const uint8_t* __restrict__ row, int c, int, float* v) {
        const uint8_t* b = row + (size_t) (c >> 3) * BYTES;
        const int ib = c & 7;
        const float d = h2f(ld_u16(b));
        const uint32_t sh = ld_u16(b + 2);
        const uint32_t sl = b[4 + (ib >> 1)];
        const int ls = (int) (((sl >> (4 * (ib & 1))) & 15u) | (((sh >> (2 * ib)) & 3u) << 4));
        const float dl = d * (float) (ls - 32);
        uint32_t w[4];
        load_words<16, ALIGN>(b + 8 + 16 * ib, w);
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const uint32_t q = byte_at(w, j);
            v[j] = dl * (float) kIq4nlValues[q & 15u];
            v[j + 16] = dl * (float) kIq4nlValues[q >> 4];
        }
    }
};

/** Bytes of a row of `cols` values of type D. */
template <class D>
__device__ __forceinline__ size_t row_bytes(int cols) {
    return (size_t) (cols / D::BLOCK) * D::BYTES;
}

/** Chunks of 32 values in a row of `cols` values (the last may be partial for float types). */
__device__ __forceinline__ int row_chunks(int cols) {
    return (cols + CRIA_CHUNK - 1) / CRIA_CHUNK;
}
