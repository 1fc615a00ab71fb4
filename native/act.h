/* The layout of a quantized activation row (internal to the native kernels). */
#ifndef CRIA_ACT_H
#define CRIA_ACT_H
#include <stdint.h>

/* Values sharing one activation scale: one int32 dot per 16 values becomes float once. */
#define AB 16

/*
 * A row of k values: qs[k] int8 in blocks of AB values sharing one scale, then each block's
 * scale (d[k/AB]) and its scale times its sum (xs[k/AB], for the weights' offsets and mins).
 */
typedef struct {
    int8_t *qs;
    float *d;
    float *xs;
} act_row;

static inline act_row act_at(uint8_t *base, int32_t k) {
    act_row a;
    a.qs = (int8_t *) base;
    a.d = (float *) (base + k);
    a.xs = (float *) (base + k + 4 * (int64_t) (k / AB));
    return a;
}

#endif
