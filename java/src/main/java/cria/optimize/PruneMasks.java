// Choosing which weights of a row to zero: the smallest scores per row or per N:M group; magnitude pruning.
package cria.optimize;

import java.util.Arrays;

/**
 * Mask selection shared by the pruning methods. A matrix is {@code rows × cols}, row-major, a
 * row holding one output's weights over all inputs (ggml's layout: {@code ne[0]} = cols). The
 * comparison group is the row: each row loses exactly its share (or, for N:M, each aligned group
 * of M inputs keeps its N best), whatever the other rows look like. Ties go to the lower input
 * index (it is pruned first), so results do not depend on the sort.
 */
public final class PruneMasks {
    private PruneMasks() {}

    /**
     * Marks in {@code pruned[j]} ({@code j} in {@code [from, to)}) the {@code count} inputs whose
     * {@code score[off + j]} is smallest; the others in the range are cleared. Scores are
     * compared as non-negative floats (NaN counts as largest: kept).
     *
     * @param scratch at least {@code to - from} longs
     */
    public static void markSmallest(float[] score, int off, int from, int to, int count, long[] scratch, boolean[] pruned) {
        int len = to - from;
        if (count <= 0 || len <= 0) {
            Arrays.fill(pruned, from, Math.max(from, to), false);
            return;
        }
        for (int j = 0; j < len; j++) {
            float s = Math.abs(score[off + from + j]) + 0.0f; // -0 counts as +0
            // non-negative float bits order as the values do; the index breaks ties, lower first
            scratch[j] = ((long) Float.floatToIntBits(s) << 32) | j;
        }
        Arrays.sort(scratch, 0, len);
        Arrays.fill(pruned, from, to, false);
        for (int k = 0; k < Math.min(count, len); k++) {
            pruned[from + (int) scratch[k]] = true;
        }
    }

    /**
     * Marks what {@code pattern} prunes among the inputs {@code [from, to)} of one row whose scores
     * start at {@code score[off]}: the range's share of the row (unstructured) or, in each N:M
     * group, the M−N smallest ({@code from} and {@code to} then multiples of M).
     */
    public static void markRow(float[] score, int off, int from, int to, PrunePattern pattern, long[] scratch, boolean[] pruned) {
        if (pattern.structured()) {
            int m = pattern.m();
            for (int g = from; g < to; g += m) {
                markSmallest(score, off, g, Math.min(g + m, to), m - pattern.n(), scratch, pruned);
            }
        } else {
            markSmallest(score, off, from, to, pattern.prunedIn(from, to), scratch, pruned);
        }
    }

    /**
     * Zeroes in every row of {@code w} the weights {@code pattern} prunes, choosing by {@code score}
     * (same layout as {@code w}).
     */
    public static void pruneByScore(float[] w, float[] score, int rows, int cols, PrunePattern pattern) {
        checkShape(w, rows, cols);
        checkShape(score, rows, cols);
        long[] scratch = new long[cols];
        boolean[] pruned = new boolean[cols];
        for (int r = 0; r < rows; r++) {
            int off = r * cols;
            markRow(score, off, 0, cols, pattern, scratch, pruned);
            for (int j = 0; j < cols; j++) {
                if (pruned[j]) {
                    w[off + j] = 0f;
                }
            }
        }
    }

    /** Magnitude pruning: in each row, the weights of smallest |w| are zeroed (no calibration data). */
    public static void magnitude(float[] w, int rows, int cols, PrunePattern pattern) {
        float[] score = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            score[i] = Math.abs(w[i]);
        }
        pruneByScore(w, score, rows, cols, pattern);
    }

    /** The number of weights that are exactly zero. */
    public static long zeros(float[] w) {
        long z = 0;
        for (float v : w) {
            if (v == 0f) {
                z++;
            }
        }
        return z;
    }

    static void checkShape(float[] a, int rows, int cols) {
        if (rows < 0 || cols < 0 || (long) rows * cols != a.length) {
            throw new IllegalArgumentException("a " + rows + " x " + cols + " matrix needs " + (long) rows * cols + " values, got " + a.length);
        }
    }
}
