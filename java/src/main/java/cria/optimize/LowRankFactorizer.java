// The arithmetic of low-rank factorization: the rank a parameter budget allows, and W ≈ B·A by plain or whitened (SVD-LLM) truncated SVD.
package cria.optimize;

import cria.CriaException;
import java.util.Arrays;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.CholeskyDecomposition_F64;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;

/**
 * Pure functions over arrays (EJML underneath, all in double). A weight W has {@code m} rows
 * (outputs) of {@code n} values (inputs), row-major, {@code y = W·x}; it becomes
 * {@code B·A} with A {@code k × n} (applied first) and B {@code m × k}.
 *
 * <p><b>Plain SVD</b> keeps W's k largest singular components: {@code W = UΣVᵀ},
 * {@code B = U_k√Σ_k}, {@code A = √Σ_k V_kᵀ}; the error {@code ‖W − BA‖²_F} is the sum of the
 * dropped σ².
 *
 * <p><b>SVD-LLM</b> (Wang et al. 2024) keeps what matters for the inputs W actually sees: with
 * X the calibration inputs (one row per token) and {@code G = XᵀX = S·Sᵀ} (Cholesky, S lower
 * triangular; when G is not positive definite a small multiple of the identity is added until
 * it is), it truncates {@code W·S = UΣVᵀ} and stores {@code B = U_k√Σ_k},
 * {@code A = √Σ_k V_kᵀ S⁻¹}. This minimizes {@code ‖(W − BA)·Xᵀ‖_F} over rank-k matrices.
 * A is computed as {@code Σ_k^(-1/2) U_kᵀ W}, which equals {@code √Σ_k V_kᵀ S⁻¹} (since
 * {@code U_kᵀ W S = Σ_k V_kᵀ}) without inverting S. Plain SVD is the case S = I.
 *
 * <p>The SVD itself comes from the eigen-decomposition of the smaller Gram matrix of
 * {@code M = W·S}: {@code M·Mᵀ} (m × m) when m ≤ n, else {@code Mᵀ·M} (n × n, then
 * {@code U_k = M V_k Σ_k⁻¹}). That is several times faster than EJML's SVD of M and loses
 * nothing that is kept: the k largest components are the well-conditioned ones. Components
 * whose σ is below 1e-10 of the largest are dropped (zero rows of A, zero columns of B).
 */
public final class LowRankFactorizer {
    private LowRankFactorizer() {}

    /** The factors: {@code a} k × n and {@code b} m × k row-major; {@code sigma} the k kept singular values (of W·S). */
    public record Factors(int rows, int cols, int rank, float[] a, float[] b, double[] sigma, double lambda) {
        /** The product B·A (m × n, row-major). */
        public float[] product() {
            float[] w = new float[Math.multiplyExact(rows, cols)];
            double[] acc = new double[cols];
            for (int i = 0; i < rows; i++) {
                Arrays.fill(acc, 0);
                for (int r = 0; r < rank; r++) {
                    double bv = b[i * rank + r];
                    if (bv == 0) {
                        continue;
                    }
                    int off = r * cols;
                    for (int j = 0; j < cols; j++) {
                        acc[j] += bv * a[off + j];
                    }
                }
                for (int j = 0; j < cols; j++) {
                    w[i * cols + j] = (float) acc[j];
                }
            }
            return w;
        }
    }

    /** The rank a budget allows: {@link cria.model.LowRankTensors#rank}. */
    public static int rank(long m, long n, double keep, int step) {
        return cria.model.LowRankTensors.rank(m, n, keep, step);
    }

