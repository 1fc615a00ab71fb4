/* Whether this CPU can run the rest of the library: compiled for the baseline of the architecture
 * (the Makefile builds this file alone without the ISA flags of the kernels), so that calling it is
 * safe on any CPU of the architecture, before any kernel is touched. */
#include "cria.h"
#include <stdlib.h>
#include <string.h>

int32_t cria_cpu_ok(void) {
#if defined(__x86_64__) && defined(CRIA_NEEDS_X86_64_V4_VNNI)
    /* the kernels are built for x86-64-v4 (AVX-512 F/BW/CD/DQ/VL) plus AVX-512 VNNI; libgcc's
     * checks include the operating system's support for the AVX-512 register state */
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v4") && __builtin_cpu_supports("avx512vnni") ? 1 : 0;
#else
    return 1;
#endif
}

/* How the matrix products prefetch their packed weights (matmul_quant.c): 2 = every stream into L2
 * (prefetcht1), 1 = the Q4_K/Q5_K streams into L1, 0 = none. CRIA_PREFETCH (l2, l1, off) chooses;
 * otherwise Intel CPUs get 2 and others 1, the best measured on each (BENCHMARKS.md). Here, not in
 * the kernels' file, because this file is built for the architecture's baseline. */
__attribute__((visibility("hidden"))) int32_t cria_prefetch_mode(void) {
    const char *e = getenv("CRIA_PREFETCH");
    if (e != NULL) {
        if (strcmp(e, "l2") == 0) {
            return 2;
        }
        if (strcmp(e, "l1") == 0) {
            return 1;
        }
        if (strcmp(e, "off") == 0) {
            return 0;
        }
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_is("intel") ? 2 : 1;
#else
    return 0;
#endif
}
