// The arithmetic of low-rank factorization checked against EJML's SVD and against the whitened objective SVD-LLM minimizes.
package cria.optimize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import java.util.Arrays;
import java.util.Random;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;
import org.junit.jupiter.api.Test;

class LowRankFactorizerTest {

    @Test
    void theRankIsTheLargestStepMultipleInsideTheBudget() {
        // 2048 x 8192 at 60 %: 0.6 * 2048 * 8192 / 10240 = 983.04 -> 960
        assertEquals(960, LowRankFactorizer.rank(2048, 8192, 0.6, 32));
        assertEquals(983, LowRankFactorizer.rank(2048, 8192, 0.6, 1));
        // 2048 x 2048 at 80 %: 819.2 -> 800
        assertEquals(800, LowRankFactorizer.rank(2048, 2048, 0.8, 32));
        // 64 x 64 at 80 %: 25.6 < 32: nothing to gain at a step of 32, but rank 24 at a step of 8
        assertEquals(0, LowRankFactorizer.rank(64, 64, 0.8, 32));
        assertEquals(24, LowRankFactorizer.rank(64, 64, 0.8, 8));
        // a budget at which factors could never be smaller: keep 0.99 of 8 x 8 (k 3 at step 1: 3*16 < 64 saves; step 4: k 0)
        assertEquals(0, LowRankFactorizer.rank(8, 8, 0.99, 4));
        for (int m : new int[] {96, 172, 256, 2048}) {
            for (int n : new int[] {64, 288, 768}) {
                int k = LowRankFactorizer.rank(m, n, 0.7, 32);
                assertTrue(k % 32 == 0 && (long) k * (m + n) <= 0.7 * m * n, m + "x" + n + " -> " + k);
                assertTrue(k == 0 || (long) (k + 32) * (m + n) > 0.7 * m * n, m + "x" + n + ": " + k + " is not the largest");
            }
        }
        assertThrows(IllegalArgumentException.class, () -> LowRankFactorizer.rank(64, 64, 1.0, 32));
    }

    @Test
    void plainSvdLosesExactlyTheDroppedSingularValues() {
        Random r = new Random(5);
        for (int[] shape : new int[][] {{40, 24}, {24, 40}, {32, 32}}) {
            int m = shape[0];
            int n = shape[1];
            float[] w = gaussian(r, m * n);
            double[] sv = singularValues(w, m, n);
            for (int k : new int[] {1, 8, 20}) {
                LowRankFactorizer.Factors f = LowRankFactorizer.factorize(w, m, n, null, k);
                assertEquals(k * n, f.a().length);
                assertEquals(m * k, f.b().length);
                double err = squaredDistance(w, f.product());
                double dropped = 0;
                for (int i = k; i < sv.length; i++) {
                    dropped += sv[i] * sv[i];
                }
                assertEquals(dropped, err, 1e-4 * Arrays.stream(sv).map(x -> x * x).sum(), m + "x" + n + " rank " + k);
                for (int i = 0; i < k; i++) {
                    assertEquals(sv[i], f.sigma()[i], 1e-9 * sv[0], "sigma " + i);
                }
            }
        }
    }

    @Test
    void svdLlmLosesLessOnTheCalibrationInputsThanPlainSvd() {
        Random r = new Random(11);
        for (int[] shape : new int[][] {{48, 32}, {32, 48}}) {
            int m = shape[0];
            int n = shape[1];
            int tokens = 200;
            float[] w = gaussian(r, m * n);
            double[] x = correlated(r, tokens, n);
            double[] g = gram(x, tokens, n);
            int k = 8;
            LowRankFactorizer.Factors plain = LowRankFactorizer.factorize(w, m, n, null, k);
            LowRankFactorizer.Factors llm = LowRankFactorizer.factorize(w, m, n, g, k);
            assertEquals(0, llm.lambda(), "a Gram matrix of 200 correlated tokens over 32..48 inputs is positive definite");
            double ePlain = outputError(w, plain.product(), x, tokens, m, n);
            double eLlm = outputError(w, llm.product(), x, tokens, m, n);
            assertTrue(eLlm < 0.8 * ePlain, m + "x" + n + ": whitened error " + eLlm + " vs plain " + ePlain);
            // and SVD-LLM is the optimum of that objective: its loss is the dropped σ² of W·S
            double total = 0;
            double[] ws = singularValuesOfWS(w, m, n, g);
            for (int i = k; i < ws.length; i++) {
                total += ws[i] * ws[i];
            }
            assertEquals(total, eLlm, 1e-3 * total);
        }
    }

