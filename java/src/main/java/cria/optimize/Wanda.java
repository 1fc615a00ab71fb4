// Wanda pruning (weights and activations): each weight scored by |W_ij| times the norm of its input over the calibration tokens.
package cria.optimize;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Pruning by weights and activations (Sun et al., 2023): weight {@code W_ij} (output i, input j)
 * scores {@code |W_ij| · ‖X_j‖₂}, the norm over every calibration token of input feature j, and
 * each output row loses its lowest-scored weights (or the M−N lowest of every N:M group). An
 * input that is large on the calibration text protects its weights even when they are small.
 * No weight is updated: the kept ones stay as they are.
 */
public final class Wanda {
    private Wanda() {}

    /** Accumulates Σ x_j² per input feature (in double) over the calibration rows shown to it. */
    public static final class Norms {
        private final double[] sumSquares;
        private long rows;

        /** Norms of {@code cols} input features, all zero. */
        public Norms(int cols) {
            this.sumSquares = new double[cols];
        }

        /** Adds {@code n} rows of {@link #cols()} floats (row-major, float32, native order) from {@code x}. */
        public void add(MemorySegment x, int n) {
            int cols = sumSquares.length;
            long need = (long) n * cols * Float.BYTES;
            if (n < 0 || x.byteSize() < need) {
                throw new IllegalArgumentException(n + " rows of " + cols + " floats need " + need + " bytes, got " + x.byteSize());
            }
            for (int t = 0; t < n; t++) {
                long base = (long) t * cols * Float.BYTES;
                for (int j = 0; j < cols; j++) {
                    double v = x.get(ValueLayout.JAVA_FLOAT_UNALIGNED, base + (long) j * Float.BYTES);
                    sumSquares[j] += v * v;
                }
            }
            rows += n;
        }

        /** Adds {@code n} rows of {@link #cols()} values from {@code x} (row-major). */
        public void add(float[] x, int n) {
            add(MemorySegment.ofArray(x), n);
        }

        /** Input features. */
        public int cols() {
            return sumSquares.length;
        }

        /** Calibration rows seen. */
        public long rows() {
            return rows;
        }

        /** ‖X_j‖₂ for every input feature j. */
        public float[] norms() {
            float[] out = new float[sumSquares.length];
            for (int j = 0; j < out.length; j++) {
                out[j] = (float) Math.sqrt(sumSquares[j]);
            }
            return out;
        }
    }

    /**
     * Prunes {@code w} ({@code rows × cols}, row-major: row = output) in place by Wanda's score
     * with the input norms {@code norms} ({@code cols} values).
     */
    public static void prune(float[] w, int rows, int cols, float[] norms, PrunePattern pattern) {
        PruneMasks.checkShape(w, rows, cols);
        if (norms.length != cols) {
            throw new IllegalArgumentException("norms of " + norms.length + " inputs for rows of " + cols);
        }
        float[] score = new float[w.length];
        for (int r = 0; r < rows; r++) {
            int off = r * cols;
            for (int j = 0; j < cols; j++) {
                score[off + j] = Math.abs(w[off + j]) * norms[j];
            }
        }
        PruneMasks.pruneByScore(w, score, rows, cols, pattern);
    }
}
