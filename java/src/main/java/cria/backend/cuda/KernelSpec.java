// The name and argument signature of one kernel entry point, as its launcher declares it.
package cria.backend.cuda;

/**
 * An {@code extern "C"} entry point of kernels/{@code family}.cu. The signature has one letter
 * per parameter: {@code p} pointer, {@code i} int, {@code f} float, {@code d} double, {@code l}
 * 64-bit integer. A test checks every spec against the kernel sources, so a launcher and its
 * kernel cannot drift apart silently.
 */
record KernelSpec(String family, String name, String signature) {
    KernelSpec {
        if (!name.startsWith(family + "_")) {
            throw new IllegalArgumentException("kernel " + name + " must be named " + family + "_<variant>");
        }
        if (!signature.matches("[pifdl]*")) {
            throw new IllegalArgumentException("bad signature " + signature);
        }
    }
}
