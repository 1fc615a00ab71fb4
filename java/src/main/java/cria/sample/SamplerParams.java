// Sampling settings: temperature, top-k/top-p/min-p, penalties, seed (llama.cpp's defaults and meanings).
package cria.sample;

/**
 * How to pick the next token. A temperature of 0 is greedy (a negative one is refused by
 * {@link #validate}, as a likely typo rather than a request): the highest logit after
 * penalties. Otherwise the chain is llama.cpp's: penalties, top-k, top-p, min-p, temperature,
 * then a seeded draw. A filter is off at its neutral value (top-k 0, top-p 1, min-p 0,
 * penalties 1/0/0).
 *
 * @param temperature      0 = greedy
 * @param topK             keep the k most likely (0 = all)
 * @param topP             keep the smallest set whose probability reaches p (1 = all)
 * @param minP             keep tokens at least minP times as likely as the best (0 = all)
 * @param repeatPenalty    divide positive (multiply negative) logits of recent tokens (1 = off)
 * @param repeatLastN      how many recent tokens the penalties look at (0 = none, -1 = all)
 * @param frequencyPenalty subtract this times the recent count of a token
 * @param presencePenalty  subtract this once from tokens that occurred recently
 * @param seed             random seed; the same seed gives the same draws
 */
public record SamplerParams(float temperature, int topK, float topP, float minP, float repeatPenalty, int repeatLastN,
                            float frequencyPenalty, float presencePenalty, long seed) {

    /** llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties, seed 0. */
    public static SamplerParams defaults() {
        return new SamplerParams(0.8f, 40, 0.95f, 0.05f, 1.0f, 64, 0f, 0f, 0L);
    }

    /** Greedy decoding. */
    public static SamplerParams greedy() {
        return defaults().withTemperature(0);
    }

    /** True when the highest logit is taken (temperature 0). */
    public boolean isGreedy() {
        return temperature <= 0;
    }

    /** A copy with temperature {@code v} (0: greedy). */
    public SamplerParams withTemperature(float v) {
        return new SamplerParams(v, topK, topP, minP, repeatPenalty, repeatLastN, frequencyPenalty, presencePenalty, seed);
    }

    /** A copy keeping the {@code v} most likely tokens (0: all). */
    public SamplerParams withTopK(int v) {
        return new SamplerParams(temperature, v, topP, minP, repeatPenalty, repeatLastN, frequencyPenalty, presencePenalty, seed);
    }

    /** A copy with nucleus sampling at {@code v} (1: off). */
    public SamplerParams withTopP(float v) {
        return new SamplerParams(temperature, topK, v, minP, repeatPenalty, repeatLastN, frequencyPenalty, presencePenalty, seed);
    }

    /** A copy with min-p {@code v} (0: off). */
    public SamplerParams withMinP(float v) {
        return new SamplerParams(temperature, topK, topP, v, repeatPenalty, repeatLastN, frequencyPenalty, presencePenalty, seed);
    }

    /** A copy with repetition penalty {@code v} (1: off). */
    public SamplerParams withRepeatPenalty(float v) {
        return new SamplerParams(temperature, topK, topP, minP, v, repeatLastN, frequencyPenalty, presencePenalty, seed);
    }

    /** A copy whose penalties look at the last {@code v} tokens (0: none, -1: all). */
    public SamplerParams withRepeatLastN(int v) {
        return new SamplerParams(temperature, topK, topP, minP, repeatPenalty, v, frequencyPenalty, presencePenalty, seed);
    }

    /** A copy with frequency penalty {@code v} (0: off). */
    public SamplerParams withFrequencyPenalty(float v) {
        return new SamplerParams(temperature, topK, topP, minP, repeatPenalty, repeatLastN, v, presencePenalty, seed);
    }

    /** A copy with presence penalty {@code v} (0: off). */
    public SamplerParams withPresencePenalty(float v) {
        return new SamplerParams(temperature, topK, topP, minP, repeatPenalty, repeatLastN, frequencyPenalty, v, seed);
    }

    /** A copy drawing from seed {@code v}. */
    public SamplerParams withSeed(long v) {
        return new SamplerParams(temperature, topK, topP, minP, repeatPenalty, repeatLastN, frequencyPenalty, presencePenalty, v);
    }

    /** Throws IllegalArgumentException naming the first setting out of range. */
    public SamplerParams validate() {
        if (Float.isNaN(temperature) || temperature < 0 || temperature > 100) {
            throw new IllegalArgumentException("temperature must be between 0 and 100, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top-k must be 0 (off) or positive, got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("min-p must be in [0, 1], got " + minP);
        }
        // Penalties scale or shift logits: infinite or NaN ones turn a whole distribution into NaN.
        if (!(repeatPenalty > 0 && repeatPenalty <= 1000)) {
            throw new IllegalArgumentException("repeat penalty must be positive and at most 1000, got " + repeatPenalty);
        }
        if (!(Math.abs(frequencyPenalty) <= 1000)) {
            throw new IllegalArgumentException("frequency penalty must be between -1000 and 1000, got " + frequencyPenalty);
        }
        if (!(Math.abs(presencePenalty) <= 1000)) {
            throw new IllegalArgumentException("presence penalty must be between -1000 and 1000, got " + presencePenalty);
        }
        if (repeatLastN < -1) {
            throw new IllegalArgumentException("repeat-last-n must be -1 (all), 0 (none) or positive, got " + repeatLastN);
        }
        return this;
    }
}
