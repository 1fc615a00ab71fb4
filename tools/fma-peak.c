/* fma-peak: the single-precision fused multiply-add rate of this CPU with 512-bit vectors, the
 * ceiling for the training step's matrix products (BENCHMARKS.md reports the step against it).
 *
 *   tools/fma-peak            (compiles this into /tmp with gcc -O2 -march=x86-64-v4 and runs it)
 *
 * Each thread runs CHAINS independent FMA chains held in registers (enough to cover the FMA
 * latency on every port), so nothing touches memory; 1 and then 2 threads (or the counts given
 * as arguments), best of five runs each, printed in GFLOP/s (2 flops per lane per FMA). */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 16
#define ITERS 20000000L

static volatile float sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* One FMA per chain; the empty asm keeps the compiler from merging, hoisting or spilling the chains. */
#define STEP(x) x = _mm512_fmadd_ps(x, a, b)
#define KEEP4(p, q, r, s) __asm__ volatile("" : "+v"(p), "+v"(q), "+v"(r), "+v"(s))

static void *run(void *arg) {
    (void) arg;
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(0), c1 = _mm512_set1_ps(1), c2 = _mm512_set1_ps(2), c3 = _mm512_set1_ps(3);
    __m512 c4 = _mm512_set1_ps(4), c5 = _mm512_set1_ps(5), c6 = _mm512_set1_ps(6), c7 = _mm512_set1_ps(7);
    __m512 c8 = _mm512_set1_ps(8), c9 = _mm512_set1_ps(9), c10 = _mm512_set1_ps(10), c11 = _mm512_set1_ps(11);
    __m512 c12 = _mm512_set1_ps(12), c13 = _mm512_set1_ps(13), c14 = _mm512_set1_ps(14), c15 = _mm512_set1_ps(15);
    for (long i = 0; i < ITERS; i++) {
        STEP(c0); STEP(c1); STEP(c2); STEP(c3); STEP(c4); STEP(c5); STEP(c6); STEP(c7);
        STEP(c8); STEP(c9); STEP(c10); STEP(c11); STEP(c12); STEP(c13); STEP(c14); STEP(c15);
        KEEP4(c0, c1, c2, c3);
        KEEP4(c4, c5, c6, c7);
        KEEP4(c8, c9, c10, c11);
        KEEP4(c12, c13, c14, c15);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                       _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
    sink = _mm512_reduce_add_ps(s);
    return NULL;
}

static double measure(int threads) {
    pthread_t t[64];
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        for (int i = 0; i < threads; i++) {
            pthread_create(&t[i], NULL, run, NULL);
        }
        for (int i = 0; i < threads; i++) {
            pthread_join(t[i], NULL);
        }
        double s = now() - t0;
        double gf = (double) threads * ITERS * CHAINS * 16 * 2 / s / 1e9;
        best = gf > best ? gf : best;
    }
    return best;
}

int main(int argc, char **argv) {
    int counts[8] = {1, 2}, nc = 2;
    if (argc > 1) {
        nc = 0;
        for (int i = 1; i < argc && nc < 8; i++) {
            counts[nc++] = atoi(argv[i]);
        }
    }
    for (int i = 0; i < nc; i++) {
        int th = counts[i] < 1 ? 1 : counts[i] > 64 ? 64 : counts[i];
        printf("%d thread%s: %.1f GFLOP/s (fp32 FMA, 512-bit, best of 5)\n", th, th == 1 ? "" : "s", measure(th));
    }
    return 0;
}
