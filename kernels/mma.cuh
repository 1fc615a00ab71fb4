// Tensor-core and asynchronous-copy helpers (sm_80+): mma.sync m16n8k16, ldmatrix, cp.async, L2 prefetch.
// Inline PTX on the device; with -DCRIA_EMU the test emulator implements each one (java/src/test/cuda-emu/emu_mma.cpp).
#pragma once
#include "common.cuh"

// Fragment layouts (PTX ISA, mma.m16n8k16 with .f16/.bf16 operands), g = lane / 4, t = lane % 4:
//   A 16x16 row-major, uint32_t a[4] of two 16-bit values (low half = lower column):
//     a[0] (g, 2t..2t+1)  a[1] (g+8, 2t..2t+1)  a[2] (g, 2t+8..2t+9)  a[3] (g+8, 2t+8..2t+9)
//   B 16x8, uint32_t b[2]: b[0] k = 2t..2t+1 of column g, b[1] k = 2t+8..2t+9 of column g
//   C/D 16x8 f32, float c[4]: (g, 2t) (g, 2t+1) (g+8, 2t) (g+8, 2t+1)
// ldmatrix x4 with lane l pointing at row (l % 16), column 8 (l / 16) of a 16x16 row-major tile gives A's
// fragment; with lane l pointing at row 8 (l / 16) + l % 8, column 8 ((l / 8) % 2) of an [n][k] tile it
// gives B fragments of two n8 tiles (regs 0, 1 for the first; 2, 3 for the second). .trans transposes
// each 8x8 matrix, which turns a [k][n] tile into B fragments.

/** d += a b with f16 operands and f32 accumulation (one warp, all lanes). */
__device__ __forceinline__ void mma_f16(float* d, const uint32_t* a, const uint32_t* b) {
#ifdef CRIA_EMU
    cria_emu::mma_m16n8k16(d, a, b, false);
#else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

/** d += a b with bf16 operands and f32 accumulation (one warp, all lanes). */
__device__ __forceinline__ void mma_bf16(float* d, const uint32_t* a, const uint32_t* b) {
#ifdef CRIA_EMU
    cria_emu::mma_m16n8k16(d, a, b, true);
#else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

#ifndef CRIA_EMU
__device__ __forceinline__ unsigned smem_addr(const void* p) {
    return (unsigned) __cvta_generic_to_shared(p);
}
#endif

/** Four 8x8 b16 matrices from shared memory (row: this lane's row address, 16-byte aligned). */
__device__ __forceinline__ void ldsm_x4(uint32_t* r, const void* row) {
#ifdef CRIA_EMU
    cria_emu::ldmatrix(r, 4, false, row);
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(row))
                 : "memory");
#endif
}

/** As ldsm_x4, each matrix transposed. */
__device__ __forceinline__ void ldsm_x4_trans(uint32_t* r, const void* row) {
#ifdef CRIA_EMU
    cria_emu::ldmatrix(r, 4, true, row);
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(row))
                 : "memory");
#endif
}

/** Queues a 16-byte copy global -> shared; with valid false the 16 bytes become zeros (src is not read). */
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid = true) {
#ifdef CRIA_EMU
    cria_emu::cp_async(dst, src, 16, valid ? 16 : 0);
#else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0)
                 : "memory");
#endif
}

/** Closes the group of copies queued since the last commit. */
__device__ __forceinline__ void cp_async_commit() {
#ifdef CRIA_EMU
    cria_emu::cp_async_commit();
#else
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

/** Waits until at most N of this thread's committed groups are still in flight. */
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#ifdef CRIA_EMU
    cria_emu::cp_async_wait(N);
#else
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}

/** Hints that the 128-byte line at p will be read soon (into L2); no effect in the emulator. */
__device__ __forceinline__ void prefetch_l2(const void* p) {
#ifndef CRIA_EMU
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
#else
    (void) p;
#endif
}

/** Two floats as f16 bits in one word (lo in the low half), round to nearest even. */
__device__ __forceinline__ uint32_t pack_h2(float lo, float hi) {
#ifdef CRIA_EMU
    return (uint32_t) f2h(lo) | ((uint32_t) f2h(hi) << 16);
#else
    __half2 h = __floats2half2_rn(lo, hi);  // one cvt.rn.f16x2.f32
    return *reinterpret_cast<uint32_t*>(&h);
#endif
}
