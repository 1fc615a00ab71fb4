// Launcher of kernels/eltwise.cu: swiglu, geglu, scale, softcap, residual add, bias add, gather of rows.
package cria.backend.cuda;

import java.util.List;

/** Element-wise kernels over contiguous floats (256 threads, grid-stride) and a row gather. */
public final class EltwiseKernels extends Launcher {
    static final String FAMILY = "eltwise";
    static final KernelSpec SWIGLU = new KernelSpec(FAMILY, "eltwise_swiglu", "ppi");
    static final KernelSpec GEGLU = new KernelSpec(FAMILY, "eltwise_geglu", "ppi");
    static final KernelSpec SCALE = new KernelSpec(FAMILY, "eltwise_scale", "pfi");
    static final KernelSpec SOFTCAP = new KernelSpec(FAMILY, "eltwise_softcap", "pfi");
    static final KernelSpec ADD = new KernelSpec(FAMILY, "eltwise_add", "ppi");
    static final KernelSpec ADD_BIAS = new KernelSpec(FAMILY, "eltwise_add_bias", "ppii");
    static final KernelSpec GATHER = new KernelSpec(FAMILY, "eltwise_gather", "pipipi");
    static final int THREADS = 256;

    static List<KernelSpec> specs() {
        return List.of(SWIGLU, GEGLU, SCALE, SOFTCAP, ADD, ADD_BIAS, GATHER);
    }

    EltwiseKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    /** Blocks for a grid-stride pass over {@code count} floats, four per thread. */
    private static int grid(int count) {
        return Math.max(1, Math.min(65535, ceilDiv(count, 4L * THREADS)));
    }

    /** a = silu(a) * b over {@code count} floats. */
    public void swiglu(long a, long b, int count) {
        if (count > 0) {
            args.reset().ptr(a).ptr(b).i32(count);
            launch(SWIGLU, grid(count), 1, 1, THREADS, 0);
        }
    }

    /** a = gelu(a) * b (tanh form) over {@code count} floats. */
    void geglu(long a, long b, int count) {
        if (count > 0) {
            args.reset().ptr(a).ptr(b).i32(count);
            launch(GEGLU, grid(count), 1, 1, THREADS, 0);
        }
    }

    /** x *= s over {@code count} floats. */
    void scale(long x, float s, int count) {
        if (count > 0) {
            args.reset().ptr(x).f32(s).i32(count);
            launch(SCALE, grid(count), 1, 1, THREADS, 0);
        }
    }

    /** x = cap * tanh(x / cap) over {@code count} floats. */
    void softcap(long x, float cap, int count) {
        if (count > 0) {
            args.reset().ptr(x).f32(cap).i32(count);
            launch(SOFTCAP, grid(count), 1, 1, THREADS, 0);
        }
    }

    /** x += y over {@code count} floats. */
    void add(long x, long y, int count) {
        if (count > 0) {
            args.reset().ptr(x).ptr(y).i32(count);
            launch(ADD, grid(count), 1, 1, THREADS, 0);
        }
    }

    /** x[i] += b for the {@code count / cols} rows of {@code cols} floats at x; b holds cols floats. */
    void addBias(long x, long b, int cols, int count) {
        if (count > 0) {
            args.reset().ptr(x).ptr(b).i32(cols).i32(count);
            launch(ADD_BIAS, grid(count), 1, 1, THREADS, 0);
        }
    }

    /** out[j] = x[rows[j]] for j in [0, m), {@code cols} floats per row. */
    void gather(long x, int xStride, long rows, int m, int cols, long out, int outStride) {
        if (m > 0) {
            args.reset().ptr(x).i32(xStride).ptr(rows).i32(cols).ptr(out).i32(outStride);
            launch(GATHER, ceilDiv(cols, THREADS), m, 1, THREADS, 0);
        }
    }
}
