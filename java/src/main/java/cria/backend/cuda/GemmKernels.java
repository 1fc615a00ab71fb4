// Launcher of kernels/gemm.cu: prefill products on the tensor cores, the batch's rows converted to f16 once per input.
package cria.backend.cuda;

import cria.gguf.GgmlType;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * gemm_x16 turns rows [0, n) of the input into f16 rows of {@link #xhStride(int)} halves (zero
 * padded) in a workspace this launcher owns; gemm_&lt;type&gt;_64 / _128 then compute a
 * {@link #BM} x BN tile of out^T per block of {@link #THREADS} threads (kernels/gemm.cu's GM_BM,
 * GM_THREADS), BN = 128 for batches of more than 64 rows. Every weight type but F32 (which keeps
 * the float kernels: f16 operands would round its values).
 */
public final class GemmKernels extends Launcher {
    static final String FAMILY = "gemm";
    public static final int BM = 128;
    static final int BK = 64;
    static final int THREADS = 256;
    static final KernelSpec X16 = new KernelSpec(FAMILY, "gemm_x16", "piiipi");
    private static final Map<GgmlType, KernelSpec> N64 = new EnumMap<>(GgmlType.class);
    private static final Map<GgmlType, KernelSpec> N128 = new EnumMap<>(GgmlType.class);

    static {
        for (GgmlType t : CudaTypes.all()) {
            if (t != GgmlType.F32) {
                String base = FAMILY + "_" + CudaTypes.suffix(t);
                N64.put(t, new KernelSpec(FAMILY, base + "_64", "piipiipi"));
                N128.put(t, new KernelSpec(FAMILY, base + "_128", "piipiipi"));
            }
        }
    }

    static List<KernelSpec> specs() {
        List<KernelSpec> all = new ArrayList<>();
        all.add(X16);
        all.addAll(N64.values());
        all.addAll(N128.values());
        return all;
    }

    /** True when the tensor-core kernels read this weight type. */
    public static boolean supports(GgmlType t) {
        return N64.containsKey(t);
    }

    /** Halves per converted row: the columns rounded up to whole K steps. */
    static int xhStride(int cols) {
        return (cols + BK - 1) / BK * BK;
    }

    /** Dynamic shared memory of a block: two stages of the weight tile and the token tile, rows padded by 8 halves. */
    static int sharedBytes(int bn) {
        return 2 * (BM + bn) * (BK + 8) * 2;
    }

    private long workspace;
    private long workspaceBytes;

    GemmKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    /**
     * Queues the conversion of rows [0, n) of x (first {@code cols} columns) to f16 and returns the
     * converted rows' address (valid until the next call); their stride is {@link #xhStride(int)}.
     */
    public long convert(long x, int xStride, int cols, int n) {
        int stride = xhStride(cols);
        long need = 2L * stride * n;
        if (need > workspaceBytes) {
            if (workspace != 0) {
                gpu.synchronize();  // queued products may still read the old rows
                gpu.free(workspace);
                workspace = 0;
            }
            long bytes = Math.max(need, 2L * 4096 * 64);
            workspace = gpu.malloc(bytes, "the f16 copy of a prompt batch");
            workspaceBytes = bytes;
        }
        args.reset().ptr(x).i32(xStride).i32(cols).i32(n).ptr(workspace).i32(stride);
        launch(X16, ceilDiv(stride / 8, 128), n, 1, 128, 0);
        return workspace;
    }

    /** out[i][r] = W[r] . xh[i] for r in [0, rows), i in [0, n); xh from {@link #convert}. */
    public void gemm(GgmlType type, long w, int rows, int cols, long xh, int n, long out, int outStride) {
        int bn = n > 64 ? 128 : 64;
        KernelSpec spec = (bn == 128 ? N128 : N64).get(type);
        if (spec == null) {
            throw new IllegalArgumentException("no tensor-core kernel for " + type);
        }
        args.reset().ptr(w).i32(rows).i32(cols).ptr(xh).i32(xhStride(cols)).i32(n).ptr(out).i32(outStride);
        launch(spec, ceilDiv(n, bn), ceilDiv(rows, BM), 1, THREADS, sharedBytes(bn));
    }
}
