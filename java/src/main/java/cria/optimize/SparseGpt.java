// SparseGPT (Frantar & Alistarh, 2023): prune with optimal-brain-surgeon updates of the kept weights from the damped Hessian X·Xᵀ.
package cria.optimize;

import cria.CriaException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.Future;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.dense.row.factory.LinearSolverFactory_DDRM;
import org.ejml.interfaces.decomposition.CholeskyDecomposition_F64;
import org.ejml.interfaces.linsol.LinearSolverDense;

/**
 * SparseGPT: a layer's output {@code W·X} on the calibration inputs is kept as close as it can be
 * while weights are zeroed. With {@code H = X·Xᵀ} (inputs × inputs, summed over the calibration
 * tokens in double and damped by {@code λ = damp · mean(diag H)}), the columns are visited in
 * order; when input i of a row is pruned (or, for every column, rounded to what it keeps), the
 * error {@code (w_i − q_i) / U_ii} is spread over the later inputs of that row along row i of
 * {@code U}, the upper Cholesky factor of {@code H⁻¹} — the optimal-brain-surgeon update, with
 * the inverse Hessian of the columns still free to move read straight from {@code U}.
 *
 * <p>The columns go in blocks (128 by default): at the start of a block each row chooses its mask
 * among the block's inputs by the OBS error {@code w_j² / U_jj²} of the weights as updated so far
 * (this implementation keeps the comparison group a row: each row loses exactly its share of
 * every block, so rows end at the same sparsity as with Wanda); N:M groups are chosen when the
 * sweep reaches them. Updates inside the block are made at once, the rest of the row is updated
 * once per block (lazy batch updates). Rows do not interact, so they are processed in parallel.
 * Inputs never active on the calibration text (diag H = 0) have their weights zeroed, as in the
 * paper's reference. If {@code H + λI} is not positive definite in floating point, λ grows ten
 * times and the factorization is tried again.
 */
public final class SparseGpt {
    private SparseGpt() {}

    /** The default dampening: 1 % of the mean diagonal of H. */
    public static final double DEFAULT_DAMP = 0.01;
    /** The default column block. */
    public static final int DEFAULT_BLOCK = 128;
    /** Where an unstructured mask is chosen at the start of each block of columns. */
    public enum MaskGroup {
        /** Each row loses exactly its share of the block (rows end at the same sparsity, as with Wanda). */
        ROW,
        /** The share of the whole block (rows × block columns) by one threshold, as the authors' reference does. */
        BLOCK
    }

    /** The widest input dimension accepted (H is inputs² doubles). */
    public static final int MAX_COLS = 32768;
    private static final int TILE = 8;

    /**
     * What a pruning did: the dampening λ finally used (raised when {@code H + λI} did not factor),
     * inputs never active, and the OBS loss Σ (w−q)²/U_ii² / 2.
     */
    public record Result(double damp, boolean raised, int deadInputs, double loss) {}

    /** Accumulates {@code H = Σ x·xᵀ} (in double) over the calibration rows shown to it. */
    public static final class Hessian {
        private final int cols;
        private final DMatrixRMaj h;
        private DMatrixRMaj x = new DMatrixRMaj(1, 1);
        private long rows;

        /** A zero H for {@code cols} inputs. */
        public Hessian(int cols) {
            if (cols < 1 || cols > MAX_COLS) {
                throw new CriaException("SparseGPT takes rows of 1 to " + MAX_COLS + " inputs, got " + cols);
            }
            this.cols = cols;
            this.h = new DMatrixRMaj(cols, cols);
        }

