// The prompt-batch kernels against ref on fresh random inputs: tensor-core products of every weight type, flash attention.
package cria.backend.cuda;

import cria.backend.Buf;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Batches of 16 rows or more take kernels/gemm.cu (mma.sync on f16 operands, f32 accumulation) and
 * kernels/flash.cu. Their operands are rounded to f16, so the bounds are those of f16 rounding
 * (about 3e-4 relative per product; a wrong fragment or index gives errors of order one).
 * "emulator" checks the kernels' index arithmetic and the fragment layouts as the PTX ISA states
 * them; "gpu" checks the same against the real tensor cores.
 */
class CudaPrefillTest {
    static final double GEMM_TOL = 2e-3;

    private static int[] colsFor(GgmlType t) {
        if (t.blockSize() == 256) {
            return new int[] {512};         // two super-blocks: K steps inside and across them
        }
        if (t.blockSize() == 32) {
            return new int[] {96};          // one and a half K steps of 64
        }
        return new int[] {200, 64};         // F16/BF16: a partial last chunk, and exactly one K step
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void tensorCoreProductsOfEveryTypeMatchRef(String device) throws Exception {
        try (OpPairs p = new OpPairs(device)) {
            for (GgmlType t : CudaTypes.all()) {
                if (!GemmKernels.supports(t)) {
                    continue;
                }
                for (int cols : colsFor(t)) {
                    int rows = 150;  // a full tile of 128 rows and a partial one
                    Tensor w = RandomTensors.matrix("w." + t, t, rows, cols, p.random);
                    Weight wc = p.cuda.weight(w);
                    Weight wr = p.ref.weight(w);
                    for (int n : new int[] {20, 70}) {  // BN 64 with a partial tile; BN 128
                        int xStride = cols + 3;  // rows not 16-byte aligned: the f16 conversion copes
                        OpPairs.Pair x = p.pair("x", n, xStride, p.gaussian(n * xStride, 1));
                        OpPairs.Pair out = p.pair("out", n, rows + 2, null);
                        p.cuda.ops().matmul(x.c(), n, new Weight[] {wc}, new Buf[] {out.c()});
                        p.ref.ops().matmul(x.r(), n, new Weight[] {wr}, new Buf[] {out.r()});
                        p.same("tensor-core matmul " + t + " rows " + rows + " cols " + cols + " n " + n, narrow(p, out, n, rows), n,
                                GEMM_TOL);
                    }
                }
            }
        }
    }

    /** The first {@code cols} columns of an output pair as fresh buffers; the columns after them must be unwritten (NaN). */
    static OpPairs.Pair narrow(OpPairs p, OpPairs.Pair wide, int n, int cols) {
        float[] c = OpPairs.down(p.cuda, wide.c(), n);
        float[] r = OpPairs.down(p.ref, wide.r(), n);
        float[] cn = new float[n * cols];
        float[] rn = new float[n * cols];
        for (int i = 0; i < n; i++) {
            for (int j = cols; j < wide.c().cols(); j++) {
                org.junit.jupiter.api.Assertions.assertTrue(Float.isNaN(c[i * wide.c().cols() + j]),
                        "row " + i + " col " + j + " lies past the weight's rows but was written");
            }
            System.arraycopy(c, i * wide.c().cols(), cn, i * cols, cols);
            System.arraycopy(r, i * wide.c().cols(), rn, i * cols, cols);
        }
        Buf bc = p.cuda.allocate("narrow", n, cols);
        Buf br = p.ref.allocate("narrow", n, cols);
        Devices.put(p.cuda, bc, cn);
        Devices.put(p.ref, br, rn);
        return new OpPairs.Pair(bc, br);
    }
}
