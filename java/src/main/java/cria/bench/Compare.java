// How a CUDA kernel's output is judged against the ref backend's: relative RMS error plus a bound on every element.
package cria.bench;

import java.util.Locale;

/**
 * The comparison of the op conformance tests and of {@code cria kernels}: the relative RMS error
 * ||got - want|| / ||want|| must be at most {@code tol}, and no single element may be off by more
 * than {@code max(50 tol, 1e-4)} times the RMS of {@code want} (a few wrong elements hide in an
 * RMS over many). A NaN where ref has none (an unwritten, NaN-poisoned output) always fails.
 */
public final class Compare {
    private Compare() {}

    /** ||a - b|| / ||b|| over the first n values; infinite when exactly one of them holds a NaN somewhere. */
    public static double relErr(float[] a, float[] b, int n) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < n; i++) {
            if (Float.isNaN(a[i]) != Float.isNaN(b[i])) {
                return Double.POSITIVE_INFINITY;
            }
            double d = (double) a[i] - b[i];
            num += d * d;
            den += (double) b[i] * b[i];
        }
        return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
    }

    /** Index of the first element that differs by more than tol relative to the RMS of b, or -1. */
    public static int firstBad(float[] a, float[] b, int n, double tol) {
        double den = 0;
        for (int i = 0; i < n; i++) {
            den += (double) b[i] * b[i];
        }
        double rms = Math.sqrt(den / Math.max(1, n));
        for (int i = 0; i < n; i++) {
            if (!(Math.abs((double) a[i] - b[i]) <= tol * Math.max(rms, 1e-30))) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Null when {@code got} passes against {@code want} (rows of {@code cols} values), else one line:
     * the error, the limit and the first bad element as (row, col).
     */
    public static String check(float[] got, float[] want, int n, int cols, double tol) {
        double e = relErr(got, want, n);
        int bad = firstBad(got, want, n, Math.max(tol * 50, 1e-4));
        if (e <= tol && bad < 0) {
            return null;
        }
        int at = Math.max(bad, 0);
        return String.format(Locale.ROOT, "relative error %.3g (limit %.3g); first bad element row %d col %d: cuda %s vs ref %s",
                e, tol, at / cols, at % cols, got[at], want[at]);
    }
}