        /** Adds {@code n} rows of {@link #cols()} floats (row-major float32) from {@code seg}. */
        public void add(MemorySegment seg, int n) {
            long need = (long) n * cols * Float.BYTES;
            if (n < 0 || seg.byteSize() < need) {
                throw new IllegalArgumentException(n + " rows of " + cols + " floats need " + need + " bytes, got " + seg.byteSize());
            }
            if (n == 0) {
                return;
            }
            x.reshape(n, cols, false);
            double[] d = x.data;
            for (int i = 0, len = n * cols; i < len; i++) {
                d[i] = seg.get(ValueLayout.JAVA_FLOAT_UNALIGNED, (long) i * Float.BYTES);
            }
            CommonOps_DDRM.multAddTransA(x, x, h);
            rows += n;
        }

        /** Adds {@code n} rows from {@code x} (row-major). */
        public void add(float[] x, int n) {
            add(MemorySegment.ofArray(x), n);
        }

        /** Inputs. */
        public int cols() {
            return cols;
        }

        /** Calibration rows seen. */
        public long rows() {
            return rows;
        }

        /** H itself (not a copy). */
        public DMatrixRMaj matrix() {
            return h;
        }
    }

    /**
     * Prunes {@code w} ({@code rows × cols} row-major, a row per output) in place with updates of
     * the weights kept, from the inputs' {@code hessian}.
     *
     * @param damp    λ as a fraction of the mean diagonal of H (0.01 in the paper; 0 allowed)
     * @param block   columns per lazy-update block (rounded up to a multiple of M for N:M)
     * @param threads worker threads (1: the calling thread only)
     */
    public static Result prune(float[] w, int rows, int cols, DMatrixRMaj hessian, PrunePattern pattern,
                               double damp, int block, int threads) {
        return prune(w, rows, cols, hessian, pattern, MaskGroup.ROW, damp, block, threads);
    }

