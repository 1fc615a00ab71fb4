/* Activation quantization: float rows to 8-bit blocks with what the dot kernels need precomputed. */
#include "cria.h"
#include <math.h>
#include <string.h>
#include "act.h"

int64_t cria_act_row_bytes(int32_t k) {
    int64_t b = (int64_t) k + 8 * (int64_t) (k / AB);
    return (b + 63) & ~(int64_t) 63;
}

void cria_quantize_act(const float *x, int64_t xs, int32_t r0, int32_t r1, int32_t k, uint8_t *act, int64_t as) {
    for (int32_t i = r0; i < r1; i++) {
        const float *row = x + i * xs;
        act_row a = act_at(act + i * as, k);
        for (int32_t b = 0; b < k / AB; b++) {
            const float *v = row + AB * b;
            float amax = 0;
            for (int j = 0; j < AB; j++) {
                float f = fabsf(v[j]);
                amax = f > amax ? f : amax;
            }
            float d = amax / 127.0f;
            float id = d > 0 ? 1.0f / d : 0.0f;
            int sum = 0;
            for (int j = 0; j < AB; j++) {
                int q = (int) nearbyintf(v[j] * id);
                a.qs[AB * b + j] = (int8_t) q;
                sum += q;
            }
            a.d[b] = d;
            a.xs[b] = d * (float) sum;
        }
    }
}
