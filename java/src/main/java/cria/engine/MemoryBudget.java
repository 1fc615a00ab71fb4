// Checks, before anything is allocated, that the memory a session or a batch asks for can exist on this machine.
package cria.engine;

import cria.CriaException;
import cria.backend.HostBackend;
import java.lang.management.ManagementFactory;

/**
 * The sizes of a session (context, batch, parallel sequences) come from people and requests. They
 * are turned into bytes in long arithmetic here and compared with what the machine has, so that
 * an absurd value gets one line saying what to lower instead of an overflow, a stack trace, or
 * an attempt to allocate terabytes.
 */
final class MemoryBudget {
    private MemoryBudget() {}

    /** Longest Java array the engine allocates. */
    static final long MAX_ARRAY = cria.backend.KvCache.Config.MAX_TABLE;

    /**
     * Checks that {@code offHeap} bytes of KV cache and activations, and {@code heapFloats} floats
     * of Java arrays, fit this machine beside the model.
     *
     * @param what what needs the memory, e.g. "a context of 100000 tokens"
     * @param hint what to lower, e.g. "lower --ctx"
     */
    static void check(Model model, long offHeap, long heapFloats, String what, String hint) {
        if (heapFloats > MAX_ARRAY || heapFloats < 0) {
            throw new CriaException(what + " needs " + mib(4 * Math.max(heapFloats, 0)) + " MiB of logits in one array, more than Java allows; " + hint);
        }
        long heapFree = Runtime.getRuntime().maxMemory() - usedHeap();
        if (4 * heapFloats > heapFree) {
            throw new CriaException(what + " needs " + mib(4 * heapFloats) + " MiB of Java heap for logits, " + mib(heapFree)
                    + " MiB are free; " + hint + " (or give the JVM more with CRIA_JAVA_OPTS=-Xmx16g)");
        }
        if (model.backend() instanceof HostBackend) {
            long total = physicalMemory();
            long left = total - model.file().fileSize() - model.adapterBytes();
            if (offHeap < 0 || offHeap > left) {
                throw new CriaException(what + " needs " + (offHeap < 0 ? "more than 8 EiB" : mib(offHeap) + " MiB")
                        + " of memory for the KV cache and activations, but this machine has " + mib(total) + " MiB, "
                        + mib(model.file().fileSize()) + " of them for the model; " + hint);
            }
        }
    }

    /** Sum of non-negative sizes, saturating at Long.MAX_VALUE (which no machine has). */
    static long sum(long... sizes) {
        long s = 0;
        for (long x : sizes) {
            s = x < 0 || Long.MAX_VALUE - s < x ? Long.MAX_VALUE : s + x;
        }
        return s;
    }

    private static long usedHeap() {
        Runtime rt = Runtime.getRuntime();
        return rt.totalMemory() - rt.freeMemory();
    }

    private static long physicalMemory() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            long total = os.getTotalMemorySize();
            if (total > 0) {
                return total;
            }
        }
        return Long.MAX_VALUE;
    }

    private static String mib(long bytes) {
        return Long.toString(bytes >> 20);
    }
}
