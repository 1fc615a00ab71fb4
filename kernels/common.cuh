// Shared device helpers of every kernel family: 16-bit float conversions, aligned loads, warp and block reductions.
// Compiles with nvcc for the device and, with -DCRIA_EMU, as plain host C++ for the test emulator (cuda_emu.h).
#pragma once

#ifdef CRIA_EMU
#include "cuda_emu.h"
#else
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>
#endif

// Dynamic shared memory (the launch's sharedBytes), as a T* named `name`, 128-byte aligned.
#ifdef CRIA_EMU
#define CRIA_DYN_SMEM(T, name) T* name = reinterpret_cast<T*>(cria_emu::dynamic_shared())
#else
#define CRIA_DYN_SMEM(T, name)                                   \
    extern __shared__ __align__(128) unsigned char cria_dyn_smem[]; \
    T* name = reinterpret_cast<T*>(cria_dyn_smem)
#endif

// Every block size the launchers use is a multiple of the warp size; reductions rely on it.
#define CRIA_WARP 32
#define CRIA_FULL_MASK 0xffffffffu

// ---------------------------------------------------------------------------------------------
// Small integer helpers (CUDA's min/max overloads do not exist in host C++).
__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------------------------
// 16-bit floats as raw bits: ggml blocks and the KV cache store uint16_t, converted here only.

/** IEEE half bits to float (exact). */
__device__ __forceinline__ float h2f(uint16_t h) {
#ifdef CRIA_EMU
    return cria_emu::half_to_float(h);
#else
    return __half2float(__ushort_as_half(h));
#endif
}

/** float to IEEE half bits, round to nearest even (what Java's Float.floatToFloat16 does). */
__device__ __forceinline__ uint16_t f2h(float f) {
#ifdef CRIA_EMU
    return cria_emu::float_to_half(f);
#else
    return __half_as_ushort(__float2half_rn(f));
#endif
}

/** bfloat16 bits to float (exact: the top half of a float). */
__device__ __forceinline__ float bf2f(uint16_t b) {
    return __uint_as_float(((uint32_t) b) << 16);
}

// ---------------------------------------------------------------------------------------------
// Loads. Weight blocks are only as aligned as their size allows (Q4_0 blocks are 18 bytes, so
// 2-byte aligned); LoadA<N, A> reads N bytes at an address aligned to A with the widest loads
// that alignment permits, into 32-bit words (byte j of the run is byte j % 4 of word j / 4).

#ifdef CRIA_EMU
#define CRIA_CHECK_ALIGN(p, a) cria_emu::check_align((const void*) (p), (a), __FILE__, __LINE__)
#else
#define CRIA_CHECK_ALIGN(p, a) ((void) 0)
#endif

template <int N, int A>
__device__ __forceinline__ void load_words(const uint8_t* __restrict__ p, uint32_t* w) {
    static_assert(N % 4 == 0, "load_words reads whole words");
    CRIA_CHECK_ALIGN(p, A);
    if constexpr (A >= 16 && N % 16 == 0) {
#pragma unroll
        for (int k = 0; k < N / 16; k++) {
            uint4 v = reinterpret_cast<const uint4*>(p)[k];
            w[4 * k] = v.x;
            w[4 * k + 1] = v.y;
            w[4 * k + 2] = v.z;
            w[4 * k + 3] = v.w;
        }
    } else if constexpr (A >= 8 && N % 8 == 0) {
#pragma unroll
        for (int k = 0; k < N / 8; k++) {
            uint2 v = reinterpret_cast<const uint2*>(p)[k];
            w[2 * k] = v.x;
            w[2 * k + 1] = v.y;
        }
    } else if constexpr (A >= 4) {
#pragma unroll
        for (int k = 0; k < N / 4; k++) {
            w[k] = reinterpret_cast<const uint32_t*>(p)[k];
        }
    } else if constexpr (A >= 2) {
        const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
#pragma unroll
        for (int k = 0; k < N / 4; k++) {
            w[k] = (uint32_t) h[2 * k] | ((uint32_t) h[2 * k + 1] << 16);
        }
    } else {
#pragma unroll
        for (int k = 0; k < N / 4; k++) {
            w[k] = (uint32_t) p[4 * k] | ((uint32_t) p[4 * k + 1] << 8) | ((uint32_t) p[4 * k + 2] << 16)
                 | ((uint32_t) p[4 * k + 3] << 24);
        }
    }
}

/** Byte j of a run loaded by load_words (j a compile-time constant after unrolling). */
__device__ __forceinline__ uint32_t byte_at(const uint32_t* w, int j) {
    return (w[j >> 2] >> (8 * (j & 3))) & 0xffu;
}

/** A little-endian uint16 at a 2-byte-aligned address. */
__device__ __forceinline__ uint16_t ld_u16(const uint8_t* p) {
    CRIA_CHECK_ALIGN(p, 2);
    return *reinterpret_cast<const uint16_t*>(p);
}

/** A little-endian uint32 at a 2-byte-aligned address (Q5_0's qh sits at offset 2). */
__device__ __forceinline__ uint32_t ld_u32_a2(const uint8_t* p) {
    return (uint32_t) ld_u16(p) | ((uint32_t) ld_u16(p + 2) << 16);
}

/** Eight floats at a 16-byte-aligned address. */
__device__ __forceinline__ void load_f8(const float* __restrict__ p, float* v) {
    CRIA_CHECK_ALIGN(p, 16);
    float4 a = reinterpret_cast<const float4*>(p)[0];
    float4 b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}

/** Stores four floats at a 16-byte-aligned address. */
__device__ __forceinline__ void store_f4(float* p, float a, float b, float c, float d) {
    CRIA_CHECK_ALIGN(p, 16);
    reinterpret_cast<float4*>(p)[0] = make_float4(a, b, c, d);
}

// ---------------------------------------------------------------------------------------------
// Reductions. Every lane of the warp must take part (full mask).

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = CRIA_WARP / 2; o > 0; o >>= 1) {
        v += __shfl_xor_sync(CRIA_FULL_MASK, v, o);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = CRIA_WARP / 2; o > 0; o >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(CRIA_FULL_MASK, v, o));
    }
    return v;
}

/**
 * Sum over the whole block, returned to every thread. {@code red} is shared scratch of at least
 * 32 floats; the leading barrier lets callers reuse it back to back.
 */
__device__ __forceinline__ float block_sum(float v, float* red) {
    const int lane = threadIdx.x % CRIA_WARP;
    const int warp = threadIdx.x / CRIA_WARP;
    const int warps = blockDim.x / CRIA_WARP;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) {
        red[warp] = v;
    }
    __syncthreads();
    float t = lane < warps ? red[lane] : 0.0f;
    return warp_sum(t);
}

/** Maximum over the whole block, returned to every thread (same contract as block_sum). */
__device__ __forceinline__ float block_max(float v, float* red) {
    const int lane = threadIdx.x % CRIA_WARP;
    const int warp = threadIdx.x / CRIA_WARP;
    const int warps = blockDim.x / CRIA_WARP;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) {
        red[warp] = v;
    }
    __syncthreads();
    float t = lane < warps ? red[lane] : -INFINITY;
    return warp_max(t);
}
