/* The matrix-product entry points of cria.h: what this build runs, the scratch it needs, and the
 * dispatch of each call to its family (matmul_quant.c for quantized weights, matmul_float.c for
 * F32/F16/BF16). The families share matmul.h. */
#include "cria.h"
#include "matmul.h"
#include "unpack.h"
#include <sys/mman.h>

int32_t cria_features(void) {
    return CRIA_VNNI ? 1 : 0;
}

int32_t cria_supports(int32_t type) {
    kind k;
    return type == T_F32 || type == T_F16 || type == T_BF16 || kind_of(type, &k);
}

int64_t cria_matmul_scratch_bytes(int32_t k, int32_t n) {
    int64_t quant = matmul_quant_scratch(n);
    int64_t flt = matmul_float_scratch(k, n);
    return (quant > flt ? quant : flt) + 512;
}

int32_t cria_matmul(int32_t type, const uint8_t *w, int64_t wrb, int32_t r0, int32_t r1, int32_t k,
                    const void *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch) {
    if (type == T_F32 || type == T_F16 || type == T_BF16) {
        return matmul_float(type, w, wrb, r0, r1, k, (const float *) x, xs, n, out, os, scratch);
    }
    return matmul_quant(type, w, wrb, 0, r0, r1, k, (const uint8_t *) x, xs, n, out, os, scratch);
}

int64_t cria_packed_bytes(int32_t type, int32_t rows, int32_t k) {
    return matmul_quant_packed_bytes(type, rows, k);
}

int32_t cria_pack(int32_t type, const uint8_t *w, int64_t wrb, int32_t p0, int32_t p1, int32_t k, uint8_t *packed) {
    return matmul_quant_pack(type, w, wrb, p0, p1, k, packed);
}

int32_t cria_matmul_packed(int32_t type, const uint8_t *w, int64_t wrb, const uint8_t *packed, int32_t r0, int32_t r1, int32_t k,
                           const uint8_t *x, int64_t xs, int32_t n, float *out, int64_t os, uint8_t *scratch) {
    return matmul_quant(type, w, wrb, packed, r0, r1, k, x, xs, n, out, os, scratch);
}

uint8_t *cria_map_huge(int64_t bytes) {
    if (bytes <= 0) {
        return 0;
    }
    void *p = mmap(0, (size_t) bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return 0;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, (size_t) bytes, MADV_HUGEPAGE); /* a hint: 4 KiB pages where it is not taken */
#endif
    return (uint8_t *) p;
}

void cria_unmap(uint8_t *p, int64_t bytes) {
    if (p != 0 && bytes > 0) {
        munmap(p, (size_t) bytes);
    }
}
