// The per-sequence side of generation: sample, record, detect the end, stream text. Shared by Session and BatchGenerator.
package cria.engine;

import cria.sample.Sampler;
import cria.tokenizer.StreamDecoder;
import cria.tokenizer.Tokenizer;
import java.util.Arrays;

/**
 * Turns logits into tokens and text for one generating sequence: the sampler (seeded, with the
 * sequence's recent tokens for the penalties), end-of-generation tokens, stop strings, the
 * streaming decoder and the listener. The same object drives a lone {@link Session} and a
 * sequence inside a batch, which is why batching changes speed and never text.
 */
final class TokenStream {
    private final Tokenizer tok;
    private final GenerateOptions options;
    private final TokenListener listener;
    private final Sampler sampler;
    private final StreamDecoder decoder;
    private final StopMatcher stops;
    private final StringBuilder text = new StringBuilder();
    private int[] out = new int[16];
    private int n;
    private Generation.FinishReason reason;
    /** Token ids and biases of the logit bias, applied to each row before sampling. */
    private final int vocab;
    private final int[] biasIds;
    private final float[] biasValues;
    private final java.util.List<TokenLogprob> logprobs;
    /** The log-probabilities of the token being added (null when not asked). */
    private TokenLogprob pending;

    /** {@code history[0, historyLen)} are the sequence's tokens so far (the penalties look at the last ones). */
    TokenStream(Tokenizer tok, int vocab, GenerateOptions options, TokenListener listener, int[] history, int historyLen) {
        this.tok = tok;
        this.options = options;
        this.listener = listener;
        this.vocab = vocab;
        this.sampler = new Sampler(options.sampler(), vocab);
        int rl = options.sampler().repeatLastN();
        int window = rl < 0 ? historyLen : Math.min(historyLen, rl);
        for (int i = historyLen - window; i < historyLen; i++) {
            sampler.accept(history[i]);
        }
        this.decoder = tok.streamDecoder(false);
        this.stops = new StopMatcher(options.stop());
        this.biasIds = new int[options.logitBias().size()];
        this.biasValues = new float[biasIds.length];
        int b = 0;
        for (var e : options.logitBias().entrySet()) {
            if (e.getKey() >= vocab) {
                throw new cria.CriaException("logit bias names token id " + e.getKey() + ", outside the vocabulary (0.."
                        + (vocab - 1) + ")");
            }
            biasIds[b] = e.getKey();
            biasValues[b++] = e.getValue();
        }
        this.logprobs = options.wantsLogprobs() ? new java.util.ArrayList<>() : null;
        if (options.maxTokens() == 0) {
            reason = Generation.FinishReason.LENGTH;
        }
    }

    /** True once generation has ended (see {@link #reason()}). */
    boolean done() {
        return reason != null;
    }

    /**
     * Samples the next token from {@code logits[off, off + vocab)}. Returns true when the
     * sequence goes on: the token ({@link #last()}) must then be evaluated to get the next logits.
     */
    boolean next(float[] logits, int off) {
        if (reason != null) {
            return false;
        }
        for (int i = 0; i < biasIds.length; i++) {
            logits[off + biasIds[i]] += biasValues[i];
        }
        int id = sampler.sample(logits, off);
        if (logprobs != null) {
            pending = TokenLogprob.of(logits, off, vocab, id, options.topLogprobs());
        }
        return nextToken(id);
    }


    /** The settings this stream generates with. */
    GenerateOptions options() {
        return options;
    }

    /** The sampler (for samplers elsewhere: {@link Sampler#drawUniform()}). */
    Sampler sampler() {
        return sampler;
    }

    /** As {@link #next}, with the token already chosen (by a device sampler using this stream's draws). */
    boolean nextToken(int id) {
        if (reason != null) {
            return false;
        }
        sampler.accept(id);
        TokenLogprob lp = pending;
        pending = null;
        if (logprobs != null) {
            logprobs.add(lp);
        }
        if (n == out.length) {
            out = Arrays.copyOf(out, out.length * 2);
        }
        out[n++] = id;
        if (!options.ignoreEos() && tok.isEndOfGeneration(id)) {
            return end(Generation.FinishReason.STOP);
        }
        String piece = stops.add(decoder.feed(id));
        text.append(piece);
        if (!listener.onToken(id, piece, lp)) {
            return end(Generation.FinishReason.CANCELLED);
        }
        if (stops.stopped()) {
            return end(Generation.FinishReason.STOP);
        }
        if (Thread.currentThread().isInterrupted()) {
            return end(Generation.FinishReason.CANCELLED);
        }
        if (n >= options.maxTokens()) {
            return end(Generation.FinishReason.LENGTH);
        }
        return true;
    }

    /** The last sampled token. */
    int last() {
        return out[n - 1];
    }

    /** Ends the generation (LENGTH when the context is full), releasing held-back text. */
    void finish(Generation.FinishReason why) {
        end(why);
    }

    private boolean end(Generation.FinishReason why) {
        if (reason == null) {
            reason = why;
            if (!stops.stopped()) {
                String tail = stops.add(decoder.flush()) + stops.flush();
                if (!tail.isEmpty()) {
                    text.append(tail);
                    listener.onToken(-1, tail, null);
                }
            }
        }
        return false;
    }

    Generation.FinishReason reason() {
        return reason;
    }

    int count() {
        return n;
    }

    Generation result(int promptTokens, long promptNanos, long generateNanos) {
        return new Generation(text.toString(), Arrays.copyOf(out, n), reason, promptTokens, promptNanos, generateNanos,
                logprobs);
    }
}
