/* packed-stream: how fast the library's decode product (one input) reads a packed quantized weight,
 * in GB/s of packed bytes, from cache or from memory. BENCHMARKS.md quotes it ("the harness").
 *
 *   cc -O3 -march=x86-64-v4 -mavx512vnni -ffp-contract=off -Inative tools/packed-stream.c \
 *       native/[a-z]*.c -o /tmp/packed-stream -lm -lpthread
 *   /tmp/packed-stream Q4_K 8192 2048 48 3 2    # 48 copies (880 MB, past any L3), 2 threads
 *   /tmp/packed-stream Q4_K 512 2048 1 2000 1   # one small copy: the product's speed in cache
 *   CRIA_PREFETCH=l1 /tmp/packed-stream ...     # another prefetch mode (native/cpu.c)
 *
 * Arguments: TYPE (Q4_0, Q5_0, Q4_K or Q6_K), ROWS (a multiple of 16), K (a multiple of 256),
 * COPIES of the packed weight (read one after the other, as a model's layers are), REPS (the best
 * is printed), THREADS (one: the calling thread; more: each takes a contiguous run of every copy's
 * rows, as the CPU backend does, and all meet at a barrier after each copy; starting them is timed
 * too, so give them many copies). Weights are random bytes with small positive scales;
 * the printed checksum of the outputs lets two builds be compared for the same results. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cria.h"

typedef struct {
    int32_t type, rows, k, copies, threads;
    int64_t wrb, act_bytes;
    uint8_t *w, **packed, *act;
    float *out;
    pthread_barrier_t barrier;
} job;

typedef struct {
    job *j;
    int index;
} part;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *run_part(void *arg) {
    part *p = arg;
    job *j = p->j;
    int per = j->rows / 16 / j->threads * 16;
    int r0 = p->index * per, r1 = p->index == j->threads - 1 ? j->rows : r0 + per;
    uint8_t *scratch = aligned_alloc(64, (size_t) ((cria_matmul_scratch_bytes(j->k, 1) + 127) & ~63));
    for (int c = 0; c < j->copies; c++) {
        cria_matmul_packed(j->type, j->w, j->wrb, j->packed[c], r0, r1, j->k, j->act, j->act_bytes, 1, j->out, j->rows, scratch);
        pthread_barrier_wait(&j->barrier);
    }
    free(scratch);
    return NULL;
}

static long arg(char **argv, int i, long lo, long hi, const char *what) {
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end != 0 || v < lo || v > hi) {
        fprintf(stderr, "packed-stream: %s must be %ld to %ld, got '%s'\n", what, lo, hi, argv[i]);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: packed-stream TYPE(Q4_0|Q5_0|Q4_K|Q6_K) ROWS K COPIES REPS THREADS\n");
        return 2;
    }
    job j;
    int block, bytes, scale_at; /* values and bytes per block, offset of its f16 scale (Q4_K: d, dmin) */
    if (strcmp(argv[1], "Q4_0") == 0) {
        j.type = T_Q4_0, block = 32, bytes = 18, scale_at = 0;
    } else if (strcmp(argv[1], "Q5_0") == 0) {
        j.type = T_Q5_0, block = 32, bytes = 22, scale_at = 0;
    } else if (strcmp(argv[1], "Q4_K") == 0) {
        j.type = T_Q4_K, block = 256, bytes = 144, scale_at = 0;
    } else if (strcmp(argv[1], "Q6_K") == 0) {
        j.type = T_Q6_K, block = 256, bytes = 210, scale_at = 208;
    } else {
        fprintf(stderr, "packed-stream: TYPE must be Q4_0, Q5_0, Q4_K or Q6_K, got '%s'\n", argv[1]);
        return 2;
    }
    j.rows = (int32_t) arg(argv, 2, 16, 1 << 20, "ROWS");
    j.k = (int32_t) arg(argv, 3, 256, 1 << 16, "K");
    j.copies = (int32_t) arg(argv, 4, 1, 4096, "COPIES");
    int reps = (int) arg(argv, 5, 1, 1000000, "REPS");
    j.threads = (int32_t) arg(argv, 6, 1, 64, "THREADS");
    if (j.rows % 16 != 0 || j.k % 256 != 0 || j.rows / 16 < j.threads) {
        fprintf(stderr, "packed-stream: ROWS must be a multiple of 16 (at least 16 per thread), K of 256\n");
        return 2;
    }
    if (!cria_cpu_ok()) {
        fprintf(stderr, "packed-stream: this CPU lacks what the library is built for (AVX-512 VNNI)\n");
        return 1;
    }
    j.wrb = (int64_t) j.k / block * bytes;
    j.w = malloc((size_t) (j.wrb * j.rows));
    if (j.w == NULL) {
        fprintf(stderr, "packed-stream: no memory for a %lld-byte weight: ask for fewer ROWS or a smaller K\n",
                (long long) (j.wrb * j.rows));
        return 1;
    }
    srand(1);
    for (int64_t i = 0; i < j.wrb * j.rows; i++) {
        j.w[i] = (uint8_t) rand();
    }
    for (int64_t b = 0; b < j.wrb * j.rows / bytes; b++) { /* finite scales: f16 0x2000..0x23ff, about 0.008 */
        uint16_t d[2] = {(uint16_t) (0x2000 + (rand() & 0x3ff)), (uint16_t) (0x2000 + (rand() & 0x3ff))};
        memcpy(j.w + b * bytes + scale_at, d, j.type == T_Q4_K ? 4 : 2);
    }
    int64_t pb = cria_packed_bytes(j.type, j.rows, j.k);
    j.packed = malloc(sizeof(uint8_t *) * (size_t) j.copies);
    if (pb <= 0 || j.packed == NULL) {
        fprintf(stderr, "packed-stream: this build cannot pack %s\n", argv[1]);
        return 1;
    }
    for (int c = 0; c < j.copies; c++) {
        j.packed[c] = cria_map_huge(pb);
        if (j.packed[c] == NULL || cria_pack(j.type, j.w, j.wrb, 0, j.rows / 16, j.k, j.packed[c]) != 0) {
            fprintf(stderr, "packed-stream: could not map or pack copy %d (%lld bytes)\n", c, (long long) pb);
            return 1;
        }
    }
    float *x = malloc(sizeof(float) * (size_t) j.k);
    for (int i = 0; i < j.k; i++) {
        x[i] = (float) rand() / (float) RAND_MAX - 0.5f;
    }
    j.act_bytes = cria_act_row_bytes(j.k);
    j.act = aligned_alloc(64, (size_t) j.act_bytes);
    cria_quantize_act(x, j.k, 0, 1, j.k, j.act, j.act_bytes);
    j.out = aligned_alloc(64, sizeof(float) * (size_t) ((j.rows + 15) & ~15));
    pthread_barrier_init(&j.barrier, NULL, (unsigned) j.threads);
    part parts[64];
    pthread_t ids[64];
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < j.threads; i++) {
            parts[i] = (part) {&j, i};
        }
        double t0 = now();
        if (j.threads == 1) {
            run_part(&parts[0]);
        } else {
            for (int i = 0; i < j.threads; i++) {
                pthread_create(&ids[i], NULL, run_part, &parts[i]);
            }
            for (int i = 0; i < j.threads; i++) {
                pthread_join(ids[i], NULL);
            }
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    double sum = 0;
    for (int i = 0; i < j.rows; i++) {
        sum += j.out[i];
    }
    printf("%s %dx%d, %d copies (%.0f MB packed), %d thread(s): %.2f GB/s (best of %d: %.3f ms), checksum %.6g\n", argv[1], j.rows,
           j.k, j.copies, (double) pb * j.copies / 1e6, j.threads, (double) pb * j.copies / best / 1e9, reps, best * 1e3, sum);
    return 0;
}
