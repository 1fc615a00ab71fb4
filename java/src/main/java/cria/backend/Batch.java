// One forward step's work: entries of (token, position, sequence), and which entries want logits.
package cria.backend;

import java.util.Arrays;

/**
 * The input of one forward pass: {@code n} entries, each a token at a position of a sequence.
 * Prompt tokens of new sequences and the one decode token of running sequences may be mixed
 * (continuous batching); a single sequence is the special case. Entries flagged for logits get
 * a row of logits, in entry order. Arrays are sized once; {@link #clear()} reuses them.
 */
public final class Batch {
    private final int batchSize;
    private final int[] tokens;
    private final int[] positions;
    private final int[] sequences;
    private final int[] logitRows;
    private int n;
    private int nLogits;

    public Batch(int batchSize) {
        if (batchSize <= 0) {
            throw new IllegalArgumentException("batch size must be positive");
        }
        this.batchSize = batchSize;
        this.tokens = new int[batchSize];
        this.positions = new int[batchSize];
        this.sequences = new int[batchSize];
        this.logitRows = new int[batchSize];
    }

    public void clear() {
        n = 0;
        nLogits = 0;
    }

    /** Adds an entry; returns its index. */
    public int add(int token, int position, int sequence, boolean wantLogits) {
        if (n == batchSize) {
            throw new IllegalStateException("batch is full (" + batchSize + " entries)");
        }
        tokens[n] = token;
        positions[n] = position;
        sequences[n] = sequence;
        if (wantLogits) {
            logitRows[nLogits++] = n;
        }
        return n++;
    }

    public int size() {
        return n;
    }

    /** The batch size: the most entries this batch holds (one forward step's capacity; {@link #size()} is how many it holds now). */
    public int batchSize() {
        return batchSize;
    }

    public boolean isFull() {
        return n == batchSize;
    }

    public int token(int i) {
        return tokens[i];
    }

    public int position(int i) {
        return positions[i];
    }

    public int sequence(int i) {
        return sequences[i];
    }

    /** Number of entries that want logits. */
    public int logitCount() {
        return nLogits;
    }

    /** The entry index of the j-th logits row. */
    public int logitRow(int j) {
        return logitRows[j];
    }

    /** Backing arrays (valid up to {@link #size()} / {@link #logitCount()}), for backends that upload them. */
    public int[] tokens() {
        return tokens;
    }

    public int[] positions() {
        return positions;
    }

    public int[] sequences() {
        return sequences;
    }

    /** The logit rows: entry indices, in order, of the entries that want logits (row j of the logits is entry {@code logitRows()[j]}). */
    public int[] logitRows() {
        return logitRows;
    }

    /** True when every entry belongs to one sequence at consecutive positions (plain prefill or decode). */
    public boolean isSingleRun() {
        for (int i = 1; i < n; i++) {
            if (sequences[i] != sequences[0] || positions[i] != positions[i - 1] + 1) {
                return false;
            }
        }
        return true;
    }

    @Override
    public String toString() {
        return "Batch[n=" + n + ", tokens=" + Arrays.toString(Arrays.copyOf(tokens, n)) + "]";
    }
}
