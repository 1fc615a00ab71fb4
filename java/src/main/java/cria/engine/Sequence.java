// One sequence inside the scheduler: its tokens, its place in the KV cache, and what its logits are for.
package cria.engine;

import cria.backend.DeviceSampler;
import java.util.Arrays;

/**
 * The state the {@link Scheduler} keeps per sequence. {@code tokens[0, position)} are in the KV
 * cache; {@code tokens[position, length)} wait to be evaluated (a prompt, or the one token just
 * sampled). A sequence's logits rows go to exactly one consumer: its {@link TokenStream} when it
 * generates, else its {@link Session.LogitsSink} (every row) and/or its {@code last} array (the
 * row of the last token). A {@link Session} owns one for its whole life; a {@link BatchGenerator}
 * request owns one from admission to its end.
 */
class Sequence {
    /** The sequence's id in the KV cache. */
    final int id;
    int position;
    int[] tokens;
    int length;
    /** The waiting token is one sampled token: it goes into the step before prompt chunks. */
    boolean decoding;
    /** In the scheduler's active list (it has tokens waiting, or generates). */
    boolean active;
    /** Entries this sequence has in the step being run. */
    int inStep;

    TokenStream stream;
    /** Samples on the device when this sequence has the step's only logits row (set by a Session). */
    DeviceSampler deviceSampler;
    Session.LogitsSink sink;
    /** Position whose logits the sink receives as index 0. */
    int sinkBase;
    /** The row handed to the sink (reused). */
    float[] one;
    /** Receives the downloaded logits of the last waiting token. */
    float[] last;
    /** When the first logits of the current generation came (System.nanoTime), 0 before. */
    long firstLogits;
    /** What a listener threw while this sequence sampled; it ended the generation. */
    RuntimeException failure;

    /** {@code capacity}: tokens it expects to hold (the array grows beyond it when needed). */
    Sequence(int id, int capacity) {
        this.id = id;
        this.tokens = new int[Math.max(1, capacity)];
    }

    /** Tokens waiting to be evaluated. */
    int waiting() {
        return length - position;
    }

    /** Appends a token after {@code length}. */
    void append(int token) {
        ensure(1);
        tokens[length++] = token;
    }

    /** Forgets waiting tokens, then appends {@code src[off, off + n)} as waiting. */
    void queue(int[] src, int off, int n) {
        length = position;
        ensure(n);
        System.arraycopy(src, off, tokens, length, n);
        length += n;
    }

    private void ensure(int more) {
        if (length + more > tokens.length) {
            tokens = Arrays.copyOf(tokens, Math.max(tokens.length * 2, length + more));
        }
    }
}
