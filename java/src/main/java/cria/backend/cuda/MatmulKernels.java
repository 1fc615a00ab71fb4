// Launcher of kernels/matmul.cu: out[i] = W x[i] for a batch of rows, W in any supported weight type.
package cria.backend.cuda;

import cria.gguf.GgmlType;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * matmul_&lt;type&gt;: {@link #WARPS} warps per block, one output row each; each block serves
 * {@link #BATCH} batch entries (kernels/matmul.cu's MM_WARPS and MM_NB).
 */
final class MatmulKernels extends Launcher {
    static final String FAMILY = "matmul";
    static final int WARPS = 4;
    static final int BATCH = 8;
    private static final Map<GgmlType, KernelSpec> SPECS = new EnumMap<>(GgmlType.class);

    static {
        for (GgmlType t : CudaTypes.all()) {
            SPECS.put(t, new KernelSpec(FAMILY, FAMILY + "_" + CudaTypes.suffix(t), "piipiipi"));
        }
    }

    static List<KernelSpec> specs() {
        return new ArrayList<>(SPECS.values());
    }

    MatmulKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    /** out[i][r] = W[r] . x[i] for r in [0, rows), i in [0, n). */
    void matmul(GgmlType type, long w, int rows, int cols, long x, int xStride, int n, long out, int outStride) {
        args.reset().ptr(w).i32(rows).i32(cols).ptr(x).i32(xStride).i32(n).ptr(out).i32(outStride);
        launch(SPECS.get(type), ceilDiv(rows, WARPS), ceilDiv(n, BATCH), 1, WARPS * 32, 0);
    }
}
