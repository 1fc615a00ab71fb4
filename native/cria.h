/* Cria's CPU kernels, called from Java through the FFM API (cria.backend.cpu.NativeKernels).
 * Every entry point is plain C with pointer + size arguments; none allocates or keeps state. */
#ifndef CRIA_H
#define CRIA_H
#include <stdint.h>
#include <stddef.h>

/* ggml type ids (cria.gguf.GgmlType) */
enum {
    T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
    T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_IQ4_NL = 20, T_IQ4_XS = 23, T_BF16 = 30
};

/* 1 when this CPU (and its operating system) can run the instructions the library was built
 * for; compiled for the architecture's baseline, so safe to call first on any CPU. */
int32_t cria_cpu_ok(void);

/* Bit mask of what this build and this CPU can do (1: AVX-512 VNNI kernels, 2: AMX). */
int32_t cria_features(void);

/* Bytes of one quantized activation row of k values (k a multiple of 32), 64-byte rounded. */
int64_t cria_act_row_bytes(int32_t k);

/* Quantizes rows [r0, r1) of k floats (row stride xs floats) into the same rows of act (stride as bytes). */
void cria_quantize_act(const float *x, int64_t xs, int32_t r0, int32_t r1, int32_t k, uint8_t *act, int64_t as);

/* True when weights of this type run here (quantized types need cria_quantize_act'd inputs). */
int32_t cria_supports(int32_t type);

/* Bytes of the per-thread scratch cria_matmul needs for rows of k values and n inputs. */
int64_t cria_matmul_scratch_bytes(int32_t k, int32_t n);

/*
 * out[i * os + r] = W[r] . x[i] for weight rows r in [r0, r1) and inputs i in [0, n).
 * W: rows of k values of `type`, wrb bytes apart; for quantized types k is a multiple of 64 for the
 * 32-value block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) and of 256 for the K-quants and IQ4_XS
 * (returns -1 otherwise). For quantized types x is activation rows
 * (cria_quantize_act, xs bytes apart); for F32/F16/BF16 x is float rows (xs floats apart).
 * scratch: cria_matmul_scratch_bytes(k, n) bytes owned by the calling thread.
 * Returns 0, or -1 for a type this build cannot run.
 */
int32_t cria_matmul(int32_t type, const uint8_t *w, int64_t wrb, int32_t r0, int32_t r1, int32_t k,
                    const void *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch);

/*
 * Packed quantized weights: the 16-row panels the matrix product builds from a weight's rows, laid
 * out once so that a product reads them in one stream instead of gathering 16 rows (decode reads
 * every weight once per token, so the gather was most of its time). A packed weight gives the
 * same results, bit for bit, as its rows. cria_packed_bytes: bytes of the packed form of a weight
 * of `rows` rows of k values (its full panels, rows / 16), or 0 when this build cannot pack the
 * type. cria_pack: packs panels [p0, p1) (rows 16 p0 .. 16 p1) into packed (64-byte aligned, of
 * cria_packed_bytes). cria_matmul_packed: cria_matmul with the full panels read from packed and the
 * rest from w; r0 a multiple of 16. Both return 0, or -1 for what this build cannot run.
 */
int64_t cria_packed_bytes(int32_t type, int32_t rows, int32_t k);
int32_t cria_pack(int32_t type, const uint8_t *w, int64_t wrb, int32_t p0, int32_t p1, int32_t k, uint8_t *packed);
int32_t cria_matmul_packed(int32_t type, const uint8_t *w, int64_t wrb, const uint8_t *packed, int32_t r0, int32_t r1, int32_t k,
                           const uint8_t *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch);

/* Fresh zeroed memory for a packed weight, asked to be backed by huge pages (Linux transparent
 * huge pages in "madvise" mode) before anything touches it: a packed weight is read as one long
 * stream per token, and with 4 KiB pages every page is a TLB miss and a restart of the hardware
 * prefetcher (one thread streamed 16-27 GB/s from 4 KiB pages, 31-36 from huge ones, in the same
 * run). NULL when the memory cannot be had. cria_unmap gives it back. */
uint8_t *cria_map_huge(int64_t bytes);
void cria_unmap(uint8_t *p, int64_t bytes);

/* Bytes of scratch cria_attend needs for len attended positions. */
int64_t cria_attend_scratch_bytes(int32_t len, int32_t group, int32_t head_dim);

/* Attention of one query row's group of heads over positions first .. len - 1 of a paged cache, scores
 * scaled and soft-capped when softcap > 0 (see attention.c). */
void cria_attend(const uint8_t *q, int64_t q_off, uint8_t *out, int64_t out_off, int32_t group, int32_t head_dim,
                 const uint8_t *keys, const uint8_t *values, int64_t kv_off, int32_t f16, const int32_t *table, int64_t pages_off,
                 int32_t page_size, int64_t page_bytes, int64_t slot_bytes, int32_t first, int32_t len, float scale, float softcap,
                 float *scratch);

/* Row-wise ops (eltwise.c). Each takes whole buffers and the rows (or elements) [r0, r1) to do,
 * so that callers splitting rows over threads slice nothing. */
void cria_rmsnorm(const float *x, int64_t xs, float *out, int64_t os, int32_t r0, int32_t r1, int32_t d, const float *w, float eps);
void cria_swiglu(float *a, const float *b, int64_t from, int64_t to);
void cria_geglu(float *a, const float *b, int64_t from, int64_t to);
void cria_add(float *x, const float *y, int64_t count);
void cria_rope(float *x, int64_t xs, int32_t r0, int32_t r1, int32_t heads, int32_t head_dim, int32_t dims, int32_t neox,
               const int32_t *pos, const double *inv, float *cs);
void cria_store_row(const uint8_t *src, int64_t src_off, uint8_t *dst, int64_t dst_off, int32_t d, int32_t f16);

#endif
