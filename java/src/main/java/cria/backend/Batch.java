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
    private final int capacity;
    private final int[] tokens;
    private final int[] positions;
    private final int[] sequences;
    private final int[] logitEntries;
    private int n;
    private int nLogits;

    public Batch(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("batch capacity must be positive");
        }
        this.capacity = capacity;
        this.tokens = new int[capacity];
        this.positions = new int[capacity];
        this.sequences = new int[capacity];
        this.logitEntries = new int[capacity];
    }

    public void clear() {
        n = 0;
        nLogits = 0;
    }

    /** Adds an entry; returns its index. */
    public int add(int token, int position, int sequence, boolean wantLogits) {
        if (n == capacity) {
            throw new IllegalStateException("batch is full (" + capacity + " entries)");
        }
        tokens[n] = token;
        positions[n] = position;
        sequences[n] = sequence;
        if (wantLogits) {
            logitEntries[nLogits++] = n;
        }
        return n++;
    }

    public int size() {
        return n;
    }

    public int capacity() {
        return capacity;
    }

    public boolean isFull() {
        return n == capacity;
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
    public int logitEntry(int j) {
        return logitEntries[j];
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

    public int[] logitEntries() {
        return logitEntries;
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