    @Test
    void aSingularGramMatrixIsRegularized() {
        Random r = new Random(3);
        int m = 24;
        int n = 40;
        int tokens = 12; // fewer tokens than inputs: G has rank 12
        double[] x = correlated(r, tokens, n);
        for (int t = 0; t < tokens; t++) {
            x[t * n + 7] = 0; // and a dead input
        }
        double[] g = gram(x, tokens, n);
        float[] w = gaussian(r, m * n);
        LowRankFactorizer.Factors f = LowRankFactorizer.factorize(w, m, n, g, 8);
        assertTrue(f.lambda() > 0, "a small multiple of the identity was added");
        for (float v : f.a()) {
            assertTrue(Float.isFinite(v));
        }
        for (float v : f.b()) {
            assertTrue(Float.isFinite(v));
        }
        double eLlm = outputError(w, f.product(), x, tokens, m, n);
        double ePlain = outputError(w, LowRankFactorizer.factorize(w, m, n, null, 8).product(), x, tokens, m, n);
        assertTrue(eLlm <= ePlain, "whitened error " + eLlm + " vs plain " + ePlain);
        // a Gram matrix of all zeros (an input nothing reached) still factorizes
        LowRankFactorizer.Factors z = LowRankFactorizer.factorize(w, m, n, new double[n * n], 8);
        assertTrue(z.lambda() > 0);
        assertTrue(squaredDistance(w, z.product()) < squaredDistance(w, new float[w.length]));
    }

    @Test
    void theCholeskyFactorIsLowerTriangular() {
        Random r = new Random(8);
        int n = 16;
        double[] x = correlated(r, 50, n);
        double[] g = gram(x, 50, n);
        LowRankFactorizer.Whitening s = LowRankFactorizer.whitening(g, n);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double sst = 0;
                for (int c = 0; c < n; c++) {
                    sst += s.lower().get(i, c) * s.lower().get(j, c);
                }
                assertEquals(g[i * n + j], sst, 1e-9 * g[i * n + i]);
                if (j > i) {
                    assertEquals(0, s.lower().get(i, j));
                }
            }
        }
        double[] bad = g.clone();
        bad[0] = Double.NaN;
        assertThrows(CriaException.class, () -> LowRankFactorizer.whitening(bad, n));
    }

    // ---- helpers ------------------------------------------------------------------------------

    static float[] gaussian(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    /** Rows of correlated inputs with very different scales per direction (as activations have). */
    static double[] correlated(Random r, int tokens, int n) {
        double[] mix = new double[n * n];
        for (int i = 0; i < mix.length; i++) {
            mix[i] = r.nextGaussian();
        }
        double[] x = new double[tokens * n];
        for (int t = 0; t < tokens; t++) {
            double[] z = new double[n];
            for (int i = 0; i < n; i++) {
                z[i] = r.nextGaussian() * Math.pow(0.7, i);
            }
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int i = 0; i < n; i++) {
                    s += z[i] * mix[i * n + j];
                }
                x[t * n + j] = s;
            }
        }
        return x;
    }

    static double[] gram(double[] x, int tokens, int n) {
        double[] g = new double[n * n];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    g[i * n + j] += x[t * n + i] * x[t * n + j];
                }
            }
        }
        return g;
    }

    /** ‖(W − Ŵ)·Xᵀ‖²_F. */
    static double outputError(float[] w, float[] approx, double[] x, int tokens, int m, int n) {
        double e = 0;
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < m; i++) {
                double d = 0;
                for (int j = 0; j < n; j++) {
                    d += ((double) w[i * n + j] - approx[i * n + j]) * x[t * n + j];
                }
                e += d * d;
            }
        }
        return e;
    }

    static double squaredDistance(float[] a, float[] b) {
        double e = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - b[i];
            e += d * d;
        }
        return e;
    }

    static double[] singularValues(float[] w, int m, int n) {
        DMatrixRMaj a = new DMatrixRMaj(m, n);
        for (int i = 0; i < w.length; i++) {
            a.data[i] = w[i];
        }
        SingularValueDecomposition_F64<DMatrixRMaj> svd = DecompositionFactory_DDRM.svd(m, n, false, false, true);
        assertTrue(svd.decompose(a));
        double[] s = Arrays.copyOf(svd.getSingularValues(), svd.numberOfSingularValues());
        Arrays.sort(s);
        for (int i = 0; i < s.length / 2; i++) {
            double t = s[i];
            s[i] = s[s.length - 1 - i];
            s[s.length - 1 - i] = t;
        }
        return s;
    }

    /** Singular values of W·S with S·Sᵀ = G (any square root gives the same ones). */
    static double[] singularValuesOfWS(float[] w, int m, int n, double[] g) {
        DMatrixRMaj s = LowRankFactorizer.whitening(g, n).lower();
        float[] ws = new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double v = 0;
                for (int c = 0; c < n; c++) {
                    v += w[i * n + c] * s.get(c, j);
                }
                ws[i * n + j] = (float) v;
            }
        }
        return singularValues(ws, m, n);
    }
}
