// Test-only emulation of the tensor-core and asynchronous-copy instructions kernels/mma.cuh wraps:
// mma.sync m16n8k16 (f16/bf16 in, f32 accumulate), ldmatrix (x1/x2/x4, .trans), cp.async with its groups; f16 conversions.
//
// Fragment layouts follow the PTX ISA ("Matrix Fragments for mma.m16n8k16 with floating point type";
// "ldmatrix"). With groupID g = lane / 4 and t = lane % 4:
//   A (16x16, row-major), four .b32 registers of two 16-bit values each (low half = lower column):
//     reg 0: row g,     cols 2t, 2t+1      reg 1: row g + 8, cols 2t, 2t+1
//     reg 2: row g,     cols 2t+8, 2t+9    reg 3: row g + 8, cols 2t+8, 2t+9
//   B (16x8, "col": k pairs packed): reg 0: k = 2t, 2t+1 of column g;  reg 1: k = 2t+8, 2t+9 of column g
//   C/D (16x8 f32): c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
//   ldmatrix: lanes 8j..8j+7 give the row addresses of 8x8 matrix j; register j of lane l receives
//     row l/4, elements 2(l%4) and 2(l%4)+1 of matrix j; with .trans, elements (2(l%4), l/4) and (2(l%4)+1, l/4).
#include "cuda_emu.h"

#include <vector>

namespace cria_emu {

namespace {

struct WarpExchange {
    uint32_t a[32][4];
    uint32_t b[32][2];
    const unsigned char* row[32];
};

WarpExchange g_x[32];  // one per warp of a block (at most 1024 threads)

float element(uint32_t reg, int half, bool bf16) {
    uint16_t bits = (uint16_t) (reg >> (16 * half));
    if (bf16) {
        return __uint_as_float(((uint32_t) bits) << 16);
    }
    return half_to_float(bits);
}

struct Copy {
    unsigned char* dst;
    const unsigned char* src;
    int bytes;
    int srcBytes;
    long group;  // -1 until committed
};

std::vector<std::vector<Copy>> g_queue;  // per thread of the running block
std::vector<long> g_groups;              // groups committed so far, per thread

void land(const Copy& c) {
    for (int i = 0; i < c.bytes; i++) {
        c.dst[i] = i < c.srcBytes ? c.src[i] : 0;
    }
}

}  // namespace

float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    uint32_t bits;
    if (e == 0) {
        float v = std::ldexp((float) m, -24);
        return sign ? -v : v;
    } else if (e == 31) {
        bits = sign | 0x7f800000u | (m << 13);
    } else {
        bits = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) {
        return (uint16_t) (sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    }
    if (ax >= 0x477ff000u) {  // 65520 and up round to infinity
        return (uint16_t) (sign | 0x7c00u);
    }
    if (ax >= 0x38800000u) {  // normal half
        ax += 0xfffu + ((ax >> 13) & 1u);
        return (uint16_t) (sign | ((ax - 0x38000000u) >> 13));
    }
    float a;
    std::memcpy(&a, &ax, 4);
    return (uint16_t) (sign | (uint32_t) std::nearbyint(a * 16777216.0f));  // subnormal: units of 2^-24
}


void mma_m16n8k16(float* d, const uint32_t* a, const uint32_t* b, bool bf16) {
    const int me = lane_id();
    WarpExchange& x = g_x[thread_linear() / 32];
    for (int i = 0; i < 4; i++) {
        x.a[me][i] = a[i];
    }
    x.b[me][0] = b[0];
    x.b[me][1] = b[1];
    warp_rendezvous();
    const int g = me / 4;
    const int t = me % 4;
    float out[4];
    for (int i = 0; i < 4; i++) {
        const int row = g + 8 * (i / 2);
        const int col = 2 * t + (i % 2);
        float s = 0.0f;
        for (int k = 0; k < 16; k++) {
            const int la = (row % 8) * 4 + (k % 8) / 2;
            const float av = element(x.a[la][row / 8 + 2 * (k / 8)], k % 2, bf16);
            const int lb = col * 4 + (k % 8) / 2;
            const float bv = element(x.b[lb][k / 8], k % 2, bf16);
            s += av * bv;  // f16 x f16 (and bf16 x bf16) products are exact in float
        }
        out[i] = d[i] + s;
    }
    warp_rendezvous();  // nobody refills the exchange before every lane has read it
    for (int i = 0; i < 4; i++) {
        d[i] = out[i];
    }
}

void ldmatrix(uint32_t* r, int count, bool trans, const void* row) {
    const int me = lane_id();
    WarpExchange& x = g_x[thread_linear() / 32];
    if (me < 8 * count && ((uintptr_t) row) % 16 != 0) {
        fail("ldmatrix row address %p of lane %d is not 16-byte aligned", row, me);
    }
    x.row[me] = static_cast<const unsigned char*>(row);
    warp_rendezvous();
    const int g = me / 4;
    const int t = me % 4;
    for (int j = 0; j < count; j++) {
        if (!trans) {
            const unsigned char* p = x.row[8 * j + g] + 4 * t;
            uint32_t v;
            std::memcpy(&v, p, 4);
            r[j] = v;
        } else {
            uint16_t lo;
            uint16_t hi;
            std::memcpy(&lo, x.row[8 * j + 2 * t] + 2 * g, 2);
            std::memcpy(&hi, x.row[8 * j + 2 * t + 1] + 2 * g, 2);
            r[j] = (uint32_t) lo | ((uint32_t) hi << 16);
        }
    }
    warp_rendezvous();
}

void async_block_start(unsigned threads) {
    g_queue.assign(threads, std::vector<Copy>());
    g_groups.assign(threads, 0);
}

void async_thread_exit(int linear) {
    for (const Copy& c : g_queue[(size_t) linear]) {
        land(c);  // a real copy completes eventually; nobody waited, so nobody may have read it
    }
    g_queue[(size_t) linear].clear();
}

void cp_async(void* dst, const void* src, int bytes, int srcBytes) {
    if (bytes != 4 && bytes != 8 && bytes != 16) {
        fail("cp.async of %d bytes (4, 8 or 16)", bytes);
    }
    if (((uintptr_t) dst) % (uintptr_t) bytes != 0 || ((uintptr_t) src) % (uintptr_t) bytes != 0) {
        fail("cp.async of %d bytes from %p to %p: both must be %d-byte aligned", bytes, src, dst, bytes);
    }
    if (srcBytes < 0 || srcBytes > bytes) {
        fail("cp.async source size %d outside 0..%d", srcBytes, bytes);
    }
    g_queue[(size_t) thread_linear()].push_back(
        Copy{static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), bytes, srcBytes, -1});
}

void cp_async_commit() {
    const int me = thread_linear();
    long id = ++g_groups[(size_t) me];
    for (Copy& c : g_queue[(size_t) me]) {
        if (c.group < 0) {
            c.group = id;
        }
    }
}

void cp_async_wait(int pending) {
    const int me = thread_linear();
    const long done = g_groups[(size_t) me] - pending;  // groups up to this one must have landed
    std::vector<Copy>& q = g_queue[(size_t) me];
    std::vector<Copy> rest;
    for (const Copy& c : q) {
        if (c.group >= 0 && c.group <= done) {
            land(c);
        } else {
            rest.push_back(c);
        }
    }
    q.swap(rest);
}

}  // namespace cria_emu
