// The FFM cuBLAS bridge: a bf16 GEMM against a double-precision reference (skips without the library or a GPU).
package cria.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.tensor.Half;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CublasTest {

    @Test
    void bf16GemmMatchesTheReference() {
        String lib = Cublas.findLoadable();
        Skips.unless(lib != null, "cuBLAS test: no libcublas.so.13 or .12 on this host (tried " + Cublas.candidates(false)
                + " and the CUDA / Python-wheel folders)");
        CudaBackend backend = Devices.open(Devices.GPU);
        try (backend; Cublas blas = Cublas.open()) {
            Gpu gpu = backend.gpu();
            int m = 96;
            int n = 40;
            int k = 256;
            Random r = new Random(7);
            short[] a = new short[m * k];  // column-major m x k
            short[] b = new short[k * n];  // column-major k x n
            for (int i = 0; i < a.length; i++) {
                a[i] = Half.floatToBf16((float) r.nextGaussian());
            }
            for (int i = 0; i < b.length; i++) {
                b[i] = Half.floatToBf16((float) r.nextGaussian());
            }
            long da = gpu.malloc(2L * a.length, "A");
            long db = gpu.malloc(2L * b.length, "B");
            long dc = gpu.malloc(4L * m * n, "C");
            gpu.upload(da, MemorySegment.ofArray(a), 2L * a.length);
            gpu.upload(db, MemorySegment.ofArray(b), 2L * b.length);
            blas.gemmEx(Cublas.OP_N, Cublas.OP_N, m, n, k, 1f, da, Cublas.CUDA_R_16BF, m, db, Cublas.CUDA_R_16BF, k, 0f, dc,
                    Cublas.CUDA_R_32F, m);
            float[] c = new float[m * n];
            gpu.download(dc, MemorySegment.ofArray(c), 4L * c.length);
            double num = 0;
            double den = 0;
            for (int j = 0; j < n; j++) {
                for (int i = 0; i < m; i++) {
                    double want = 0;
                    for (int l = 0; l < k; l++) {
                        want += (double) Half.bf16ToFloat(a[l * m + i]) * Half.bf16ToFloat(b[j * k + l]);
                    }
                    double d = c[j * m + i] - want;
                    num += d * d;
                    den += want * want;
                }
            }
            double err = Math.sqrt(num / den);
            System.out.println("cuBLAS " + blas.version() + " from " + blas.source() + ": bf16 GEMM relative error " + err);
            assertTrue(err < 1e-5, "cuBLAS bf16 GEMM relative error " + err);
        }
    }
}
