// What a pruning keeps: an unstructured fraction of each output row, or N of every M consecutive inputs (N:M).
package cria.optimize;

import cria.CriaException;
import java.util.Locale;

/**
 * The sparsity pattern of a pruning, applied to each output row of a matrix (the comparison
 * group of magnitude and Wanda pruning). Unstructured: {@link #prunedIn(int, int)} gives how many
 * of a row's inputs are set to zero, exactly {@code floor(cols * sparsity)} per row. N:M: every
 * group of {@code m} consecutive inputs (aligned to multiples of {@code m}) keeps its {@code n}
 * largest and zeroes the other {@code m - n}, the pattern sparse tensor cores accelerate (2:4).
 *
 * @param sparsity the fraction of each row set to zero, in [0, 1)
 * @param n        inputs kept per group (N:M only; 0 when unstructured)
 * @param m        group size (N:M only; 0 when unstructured)
 */
public record PrunePattern(double sparsity, int n, int m) {
    /** The largest group size accepted for N:M. */
    public static final int MAX_GROUP = 1 << 16;

    public PrunePattern {
        if (!(sparsity >= 0 && sparsity < 1)) {
            throw new CriaException("sparsity must be at least 0 and below 1, got " + sparsity);
        }
        if (m != 0 && (n < 1 || n >= m || m > MAX_GROUP)) {
            throw new CriaException("pattern " + n + ":" + m + " must keep N of M with 1 <= N < M <= " + MAX_GROUP);
        }
    }

    /** Zero {@code sparsity} of every output row, wherever the smallest scores are. */
    public static PrunePattern unstructured(double sparsity) {
        return new PrunePattern(sparsity, 0, 0);
    }

    /** Keep {@code n} of every {@code m} consecutive inputs in each row. */
    public static PrunePattern nOfM(int n, int m) {
        if (m < 2 || m > MAX_GROUP || n < 1 || n >= m) {
            throw new CriaException("pattern " + n + ":" + m + " must keep N of M with 1 <= N < M <= " + MAX_GROUP);
        }
        return new PrunePattern((m - n) / (double) m, n, m);
    }

    /** Parses "N:M" (e.g. "2:4"); a one-line error for anything else. */
    public static PrunePattern parse(String text) {
        String t = text == null ? "" : text.strip();
        int colon = t.indexOf(':');
        if (colon <= 0 || colon == t.length() - 1) {
            throw new CriaException("--pattern must be N:M (keep N of every M inputs), e.g. 2:4; got '" + text + "'");
        }
        int n;
        int m;
        try {
            n = Integer.parseInt(t.substring(0, colon));
            m = Integer.parseInt(t.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new CriaException("--pattern must be N:M with whole numbers, e.g. 2:4; got '" + text + "'");
        }
        if (m < 2 || m > MAX_GROUP || n < 1 || n >= m) {
            throw new CriaException("--pattern " + t + " must keep N of M inputs with 1 <= N < M <= " + MAX_GROUP + ", e.g. 2:4");
        }
        return nOfM(n, m);
    }

    /** True for N:M. */
    public boolean structured() {
        return m != 0;
    }

    /**
     * How many of the inputs {@code [from, to)} of a row are zeroed, so that the counts of
     * consecutive ranges add up to exactly {@code floor(cols * sparsity)} for the whole row
     * (unstructured; for N:M, ranges must be aligned to the groups).
     */
    public int prunedIn(int from, int to) {
        if (structured()) {
            return (to - from) / m * (m - n);
        }
        return cut(to) - cut(from);
    }

    private int cut(int i) {
        // a small tolerance so that 0.5 * 256 is 128 whatever the rounding of the decimal sparsity
        return (int) Math.floor(i * sparsity + 1e-9);
    }

    /** Checks that rows of {@code cols} inputs can take this pattern; a one-line error naming {@code what} if not. */
    public void check(int cols, String what) {
        if (structured() && cols % m != 0) {
            throw new CriaException(what + " has rows of " + cols + " inputs, not a multiple of " + m + ": pattern " + this
                    + " needs groups of " + m + " to tile every row; choose another M or an unstructured --sparsity");
        }
    }

    /** "2:4" or "50%". */
    @Override
    public String toString() {
        return structured() ? n + ":" + m : String.format(Locale.ROOT, "%.4g%%", sparsity * 100);
    }
}
