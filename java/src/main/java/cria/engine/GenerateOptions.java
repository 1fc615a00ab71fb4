// What to generate: how many tokens, how to sample, where to stop.
package cria.engine;

import cria.sample.SamplerParams;
import java.util.List;

/**
 * Settings of one generation.
 *
 * @param maxTokens   stop after this many generated tokens (or earlier at EOS/EOT or a stop string)
 * @param sampler     how each token is chosen ({@link SamplerParams#greedy()} for greedy)
 * @param stop        strings that end the generation; the text returned stops before them
 * @param ignoreEos   keep going past end-of-generation tokens (for benchmarks)
 */
public record GenerateOptions(int maxTokens, SamplerParams sampler, List<String> stop, boolean ignoreEos) {

    public GenerateOptions {
        if (maxTokens < 0) {
            throw new IllegalArgumentException("maxTokens must not be negative");
        }
        stop = stop == null ? List.of() : List.copyOf(stop);
        for (String s : stop) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("stop strings must not be empty");
            }
        }
        sampler.validate();
    }

    /** 128 tokens, llama.cpp's default sampling, no stop strings. */
    public static GenerateOptions defaults() {
        return new GenerateOptions(128, SamplerParams.defaults(), List.of(), false);
    }

    /** A copy with at most {@code n} generated tokens. */
    public GenerateOptions withMaxTokens(int n) {
        return new GenerateOptions(n, sampler, stop, ignoreEos);
    }

    /** A copy with other sampling settings. */
    public GenerateOptions withSampler(SamplerParams p) {
        return new GenerateOptions(maxTokens, p, stop, ignoreEos);
    }

    /** A copy with these stop strings (none: an empty list). */
    public GenerateOptions withStop(List<String> s) {
        return new GenerateOptions(maxTokens, sampler, s, ignoreEos);
    }

    /** A copy that does (or does not) keep going past end-of-generation tokens. */
    public GenerateOptions withIgnoreEos(boolean b) {
        return new GenerateOptions(maxTokens, sampler, stop, b);
    }
}
