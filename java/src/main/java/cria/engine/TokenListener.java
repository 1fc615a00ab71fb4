// Receives each generated token as it is produced, with the text it completes.
package cria.engine;

/** Called once per generated token. */
@FunctionalInterface
public interface TokenListener {
    /**
     * @param token the token id, or -1 for a last call carrying text held back until the end
     *              (an unfinished character, or the start of a stop string that never completed)
     * @param text  the text this token completes: may be empty (a character still incomplete, or
     *              text held back because it may start a stop string) and may cover earlier tokens
     * @return false to stop generating
     */
    boolean onToken(int token, String text);

    /**
     * As {@link #onToken(int, String)}, with the token's log-probabilities when the generation asked
     * for them ({@link GenerateOptions#topLogprobs()} of 0 or more); the engine calls this one. The
     * default ignores {@code logprob} (null when not asked, and for the final call with token -1).
     */
    default boolean onToken(int token, String text, TokenLogprob logprob) {
        return onToken(token, text);
    }
}
