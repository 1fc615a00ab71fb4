// A backend capability: choose tokens from logits where they are, so only token ids cross to the host.
package cria.backend;

/**
 * Token selection on the device. It reproduces {@code cria.sample.Sampler} exactly (same
 * candidates, same order, same double-precision arithmetic, the same random draw) for settings
 * without penalties, greedy or with a top-k between 1 and {@link #MAX_TOP_K}; the engine keeps
 * using the host sampler for anything else (penalties, top-k off, larger k) after downloading
 * the logits. The random draw stays on the host: the caller passes the uniform number in [0, 1)
 * its {@code Sampler} would have drawn ({@code SplittableRandom.nextDouble()}), so a seed gives
 * the same tokens on every backend (up to ulp-level ties between the host's and the device's
 * {@code exp}).
 * <p>{@code cria.engine.Session} uses it per generated token when the settings allow (see there);
 * batches still sample on the host (their rows may each have other settings).
 */
public interface DeviceSampler {

    /** Largest top-k handled on the device. */
    int MAX_TOP_K = 1024;

    /**
     * True when {@link #sample} matches the host sampler for these settings: temperature &lt;= 0
     * (greedy) or 1 &lt;= topK &lt;= MAX_TOP_K, and no penalties (the caller checks those).
     */
    default boolean supports(float temperature, int topK) {
        return temperature <= 0 || (topK >= 1 && topK <= MAX_TOP_K);
    }

    /** Writes the argmax (lowest id on ties) of logits rows [0, rows) into {@code out[0 .. rows)}. */
    void argmax(Buf logits, int rows, int vocab, int[] out);

    /**
     * Samples one token per logits row [0, rows): top-k, then top-p, min-p and temperature over the
     * k candidates, then the draw {@code uniforms[r] * total}. Greedy when temperature &lt;= 0.
     *
     * @throws IllegalArgumentException when {@link #supports} is false for these settings
     */
    void sample(Buf logits, int rows, int vocab, float temperature, int topK, float topP, float minP, double[] uniforms,
                int[] out);

    /**
     * Writes softmax(logits / temperature) of rows [0, rows) into {@code probs} (which may be
     * {@code logits}), for log-probabilities and perplexity without downloading logits.
     */
    void softmax(Buf logits, int rows, int vocab, float temperature, Buf probs);
}
