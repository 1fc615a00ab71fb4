// Rotary position embedding parameters, and the angle of each rotated pair (shared by every backend).
package cria.backend;

/**
 * How a model rotates its queries and keys. Pair {@code i} (of {@code dims / 2}) at position
 * {@code p} turns by {@code p * freqScale * base^(-2i/dims) / factors[i]}: {@code freqScale} is
 * linear scaling (1 / factor), {@code factors} are llama3's per-frequency factors
 * ({@code rope_freqs.weight}) or null. {@code neox} pairs element i with i + dims/2 instead of
 * adjacent elements (llama uses adjacent pairs). Only the first {@code dims} values of each head
 * rotate (partial rotary when dims &lt; head size).
 */
public record Rope(int dims, float base, float freqScale, float[] factors, boolean neox) {

    /** Inverse frequencies of the pairs, {@code freqScale * base^(-2i/dims) / factors[i]}, in double. */
    public double[] inverseFrequencies() {
        double[] f = new double[dims / 2];
        for (int i = 0; i < f.length; i++) {
            double inv = Math.pow(base, -2.0 * i / dims) * freqScale;
            if (factors != null) {
                inv /= factors[i];
            }
            f[i] = inv;
        }
        return f;
    }
}