    /**
     * As {@link #prune(float[], int, int, DMatrixRMaj, PrunePattern, double, int, int)}, with the
     * comparison group of an unstructured mask chosen ({@code group}; N:M ignores it).
     */
    public static Result prune(float[] w, int rows, int cols, DMatrixRMaj hessian, PrunePattern pattern, MaskGroup group,
                               double damp, int block, int threads) {
        PruneMasks.checkShape(w, rows, cols);
        if (hessian.numRows != cols || hessian.numCols != cols) {
            throw new IllegalArgumentException("H is " + hessian.numRows + " x " + hessian.numCols + " for rows of " + cols);
        }
        if (!(damp >= 0) || block < 1 || threads < 1) {
            throw new IllegalArgumentException("damp " + damp + ", block " + block + ", threads " + threads);
        }
        pattern.check(cols, "the matrix");
        if (pattern.structured()) {
            block = (block + pattern.m() - 1) / pattern.m() * pattern.m();
        }
        DMatrixRMaj h = hessian.copy();
        boolean[] dead = new boolean[cols];
        int deadInputs = 0;
        double trace = 0;
        for (int j = 0; j < cols; j++) {
            if (h.get(j, j) == 0) {
                dead[j] = true;
                deadInputs++;
                h.set(j, j, 1);
            }
            trace += h.get(j, j);
        }
        double lambda = damp * trace / cols;
        DMatrixRMaj u = null;
        boolean raised = false;
        for (int attempt = 0; attempt < 8 && u == null; attempt++) {
            u = upperCholeskyOfInverse(h, lambda);
            if (u == null) {
                raised = true;
                lambda = lambda > 0 ? lambda * 10 : 1e-6 * trace / cols;
            }
        }
        if (u == null) {
            throw new CriaException("SparseGPT: the calibration Hessian stays singular even damped by " + lambda
                    + "; give more calibration text or a larger --damp");
        }
        double[] wd = new double[w.length];
        for (int i = 0; i < w.length; i++) {
            wd[i] = w[i];
        }
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                if (dead[j]) {
                    wd[r * cols + j] = 0;
                }
            }
        }
        double[] ud = u.data;
        int nTiles = (rows + TILE - 1) / TILE;
        Tile[] tiles = new Tile[nTiles];
        for (int t = 0; t < nTiles; t++) {
            tiles[t] = new Tile(wd, ud, cols, t * TILE, Math.min(rows, t * TILE + TILE), pattern, block);
        }
        boolean flat = group == MaskGroup.BLOCK && !pattern.structured();
        float[] blockScores = flat ? new float[rows * Math.min(block, cols)] : null;
        ForkJoinPool pool = threads > 1 && nTiles > 1 ? new ForkJoinPool(threads) : null;
        try {
            for (int i1 = 0; i1 < cols; i1 += block) {
                int from = i1;
                int to = Math.min(cols, i1 + block);
                if (flat) {
                    each(pool, tiles, t -> t.scores(from, to, blockScores));
                    markBlock(blockScores, rows, to - from, (long) pattern.prunedIn(from, to) * rows, tiles, from);
                }
                each(pool, tiles, t -> t.block(from, to, !flat));
            }
        } finally {
            if (pool != null) {
                pool.shutdownNow();
            }
        }
        double[] losses = new double[nTiles];
        for (int t = 0; t < nTiles; t++) {
            losses[t] = tiles[t].loss;
        }
        double loss = 0;
        for (double l : losses) {
            loss += l;
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) wd[i];
        }
        return new Result(lambda, raised, deadInputs, loss / 2);
    }

    /**
     * U with {@code Uᵀ·U = (H + λI)⁻¹}, upper triangular; null when {@code H + λI} or its inverse
     * fails to factor (not positive definite in floating point).
     */
    static DMatrixRMaj upperCholeskyOfInverse(DMatrixRMaj h, double lambda) {
        int n = h.numRows;
        DMatrixRMaj a = h.copy();
        for (int j = 0; j < n; j++) {
            a.add(j, j, lambda);
        }
        LinearSolverDense<DMatrixRMaj> chol = LinearSolverFactory_DDRM.chol(n);
        if (!chol.setA(a)) {
            return null;
        }
        DMatrixRMaj inv = new DMatrixRMaj(n, n);
        chol.invert(inv);
        // the inverse is symmetric in exact arithmetic; make it so in floating point before factoring
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                double s = 0.5 * (inv.get(i, j) + inv.get(j, i));
                inv.set(i, j, s);
                inv.set(j, i, s);
            }
        }
        CholeskyDecomposition_F64<DMatrixRMaj> upper = DecompositionFactory_DDRM.chol(n, false);
        if (!upper.decompose(inv)) {
            return null;
        }
        DMatrixRMaj u = upper.getT(null);
        for (int j = 0; j < n; j++) {
            double d = u.get(j, j);
            if (!(d > 0) || !Double.isFinite(d)) {
                return null;
            }
            for (int i = j + 1; i < n; i++) {
                u.set(i, j, 0); // the factor is upper triangular: nothing below the diagonal
            }
        }
        return u;
    }

    /** Runs {@code body} on every tile, in parallel when there is a pool. */
    private static void each(ForkJoinPool pool, Tile[] tiles, java.util.function.Consumer<Tile> body) {
        if (pool == null) {
            for (Tile t : tiles) {
                body.accept(t);
            }
            return;
        }
        List<Future<?>> jobs = new ArrayList<>(tiles.length);
        for (Tile t : tiles) {
            jobs.add(pool.submit(() -> body.accept(t)));
        }
        try {
            for (Future<?> f : jobs) {
                f.get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CriaException("SparseGPT interrupted");
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException re) {
                throw re;
            }
            throw new IllegalStateException(c);
        }
    }

    /**
     * One threshold for the whole block (the authors' reference): the {@code count} smallest of
     * {@code scores} (rows × width, row-major) are marked pruned in their rows' tiles.
     */
    private static void markBlock(float[] scores, int rows, int width, long count, Tile[] tiles, int from) {
        int n = rows * width;
        long[] keys = new long[n];
        for (int i = 0; i < n; i++) {
            keys[i] = ((long) Float.floatToIntBits(Math.abs(scores[i]) + 0.0f) << 32) | i;
        }
        java.util.Arrays.sort(keys);
        for (Tile t : tiles) {
            for (boolean[] p : t.pruned) {
                java.util.Arrays.fill(p, from, from + width, false);
            }
        }
        for (int k = 0; k < Math.min(count, n); k++) {
            int i = (int) keys[k];
            int r = i / width;
            tiles[r / TILE].pruned[r % TILE][from + i % width] = true;
        }
    }

    /** A few rows swept together (they share the reads of U); rows of different tiles never interact. */
    private static final class Tile {
        final double[] w;
        final double[] u;
        final int cols;
        final int lo;
        final int hi;
        final PrunePattern pattern;
        final int block;
        final double[] err;
        final float[] score;
        final long[] scratch;
        final boolean[][] pruned;
        double loss;

        Tile(double[] w, double[] u, int cols, int lo, int hi, PrunePattern pattern, int block) {
            this.w = w;
            this.u = u;
            this.cols = cols;
            this.lo = lo;
            this.hi = hi;
            this.pattern = pattern;
            this.block = block;
            this.err = new double[(hi - lo) * block];
            this.score = new float[cols];
            this.scratch = new long[Math.max(block, pattern.structured() ? pattern.m() : 1)];
            this.pruned = new boolean[hi - lo][cols];
        }

        /** This tile's OBS errors of the block's current weights into {@code out} (rows × width of the whole matrix). */
        void scores(int i1, int i2, float[] out) {
            for (int r = lo; r < hi; r++) {
                SparseGpt.scores(w, r * cols, u, cols, i1, i2, score);
                System.arraycopy(score, i1, out, r * (i2 - i1), i2 - i1);
            }
        }

        /**
         * Columns [i1, i2) of the tile's rows: masks chosen (per row when {@code chooseRows}, else
         * already marked), weights pruned with OBS updates inside the block, then the lazy update
         * of every later column.
         */
        void block(int i1, int i2, boolean chooseRows) {
            int n = hi - lo;
            for (int r = 0; r < n; r++) {
                int row = (lo + r) * cols;
                if (chooseRows && !pattern.structured()) {
                    SparseGpt.scores(w, row, u, cols, i1, i2, score);
                    PruneMasks.markRow(score, 0, i1, i2, pattern, scratch, pruned[r]);
                }
                for (int i = i1; i < i2; i++) {
                    if (pattern.structured() && i % pattern.m() == 0) {
                        int g2 = Math.min(i2, i + pattern.m());
                        SparseGpt.scores(w, row, u, cols, i, g2, score);
                        PruneMasks.markRow(score, 0, i, g2, pattern, scratch, pruned[r]);
                    }
                    double wi = w[row + i];
                    double q = pruned[r][i] ? 0 : wi;
                    double d = u[i * cols + i];
                    double e = (wi - q) / d;
                    loss += e * e;
                    w[row + i] = q;
                    err[r * block + (i - i1)] = e;
                    if (e != 0) {
                        int ur = i * cols;
                        for (int j = i + 1; j < i2; j++) {
                            w[row + j] -= e * u[ur + j];
                        }
                    }
                }
            }
            // lazy update of the columns after the block: W[:, i2:] -= Err · U[i1:i2, i2:]
            if (i2 < cols) {
                for (int k = 0; k < i2 - i1; k++) {
                    int ur = (i1 + k) * cols;
                    for (int r = 0; r < n; r++) {
                        double e = err[r * block + k];
                        if (e != 0) {
                            int row = (lo + r) * cols;
                            for (int j = i2; j < cols; j++) {
                                w[row + j] -= e * u[ur + j];
                            }
                        }
                    }
                }
            }
        }
    }

    /** score[j] = w_j² / U_jj² for j in [from, to) of the row starting at w[row]. */
    private static void scores(double[] w, int row, double[] u, int cols, int from, int to, float[] score) {
        for (int j = from; j < to; j++) {
            double d = u[j * cols + j];
            double v = w[row + j];
            score[j] = (float) (v * v / (d * d));
        }
    }
}
