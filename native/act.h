/* The layout of a quantized activation row (internal to the native kernels). */
#ifndef CRIA_ACT_H
#define CRIA_ACT_H
#include <stdint.h>

/*
 * A row of k values: qs[k] int8 in groups of 4 values sharing one scale, then each group's
 * scale (dl[k/4]: a 16-lane vector of VNNI dot products multiplies by it directly) and minus its sum (ns4[k/4], the correction for kernels that dot unsigned weights
 * with an offset), then per 16 values scale * sum (xs16[k/16], for the weights' min terms).
 */
typedef struct {
    int8_t *qs;
    float *dl;
    int32_t *ns4;
    float *xs16;
} act_row;

static inline act_row act_at(uint8_t *base, int32_t k) {
    act_row a;
    a.qs = (int8_t *) base;
    a.dl = (float *) (base + k);
    a.ns4 = (int32_t *) (base + 2 * (int64_t) k);
    a.xs16 = (float *) (base + 3 * (int64_t) k);
    return a;
}

#endif
