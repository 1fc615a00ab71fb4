// Picks the kernel for each matrix product: tensor cores for prompt batches, staged gemv for decode, matmul otherwise.
package cria.backend.cuda;

/**
 * The product strategies of {@link CudaOps#matmul} and of the fused ops built on it. Batches of
 * {@link CudaTuning#mmaMinBatch} rows or more go to kernels/gemm.cu (all weights of a call share
 * one f16 conversion of x); a single row ({@link GemvKernels#MAX_BATCH}) goes to
 * kernels/gemv.cu when the rows are whole 16-byte pieces (weights of one type and width in one
 * launch); the rest, and F32 prompt batches, to kernels/matmul.cu.
 */
final class Products {
    /** out = rmsnorm(src) * weight, to fold into the product that reads out (which then computes it on the way in). */
    record Norm(CudaBuf src, CudaWeight weight, float eps, CudaBuf out, int n) {}

    private final Kernels k;
    private final CudaTuning tuning;

    Products(Kernels kernels, CudaTuning tuning) {
        this.k = kernels;
        this.tuning = tuning;
    }

    private boolean gemv(CudaWeight w, CudaBuf x, int n) {
        return tuning.gemv && GemvKernels.eligible(w.type(), w.cols(), n, x.cols());
    }

    /** True when every weight can go into one gemv launch (same type and width, at most three). */
    private boolean oneGemv(CudaBuf x, int n, CudaWeight[] ws) {
        if (ws.length > 3) {
            return false;
        }
        for (CudaWeight w : ws) {
            if (!gemv(w, x, n) || w.type() != ws[0].type() || w.cols() != ws[0].cols()) {
                return false;
            }
        }
        return true;
    }

    /** Runs the norm as a kernel of its own (before a product it cannot be folded into). */
    void runNorm(Norm m) {
        k.rmsnorm.rmsnorm(m.src().ptr(), m.src().cols(), m.weight().type(), m.weight().ptr(), m.eps(), m.src().cols(), m.n(),
                m.out().ptr(), m.out().cols());
    }

    /** The source rows a gemv reads: x itself, or the norm's input when the norm is folded in. */
    private static CudaBuf input(CudaBuf x, Norm norm) {
        return norm == null ? x : norm.src();
    }

    private static GemvKernels.Norm gemvNorm(Norm norm) {
        return norm == null ? null : new GemvKernels.Norm(norm.weight().ptr(), norm.eps(), norm.out().ptr(), norm.out().cols());
    }

    /** out[j] = W[j] x for rows [0, n) (shapes already checked). */
    void run(CudaBuf x, int n, CudaWeight[] ws, CudaBuf[] outs) {
        run(x, n, ws, outs, null);
    }

    /** As above, x being {@code norm}'s output when norm is given (folded into a gemv, or run first). */
    void run(CudaBuf x, int n, CudaWeight[] ws, CudaBuf[] outs, Norm norm) {
        if (n == 0) {
            return;
        }
        if (oneGemv(x, n, ws) && apart(norm, outs)) {
            GemvKernels.Part[] parts = new GemvKernels.Part[ws.length];
            for (int j = 0; j < ws.length; j++) {
                parts[j] = new GemvKernels.Part(ws[j].ptr(), ws[j].rows(), outs[j].ptr(), outs[j].cols());
            }
            CudaBuf in = input(x, norm);
            k.gemv.gemv(ws[0].type(), ws[0].cols(), in.ptr(), in.cols(), n, parts, GemvKernels.PLAIN, 0, 0, gemvNorm(norm));
            return;
        }
        if (norm != null) {
            runNorm(norm);
        }
        boolean mma = tuning.mma && n >= tuning.mmaMinBatch;
        long xh = 0;
        int converted = -1;  // the columns x was last converted to f16 with
        for (int j = 0; j < ws.length; j++) {
            CudaWeight w = ws[j];
            CudaBuf out = outs[j];
            if (mma && GemmKernels.supports(w.type())) {
                if (converted != w.cols()) {  // q, k, v (gate, up) share one conversion
                    xh = k.gemm.convert(x.ptr(), x.cols(), w.cols(), n);
                    converted = w.cols();
                }
                k.gemm.gemm(w.type(), w.ptr(), w.rows(), w.cols(), xh, n, out.ptr(), out.cols());
            } else if (gemv(w, x, n)) {
                k.gemv.gemv(w.type(), w.cols(), x.ptr(), x.cols(), n,
                        new GemvKernels.Part[] {new GemvKernels.Part(w.ptr(), w.rows(), out.ptr(), out.cols())}, GemvKernels.PLAIN,
                        0, 0);
            } else {
                k.matmul.matmul(w.type(), w.ptr(), w.rows(), w.cols(), x.ptr(), x.cols(), n, out.ptr(), out.cols());
            }
        }
    }

    /** True when {@code out = W x; res += out} can run as one kernel (out exactly W's rows wide, res shaped as out). */
    boolean canAdd(CudaBuf x, int n, CudaWeight w, CudaBuf out, CudaBuf res) {
        return tuning.fuse && gemv(w, x, n) && out.cols() == w.rows() && res.cols() == out.cols() && res != out && res != x;
    }

    /** True when no buffer the kernel writes is one the folded norm reads or writes. */
    private static boolean apart(Norm norm, CudaBuf... written) {
        if (norm == null) {
            return true;
        }
        for (CudaBuf b : written) {
            if (b == norm.src() || b == norm.out()) {
                return false;
            }
        }
        return true;
    }

    void runAdd(CudaBuf x, int n, CudaWeight w, CudaBuf out, CudaBuf res) {
        k.gemv.gemv(w.type(), w.cols(), x.ptr(), x.cols(), n,
                new GemvKernels.Part[] {new GemvKernels.Part(w.ptr(), w.rows(), out.ptr(), out.cols())}, GemvKernels.ADD, res.ptr(),
                res.cols(), null);
    }

    /** True when {@code a = silu(G x) * (U x); b = U x} can run as one kernel (a, b exactly the weights' rows wide). */
    boolean canSwiglu(CudaBuf x, int n, CudaWeight gate, CudaWeight up, CudaBuf a, CudaBuf b, Norm norm) {
        return tuning.fuse && gemv(gate, x, n) && gemv(up, x, n) && gate.type() == up.type() && gate.rows() == up.rows()
                && gate.cols() == up.cols() && GemvKernels.rowsPerWarp(gate.type()) >= 2 && a.cols() == gate.rows()
                && b.cols() == up.rows() && a != b && apart(norm, a, b);
    }

    void runSwiglu(CudaBuf x, int n, CudaWeight gate, CudaWeight up, CudaBuf a, CudaBuf b, Norm norm) {
        CudaBuf in = input(x, norm);
        k.gemv.gemv(gate.type(), gate.cols(), in.ptr(), in.cols(), n, new GemvKernels.Part[] {
            new GemvKernels.Part(gate.ptr(), gate.rows(), a.ptr(), a.cols()),
            new GemvKernels.Part(up.ptr(), up.rows(), b.ptr(), b.cols())}, GemvKernels.SWIGLU, 0, 0, gemvNorm(norm));
    }

    /** True when a norm over rows of {@code cols} values can be folded into a gemv (f32 weights of that width). */
    static boolean foldable(CudaWeight normWeight, CudaBuf src, CudaBuf out) {
        return normWeight.type() == cria.gguf.GgmlType.F32 && src != out && src.cols() == out.cols() && src.cols() % 4 == 0;
    }
}
