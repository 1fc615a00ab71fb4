// The CPU backend: off-heap activations, mapped weights, Vector API kernels, one worker pool.
package cria.backend.cpu;

import cria.backend.HostBackend;
import cria.backend.JvmOptions;
import cria.backend.Ops;

/** Multi-threaded CPU backend over {@code MemorySegment}s. */
public final class CpuBackend extends HostBackend {
    private final WorkerPool pool;
    private final CpuOps ops;
    private final NativeKernels kernels;

    /** The most worker threads a pool takes (the engine itself never asks for more than the cores). */
    public static final int MAX_THREADS = 1024;

    /** @param threads worker threads including the caller; 0 = one per available core */
    public CpuBackend(int threads) {
        this(threads, true);
    }

    /**
     * @param threads   worker threads including the caller; 0 = one per available core
     * @param useNative use the C kernels of native/ when the library is there (false: Vector API only)
     */
    public CpuBackend(int threads, boolean useNative) {
        if (threads < 0 || threads > MAX_THREADS) {
            throw new IllegalArgumentException("CPU threads must be 0 (one per core) to " + MAX_THREADS + ", got " + threads);
        }
        JvmOptions.requireVectorApi();
        if (useNative) {
            JvmOptions.requireNativeAccess();
        }
        int n = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        this.pool = new WorkerPool(n);
        this.kernels = useNative ? NativeKernels.get() : null;
        // the path is chosen here, once: no op asks again
        this.ops = kernels != null ? new NativeCpuOps(pool, kernels) : new JavaCpuOps(pool);
        if (useNative && kernels == null && !NativeKernels.disabled()) {
            notice = "cria: the native CPU kernels are not available (" + NativeKernels.unavailableReason() + "); running the"
                    + " pure-Java path, " + JAVA_PATH_SLOWDOWN + " slower";
            if (NOTICE_SAID.compareAndSet(false, true)) {
                System.err.println(notice); // once per JVM: a slow path is never silent
            }
        } else {
            notice = null;
        }
        String bad = kernels != null ? NativeKernels.prefetchProblem(System.getenv("CRIA_PREFETCH")) : null;
        if (bad != null && PREFETCH_SAID.compareAndSet(false, true)) {
            System.err.println(bad);
        }
    }

    private static final java.util.concurrent.atomic.AtomicBoolean PREFETCH_SAID = new java.util.concurrent.atomic.AtomicBoolean();

    /** What the pure-Java path costs, as measured (README, "The CPU path": stories260K and a 1B Q4_0 model, 2 threads). */
    static final String JAVA_PATH_SLOWDOWN = "5 to 15 times";
    private static final java.util.concurrent.atomic.AtomicBoolean NOTICE_SAID = new java.util.concurrent.atomic.AtomicBoolean();
    private final String notice;

    /**
     * The one line said (once per JVM, on stderr) when this backend runs the pure-Java path
     * because the native kernels are missing or do not fit the CPU; null when they run, or when
     * they were turned off on purpose ({@code -Dcria.native=false}, or {@code useNative} false).
     */
    public String notice() {
        return notice;
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String describe() {
        return "cpu (" + pool.threads() + " threads, " + (kernels != null
                ? "native kernels" + ((kernels.features & 1) != 0 ? " AVX-512 VNNI" : " portable") + ", "
                : "no native kernels: " + NativeKernels.unavailableReason() + "; ") + "Vector API " + Simd.F.length() * 32 + "-bit)";
    }

    /** True when the C kernels are in use. */
    public boolean usesNativeKernels() {
        return kernels != null;
    }

    /**
     * Whether matrix products with weights of this type and row length run in the native kernels
     * here (otherwise in Java, correct but much slower): quantized rows need a multiple of 64 values
     * (32-value block types) or 256 (K-quants, IQ4_XS).
     */
    public boolean runsNatively(cria.gguf.GgmlType type, int cols) {
        return ops.runsNatively(type, cols);
    }

    /**
     * Bytes held by packed copies of quantized weights: the native kernels lay out each read-only
     * quantized weight once, on first use, in the panel order their products read (same results,
     * read as one stream; decode is about twice as fast), where memory allows (1 GiB stays
     * available). 0 on the Java path, or with {@code -Dcria.pack=false}.
     */
    public long packedBytes() {
        return ops instanceof NativeCpuOps n ? n.packedBytes() : 0;
    }

    /** The worker pool (for this package's tests, which watch what its threads do). */
    WorkerPool pool() {
        return pool;
    }

    @Override
    public Ops ops() {
        return ops;
    }

    /** Training ops on this backend's threads, through the native kernels when these ops use them. */
    @Override
    public CpuTrainOps trainOps() {
        return new CpuTrainOps(pool, kernels, ops);
    }

    @Override
    public void close() {
        pool.close();
        ops.close();
        super.close();
    }
}
