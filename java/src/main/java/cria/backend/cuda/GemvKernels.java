// Launcher of kernels/gemv.cu: decode products staged through shared memory, R rows per warp, fused add or SwiGLU.
package cria.backend.cuda;

import cria.gguf.GgmlType;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * gemv_&lt;type&gt;: {@link #WARPS} warps per block, {@link #rowsPerWarp} weight rows per warp (the
 * kernel's GvShape&lt;D&gt;::R, mirrored here), {@link #SLICE} bytes of staging per warp. Eligible
 * when a weight row is whole 16-byte pieces and there is one row of x ({@link #eligible});
 * otherwise the matmul kernels run. (Several rows per launch doubled the kernel's code and its
 * compile time; batches of a few decode rows are the matmul kernel's.)
 */
public final class GemvKernels extends Launcher {
    static final String FAMILY = "gemv";
    static final int WARPS = 4;
    static final int SLICE = 12288;
    static final int MAX_BATCH = 1;  // one row of x (decoding one sequence); batches take matmul
    public static final int PLAIN = 0;
    static final int ADD = 1;
    static final int SWIGLU = 2;
    private static final Map<GgmlType, KernelSpec> SPECS = new EnumMap<>(GgmlType.class);

    static {
        for (GgmlType t : CudaTypes.all()) {
            SPECS.put(t, new KernelSpec(FAMILY, FAMILY + "_" + CudaTypes.suffix(t), "pppiiiipiipppiiipii" + "pfpi"));
        }
    }

    static List<KernelSpec> specs() {
        return new ArrayList<>(SPECS.values());
    }

    /** GvShape&lt;D&gt;::R: 4 rows per warp for windows up to 768 bytes, 2 up to 2048, else 1. */
    static int rowsPerWarp(GgmlType t) {
        int win = t.blockSize() == 1 ? 1024 * t.typeSize() : 1024 / t.blockSize() * t.typeSize();
        int w = win % 16 == 0 ? win : 2 * win;
        return w <= 768 ? 4 : (w <= 2048 ? 2 : 1);
    }

    /** True when the staged kernel can take this product. */
    public static boolean eligible(GgmlType t, int cols, int n, int xStride) {
        return SPECS.containsKey(t) && t.rowBytes(cols) % 16 == 0 && n >= 1 && n <= MAX_BATCH && xStride % 4 == 0;
    }

    GemvKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    /** One output of a product: weight, its rows, the output buffer and stride. */
    public record Part(long w, int rows, long out, int outStride) {}

    /**
     * RMS normalization of x folded into the product: f32 norm weights, eps, and where the
     * normalized rows go (what the rmsnorm op writes; must not be x).
     */
    record Norm(long weight, float eps, long out, int outStride) {}

    /**
     * out_j = W_j x for up to three weights of one type and column count in one launch (mode
     * {@link #PLAIN}); with {@link #ADD} (one weight) also res += out; with {@link #SWIGLU} (gate,
     * up) out0 = silu(gate x) * (up x) and out1 = up x.
     */
    public void gemv(GgmlType type, int cols, long x, int xStride, int n, Part[] parts, int mode, long res, int resStride) {
        gemv(type, cols, x, xStride, n, parts, mode, res, resStride, null);
    }

    /** As above; with {@code norm}, x is RMS-normalized first (the kernel sums its squares on the way). */
    public void gemv(GgmlType type, int cols, long x, int xStride, int n, Part[] parts, int mode, long res, int resStride, Norm norm) {
        int r = rowsPerWarp(type);
        long warps = 0;
        if (mode == SWIGLU) {
            if (r < 2 || parts.length != 2 || parts[0].rows() != parts[1].rows()) {
                throw new IllegalArgumentException("gemv SwiGLU needs two equal weights of a type with two rows per warp");
            }
            warps = (parts[0].rows() + r / 2 - 1) / (r / 2);
        } else {
            for (Part p : parts) {
                warps += (p.rows() + r - 1) / r;
            }
        }
        if (parts.length < 1 || parts.length > 3 || (mode == ADD && parts.length != 1)) {
            throw new IllegalArgumentException("gemv of " + parts.length + " weights in mode " + mode);
        }
        Part p0 = parts[0];
        Part p1 = parts.length > 1 ? parts[1] : new Part(0, 0, 0, 0);
        Part p2 = parts.length > 2 ? parts[2] : new Part(0, 0, 0, 0);
        args.reset().ptr(p0.w()).ptr(p1.w()).ptr(p2.w()).i32(p0.rows()).i32(p1.rows()).i32(p2.rows()).i32(cols).ptr(x)
                .i32(xStride).i32(n).ptr(p0.out()).ptr(p1.out()).ptr(p2.out()).i32(p0.outStride()).i32(p1.outStride())
                .i32(p2.outStride()).ptr(res).i32(resStride).i32(mode).ptr(norm == null ? 0 : norm.weight())
                .f32(norm == null ? 0f : norm.eps()).ptr(norm == null ? 0 : norm.out()).i32(norm == null ? 0 : norm.outStride());
        launch(SPECS.get(type), ceilDiv(warps, WARPS), 1, 1, WARPS * 32, WARPS * SLICE);
    }
}
