// What to generate: how many tokens, how to sample, where to stop.
package cria.engine;

import cria.sample.SamplerParams;
import java.util.List;
import java.util.Map;

/**
 * Settings of one generation.
 *
 * @param maxTokens   stop after this many generated tokens (or earlier at EOS/EOT or a stop string)
 * @param sampler     how each token is chosen ({@link SamplerParams#greedy()} for greedy)
 * @param stop        strings that end the generation; the text returned stops before them
 * @param ignoreEos   keep going past end-of-generation tokens (for benchmarks)
 * @param logitBias   added to the logit of each token id before sampling (OpenAI's {@code logit_bias}; -100
 *                    in effect bans a token); empty for none. Ids are checked against the vocabulary when
 *                    the generation starts.
 * @param topLogprobs -1: no log-probabilities; 0 to {@value #MAX_TOP_LOGPROBS}: each generated token comes
 *                    with its log-probability and that many of the most likely alternatives ({@link TokenLogprob})
 */
public record GenerateOptions(int maxTokens, SamplerParams sampler, List<String> stop, boolean ignoreEos,
                              Map<Integer, Float> logitBias, int topLogprobs) {

    /** The most alternatives {@link #topLogprobs} may ask for (OpenAI's limit). */
    public static final int MAX_TOP_LOGPROBS = 20;

    /** Settings without logit bias or log-probabilities. */
    public GenerateOptions(int maxTokens, SamplerParams sampler, List<String> stop, boolean ignoreEos) {
        this(maxTokens, sampler, stop, ignoreEos, Map.of(), -1);
    }

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
        logitBias = logitBias == null ? Map.of() : Map.copyOf(logitBias);
        for (var e : logitBias.entrySet()) {
            if (e.getKey() < 0 || !Float.isFinite(e.getValue())) {
                throw new IllegalArgumentException("logit bias " + e.getKey() + " -> " + e.getValue()
                        + ": ids must be non-negative and biases finite");
            }
        }
        if (topLogprobs < -1 || topLogprobs > MAX_TOP_LOGPROBS) {
            throw new IllegalArgumentException("top logprobs must be -1 (none) or 0.." + MAX_TOP_LOGPROBS + ", got " + topLogprobs);
        }
    }

    /** True when each token comes with its log-probability. */
    public boolean wantsLogprobs() {
        return topLogprobs >= 0;
    }

    /** 128 tokens, llama.cpp's default sampling, no stop strings. */
    public static GenerateOptions defaults() {
        return new GenerateOptions(128, SamplerParams.defaults(), List.of(), false);
    }

    /** A copy with at most {@code n} generated tokens. */
    public GenerateOptions withMaxTokens(int n) {
        return new GenerateOptions(n, sampler, stop, ignoreEos, logitBias, topLogprobs);
    }

    /** A copy with other sampling settings. */
    public GenerateOptions withSampler(SamplerParams p) {
        return new GenerateOptions(maxTokens, p, stop, ignoreEos, logitBias, topLogprobs);
    }

    /** A copy with these stop strings (none: an empty list). */
    public GenerateOptions withStop(List<String> s) {
        return new GenerateOptions(maxTokens, sampler, s, ignoreEos, logitBias, topLogprobs);
    }

    /** A copy that does (or does not) keep going past end-of-generation tokens. */
    public GenerateOptions withIgnoreEos(boolean b) {
        return new GenerateOptions(maxTokens, sampler, stop, b, logitBias, topLogprobs);
    }

    /** A copy with this logit bias (token id to the value added to its logit). */
    public GenerateOptions withLogitBias(Map<Integer, Float> bias) {
        return new GenerateOptions(maxTokens, sampler, stop, ignoreEos, bias, topLogprobs);
    }

    /** A copy that reports log-probabilities with {@code top} alternatives per token (-1: none). */
    public GenerateOptions withLogprobs(int top) {
        return new GenerateOptions(maxTokens, sampler, stop, ignoreEos, logitBias, top);
    }
}
