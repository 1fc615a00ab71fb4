/* Activation quantization: float rows to 8-bit blocks of 32 with what the dot kernels need precomputed. */
#include "cria.h"
#include <math.h>
#include <string.h>
#include "act.h"

/* Values sharing one scale. The dot kernels scale each 4-value lane separately anyway, so a
 * scale per 4 values costs nothing there and cuts the rounding error of the activations about
 * twofold against blocks of 32 (measured on the reference models). */
#define SB 4

int64_t cria_act_row_bytes(int32_t k) {
    int64_t b = 3 * (int64_t) k + k / 4;
    return (b + 63) & ~(int64_t) 63;
}

void cria_quantize_act(const float *x, int64_t xs, int32_t n, int32_t k, uint8_t *act, int64_t as) {
    for (int32_t i = 0; i < n; i++) {
        const float *row = x + i * xs;
        act_row a = act_at(act + i * as, k);
        for (int32_t b = 0; b < k / SB; b++) {
            const float *v = row + SB * b;
            float amax = 0;
            for (int j = 0; j < SB; j++) {
                float f = fabsf(v[j]);
                amax = f > amax ? f : amax;
            }
            float d = amax / 127.0f;
            float id = d > 0 ? 1.0f / d : 0.0f;
            for (int j = 0; j < SB; j += 4) {
                int s4 = 0;
                for (int t = 0; t < 4; t++) {
                    int q = (int) nearbyintf(v[j + t] * id);
                    a.qs[SB * b + j + t] = (int8_t) q;
                    s4 += q;
                }
                a.ns4[(SB * b + j) / 4] = -s4;
                a.dl[(SB * b + j) / 4] = d;
            }
        }
        for (int32_t s = 0; s < k / 16; s++) {
            float acc = 0;
            for (int j = 0; j < 4; j++) {
                acc += a.dl[4 * s + j] * (float) -a.ns4[4 * s + j];
            }
            a.xs16[s] = acc;
        }
    }
}
