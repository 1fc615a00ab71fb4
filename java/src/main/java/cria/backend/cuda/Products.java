// Picks the kernel for each matrix product: tensor cores for prompt batches, staged gemv for decode, matmul otherwise.
package cria.backend.cuda;

/**
 * The product strategies of {@link CudaOps#matmul} and its fused forms. Batches of
 * {@link CudaTuning#mmaMinBatch} rows or more go to kernels/gemm.cu (all weights of a call share
 * one f16 conversion of x); batches of up to {@link GemvKernels#MAX_BATCH} rows go to
 * kernels/gemv.cu when the rows are whole 16-byte pieces (weights of one type and width in one
 * launch); the rest, and F32 prompt batches, to kernels/matmul.cu.
 */
final class Products {
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

    /** out[j] = W[j] x for rows [0, n) (shapes already checked). */
    void run(CudaBuf x, int n, CudaWeight[] ws, CudaBuf[] outs) {
        if (n == 0) {
            return;
        }
        if (oneGemv(x, n, ws)) {
            GemvKernels.Part[] parts = new GemvKernels.Part[ws.length];
            for (int j = 0; j < ws.length; j++) {
                parts[j] = new GemvKernels.Part(ws[j].ptr(), ws[j].rows(), outs[j].ptr(), outs[j].cols());
            }
            k.gemv.gemv(ws[0].type(), ws[0].cols(), x.ptr(), x.cols(), n, parts, GemvKernels.PLAIN, 0, 0);
            return;
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

    void runAdd(CudaBuf x, int n, CudaWeight w, CudaBuf out, CudaBuf res) {
        k.gemv.gemv(w.type(), w.cols(), x.ptr(), x.cols(), n,
                new GemvKernels.Part[] {new GemvKernels.Part(w.ptr(), w.rows(), out.ptr(), out.cols())}, GemvKernels.ADD, res.ptr(),
                res.cols());
    }

    /** True when {@code a = silu(G x) * (U x); b = U x} can run as one kernel (a, b exactly the weights' rows wide). */
    boolean canSwiglu(CudaBuf x, int n, CudaWeight gate, CudaWeight up, CudaBuf a, CudaBuf b) {
        return tuning.fuse && gemv(gate, x, n) && gemv(up, x, n) && gate.type() == up.type() && gate.rows() == up.rows()
                && gate.cols() == up.cols() && GemvKernels.rowsPerWarp(gate.type()) >= 2 && a.cols() == gate.rows()
                && b.cols() == up.rows() && a != b;
    }

    void runSwiglu(CudaBuf x, int n, CudaWeight gate, CudaWeight up, CudaBuf a, CudaBuf b) {
        k.gemv.gemv(gate.type(), gate.cols(), x.ptr(), x.cols(), n, new GemvKernels.Part[] {
            new GemvKernels.Part(gate.ptr(), gate.rows(), a.ptr(), a.cols()),
            new GemvKernels.Part(up.ptr(), up.rows(), b.ptr(), b.cols())}, GemvKernels.SWIGLU, 0, 0);
    }
}
