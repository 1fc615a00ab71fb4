/* Whether this CPU can run the rest of the library: compiled for the baseline of the architecture
 * (the Makefile builds this file alone without the ISA flags of the kernels), so that calling it is
 * safe on any CPU of the architecture, before any kernel is touched. */
#include "cria.h"

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
