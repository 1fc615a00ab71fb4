/* membw: the read bandwidth a few threads get from main memory, the ceiling for batch-1
 * generation on the CPU (every weight is read once per token). BENCHMARKS.md quotes it.
 *
 *   cc -O2 -march=native tools/membw.c -o /tmp/membw -lpthread && /tmp/membw 2
 *
 * Each thread streams its share of a 1 GiB buffer (far larger than any cache) four times with
 * 64-byte loads; the best of five passes is printed in GB/s (10^9 bytes per second). */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIZE (1L << 30)
#define REPS 4

static uint8_t *buf;
static int threads;
static volatile int64_t sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *stream(void *arg) {
    long id = (long) arg;
    long share = SIZE / threads;
    __m512i acc = _mm512_setzero_si512();
    for (int rep = 0; rep < REPS; rep++) {
        for (long i = id * share; i < (id + 1) * share; i += 64) {
            acc = _mm512_add_epi64(acc, _mm512_load_si512(buf + i));
        }
    }
    sink += _mm512_reduce_add_epi64(acc);
    return NULL;
}

int main(int argc, char **argv) {
    threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "membw: give a thread count from 1 to 256\n");
        return 1;
    }
    buf = aligned_alloc(64, SIZE);
    if (buf == NULL) {
        fprintf(stderr, "membw: cannot allocate 1 GiB\n");
        return 1;
    }
    memset(buf, 1, SIZE);
    pthread_t *t = calloc(threads, sizeof *t);
    double best = 0;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = now();
        for (long i = 0; i < threads; i++) {
            pthread_create(&t[i], NULL, stream, (void *) i);
        }
        for (int i = 0; i < threads; i++) {
            pthread_join(t[i], NULL);
        }
        double gbs = (double) SIZE * REPS / (now() - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    printf("%d thread%s: %.1f GB/s read\n", threads, threads == 1 ? "" : "s", best);
    return 0;
}