    /**
     * Factorizes W ({@code m × n} row-major) at rank k.
     *
     * @param gram null for plain SVD, else G = XᵀX ({@code n × n} row-major, symmetric) for SVD-LLM
     */
    public static Factors factorize(float[] w, int m, int n, double[] gram, int k) {
        if (m < 1 || n < 1 || w.length != (long) m * n || k < 1 || k > Math.min(m, n)) {
            throw new IllegalArgumentException("factorize " + m + " x " + n + " (" + w.length + " values) at rank " + k);
        }
        if (gram != null && gram.length != (long) n * n) {
            throw new IllegalArgumentException("gram of " + gram.length + " values for " + n + " inputs");
        }
        DMatrixRMaj wm = new DMatrixRMaj(m, n);
        for (int i = 0; i < w.length; i++) {
            wm.data[i] = w[i];
        }
        double lambda = 0;
        DMatrixRMaj mm = wm;  // M = W·S
        if (gram != null) {
            Whitening s = whitening(gram, n);
            lambda = s.lambda;
            mm = new DMatrixRMaj(m, n);
            CommonOps_DDRM.mult(wm, s.lower, mm);
        }
        DMatrixRMaj u;          // m × k: U_k
        double[] sigma = new double[k];
        if (m <= n) {
            DMatrixRMaj c = new DMatrixRMaj(m, m);
            CommonOps_DDRM.multOuter(mm, c);   // M·Mᵀ = U Σ² Uᵀ
            u = top(c, k, sigma);
        } else {
            DMatrixRMaj c = new DMatrixRMaj(n, n);
            CommonOps_DDRM.multInner(mm, c);   // Mᵀ·M = V Σ² Vᵀ
            DMatrixRMaj v = top(c, k, sigma);
            u = new DMatrixRMaj(m, k);
            CommonOps_DDRM.mult(mm, v, u);     // M·V_k = U_k Σ_k
            for (int r = 0; r < k; r++) {
                double inv = sigma[r] > 0 ? 1 / sigma[r] : 0;
                for (int i = 0; i < m; i++) {
                    u.data[i * k + r] *= inv;
                }
            }
        }
        // A = Σ^(-1/2) U_kᵀ W (k × n); B = U_k Σ^(1/2) (m × k)
        DMatrixRMaj a = new DMatrixRMaj(k, n);
        CommonOps_DDRM.multTransA(u, wm, a);
        float[] af = new float[k * n];
        float[] bf = new float[m * k];
        for (int r = 0; r < k; r++) {
            double s = sigma[r];
            double inv = s > 0 ? 1 / Math.sqrt(s) : 0;
            double sq = Math.sqrt(s);
            for (int j = 0; j < n; j++) {
                af[r * n + j] = (float) (a.data[r * n + j] * inv);
            }
            for (int i = 0; i < m; i++) {
                bf[i * k + r] = (float) (u.data[i * k + r] * sq);
            }
        }
        return new Factors(m, n, k, af, bf, sigma, lambda);
    }

    /**
     * The eigenvectors of the k largest eigenvalues of a symmetric positive semi-definite
     * matrix c (as columns, n × k); {@code sigma} receives the square roots of those eigenvalues,
     * largest first, 0 for eigenvalues below 1e-20 of the largest (their vectors are zeroed).
     */
    static DMatrixRMaj top(DMatrixRMaj c, int k, double[] sigma) {
        int n = c.numRows;
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(n, true, true);
        if (!eig.decompose(c)) {
            throw new CriaException("the eigen-decomposition of a " + n + " x " + n + " Gram matrix did not converge");
        }
        Integer[] order = new Integer[n];
        double[] values = new double[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
            values[i] = eig.getEigenvalue(i).getReal();
        }
        Arrays.sort(order, (x, y) -> Double.compare(values[y], values[x]));
        double largest = Math.max(0, values[order[0]]);
        DMatrixRMaj out = new DMatrixRMaj(n, k);
        for (int r = 0; r < k; r++) {
            double v = values[order[r]];
            if (!(v > largest * 1e-20) || !(v < Double.POSITIVE_INFINITY)) {
                sigma[r] = 0;
                continue;
            }
            sigma[r] = Math.sqrt(v);
            DMatrixRMaj vec = eig.getEigenVector(order[r]);
            for (int i = 0; i < n; i++) {
                out.data[i * k + r] = vec.data[i];
            }
        }
        return out;
    }

    /** S with G + λI = S·Sᵀ (lower triangular), and the λ that took. */
    record Whitening(DMatrixRMaj lower, double lambda) {}

    /**
     * The Cholesky factor of G; when G is not positive definite (a dead input, fewer tokens than
     * inputs) λ = 1e-6 · mean(diag G) is added to the diagonal, and multiplied by 10 until the
     * factorization succeeds.
     */
    static Whitening whitening(double[] gram, int n) {
        double trace = 0;
        for (int i = 0; i < n; i++) {
            trace += gram[i * n + i];
        }
        if (!(trace >= 0) || trace == Double.POSITIVE_INFINITY) {
            throw new CriaException("the calibration inputs' Gram matrix has a diagonal of " + trace + "; the activations are not finite");
        }
        double mean = trace > 0 ? trace / n : 1;
        double lambda = 0;
        for (int attempt = 0; attempt < 12; attempt++) {
            DMatrixRMaj g = new DMatrixRMaj(n, n);
            System.arraycopy(gram, 0, g.data, 0, gram.length);
            for (int i = 0; i < n; i++) {
                g.data[i * n + i] += lambda;
            }
            CholeskyDecomposition_F64<DMatrixRMaj> chol = DecompositionFactory_DDRM.chol(n, true);
            if (chol.decompose(g)) {
                DMatrixRMaj s = chol.getT(null);
                if (positiveDiagonal(s)) {
                    return new Whitening(s, lambda);
                }
            }
            lambda = lambda == 0 ? 1e-6 * mean : lambda * 10;
        }
        throw new CriaException("the calibration inputs' Gram matrix (" + n + " x " + n + ") stays singular even with "
                + lambda + " added to its diagonal");
    }

    private static boolean positiveDiagonal(DMatrixRMaj s) {
        for (int i = 0; i < s.numRows; i++) {
            double d = s.data[i * s.numCols + i];
            if (!(d > 0) || d == Double.POSITIVE_INFINITY) {
                return false;
            }
        }
        return true;
    }
}
