// Test-only CUDA emulation: lets kernels/*.cu compile as host C++ (-DCRIA_EMU) and run each GPU thread as a fiber.
// Covers what Cria's kernels use: thread/block indices, __syncthreads, warp shuffles, shared memory, vector types.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <math.h>  // glibc declares sincos and sincosf (g++ defines _GNU_SOURCE)

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
// Blocks run one after another on one OS thread, so function-local statics are exactly
// "one copy per block" for as long as the block runs.
#define __shared__ static
#define __constant__
#define __align__(n) alignas(n)

struct uint3e { unsigned x, y, z; };
struct uint2 { unsigned x, y; };
struct uint4 { unsigned x, y, z, w; };
struct int2 { int x, y; };
struct int4 { int x, y, z, w; };
struct float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
static inline float4 make_float4(float a, float b, float c, float d) { return float4{a, b, c, d}; }
static inline float2 make_float2(float a, float b) { return float2{a, b}; }
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }

namespace cria_emu {

extern uint3e g_block_idx;
extern uint3e g_block_dim;
extern uint3e g_grid_dim;
extern uint3e* g_thread_idx;  // the running fiber's index

void sync_threads();
int sync_threads_count(int pred);
void sync_warp();
uint64_t shfl_raw(uint64_t v, int src_lane, int mode, int width);  // mode 0 idx, 1 xor, 2 down, 3 up
unsigned ballot(int pred);
void* dynamic_shared();
void check_align(const void* p, int a, const char* file, int line);
[[noreturn]] void fail(const char* fmt, ...);

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

// Warp internals for emu_mma.cpp (tensor-core and asynchronous-copy emulation).
int lane_id();
int thread_linear();
void warp_rendezvous();  // every lane of the running fiber's warp meets here
void async_block_start(unsigned threads);
void async_thread_exit(int linear);

// Tensor cores: mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32 (d += a b, PTX fragment
// layouts), ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16. Warp-collective, like the real ones.
void mma_m16n8k16(float* d, const uint32_t* a, const uint32_t* b, bool bf16);
void ldmatrix(uint32_t* r, int count, bool trans, const void* row);
// cp.async.cg.shared.global of 16 bytes (src_bytes < 16 zero-fills the rest), commit_group, wait_group.
// Copies land as late as the PTX rules allow (at the wait that covers them), so a read without a wait sees stale bytes.
void cp_async(void* dst, const void* src, int bytes, int src_bytes);
void cp_async_commit();
void cp_async_wait(int pending);

template <class T>
inline T shfl(T v, int lane, int mode, int width) {
    static_assert(sizeof(T) <= 8, "shuffle of a value wider than 8 bytes");
    uint64_t raw = 0;
    std::memcpy(&raw, &v, sizeof(T));
    raw = shfl_raw(raw, lane, mode, width);
    T out;
    std::memcpy(&out, &raw, sizeof(T));
    return out;
}

}  // namespace cria_emu

#define threadIdx (*cria_emu::g_thread_idx)
#define blockIdx (cria_emu::g_block_idx)
#define blockDim (cria_emu::g_block_dim)
#define gridDim (cria_emu::g_grid_dim)
#define warpSize 32

static inline void __syncthreads() { cria_emu::sync_threads(); }
static inline int __syncthreads_count(int p) { return cria_emu::sync_threads_count(p); }
static inline int __syncthreads_or(int p) { return cria_emu::sync_threads_count(p) != 0; }
static inline int __syncthreads_and(int p) { return cria_emu::sync_threads_count(!p) == 0; }
static inline void __syncwarp(unsigned = 0xffffffffu) { cria_emu::sync_warp(); }

template <class T> inline T __shfl_sync(unsigned, T v, int lane, int width = 32) { return cria_emu::shfl(v, lane, 0, width); }
template <class T> inline T __shfl_xor_sync(unsigned, T v, int m, int width = 32) { return cria_emu::shfl(v, m, 1, width); }
template <class T> inline T __shfl_down_sync(unsigned, T v, unsigned d, int width = 32) { return cria_emu::shfl(v, (int) d, 2, width); }
template <class T> inline T __shfl_up_sync(unsigned, T v, unsigned d, int width = 32) { return cria_emu::shfl(v, (int) d, 3, width); }
static inline unsigned __ballot_sync(unsigned, int p) { return cria_emu::ballot(p); }
static inline int __any_sync(unsigned, int p) { return cria_emu::ballot(p) != 0; }
static inline int __all_sync(unsigned, int p) { return cria_emu::ballot(!p) == 0; }

// Fibers never preempt each other, so plain read-modify-write is atomic here.
template <class T> inline T atomicAdd(T* p, T v) { T o = *p; *p = o + v; return o; }
template <class T> inline T atomicMax(T* p, T v) { T o = *p; if (v > o) *p = v; return o; }
template <class T> inline T atomicMin(T* p, T v) { T o = *p; if (v < o) *p = v; return o; }

template <class T> inline T __ldg(const T* p) { return *p; }
static inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
static inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
static inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
static inline double __longlong_as_double(long long u) { double f; std::memcpy(&f, &u, 8); return f; }
static inline long long __double_as_longlong(double f) { long long u; std::memcpy(&u, &f, 8); return u; }
static inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float x) { return x < 0 ? 0 : (x > 1 ? 1 : x); }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __ffs(unsigned x) { return __builtin_ffs((int) x); }
static inline int __clz(unsigned x) { return x == 0 ? 32 : __builtin_clz(x); }
