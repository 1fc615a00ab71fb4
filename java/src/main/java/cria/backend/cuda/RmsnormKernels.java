// Launcher of kernels/rmsnorm.cu: row-wise RMS normalization times an f32, f16 or bf16 weight vector.
package cria.backend.cuda;

import cria.gguf.GgmlType;
import java.util.List;

/** rmsnorm_&lt;weight type&gt;: one block per row, up to 256 threads. */
public final class RmsnormKernels extends Launcher {
    static final String FAMILY = "rmsnorm";
    static final KernelSpec F32 = new KernelSpec(FAMILY, "rmsnorm_f32", "pipfipi");
    static final KernelSpec F16 = new KernelSpec(FAMILY, "rmsnorm_f16", "pipfipi");
    static final KernelSpec BF16 = new KernelSpec(FAMILY, "rmsnorm_bf16", "pipfipi");

    static List<KernelSpec> specs() {
        return List.of(F32, F16, BF16);
    }

    RmsnormKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    static boolean supports(GgmlType t) {
        return t == GgmlType.F32 || t == GgmlType.F16 || t == GgmlType.BF16;
    }

    /** out[i] = x[i] / rms(x[i]) * w for i in [0, n); out may be x. */
    public void rmsnorm(long x, int xStride, GgmlType wType, long w, float eps, int cols, int n, long out, int outStride) {
        KernelSpec k = switch (wType) {
            case F32 -> F32;
            case F16 -> F16;
            case BF16 -> BF16;
            default -> throw new IllegalArgumentException("rmsnorm weight of type " + wType);
        };
        int threads = Math.min(256, Math.max(32, (cols + 31) / 32 * 32));
        args.reset().ptr(x).i32(xStride).ptr(w).f32(eps).i32(cols).ptr(out).i32(outStride);
        launch(k, n, 1, 1, threads, 0);
    }
}
