// The CPU backend: off-heap activations, mapped weights, Vector API kernels, one worker pool.
package cria.backend.cpu;

import cria.backend.HostBackend;
import cria.backend.Ops;

/** Multi-threaded CPU backend over {@code MemorySegment}s. */
public final class CpuBackend extends HostBackend {
    private final WorkerPool pool;
    private final CpuOps ops;
    private final NativeKernels kernels;

    /** @param threads worker threads including the caller; 0 = one per available core */
    public CpuBackend(int threads) {
        int n = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        this.pool = new WorkerPool(n);
        this.kernels = NativeKernels.get();
        this.ops = new CpuOps(pool, kernels);
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

    @Override
    public Ops ops() {
        return ops;
    }

    @Override
    public void close() {
        pool.close();
        ops.close();
        super.close();
    }
}
