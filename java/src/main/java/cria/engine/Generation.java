// The outcome of one generation: text, tokens, why it ended, and how long each phase took.
package cria.engine;

/**
 * @param text          the generated text (stop strings removed)
 * @param tokens        the generated token ids (including a final EOS/EOT when one ended it)
 * @param finishReason  why generation ended
 * @param promptTokens  tokens evaluated for the prompt (after any reused prefix)
 * @param promptNanos   time spent evaluating the prompt
 * @param generateNanos time spent generating
 * @param logprobs      one entry per generated token when the generation asked for them, else empty
 */
public record Generation(String text, int[] tokens, FinishReason finishReason, int promptTokens, long promptNanos,
                         long generateNanos, java.util.List<TokenLogprob> logprobs) {

    public Generation {
        logprobs = logprobs == null ? java.util.List.of() : java.util.List.copyOf(logprobs);
    }

    /** A generation without log-probabilities. */
    public Generation(String text, int[] tokens, FinishReason finishReason, int promptTokens, long promptNanos, long generateNanos) {
        this(text, tokens, finishReason, promptTokens, promptNanos, generateNanos, java.util.List.of());
    }

    /** Why a generation ended. */
    public enum FinishReason {
        /** An end-of-generation token or a stop string. */
        STOP,
        /** The token limit or the end of the context. */
        LENGTH,
        /** The listener asked to stop, or the thread was interrupted. */
        CANCELLED;

        /** Lower-case name as used in JSON output. */
        public String label() {
            return name().toLowerCase();
        }
    }

    /** Prompt tokens per second. */
    public double promptTokensPerSecond() {
        return promptNanos == 0 ? 0 : promptTokens * 1e9 / promptNanos;
    }

    /** Generated tokens per second (the first token's sampling is counted from the end of the prompt). */
    public double tokensPerSecond() {
        return generateNanos == 0 ? 0 : tokens.length * 1e9 / generateNanos;
    }
}
