// One conversation with a model: its KV cache, its position, evaluation of tokens into logits.
package cria.engine;

import cria.CriaException;
import cria.backend.Batch;
import cria.backend.KvCache;
import cria.model.Llama;
import cria.model.LlamaConfig;

/**
 * A single sequence over a model: tokens go in, logits come out, the KV cache remembers. Memory
 * (cache, activations) is allocated once when the session opens. Not thread-safe; close it to
 * free its memory.
 */
public final class Session implements AutoCloseable {
    /** Receives the logits of one position during {@link #evalAll}. The array is reused: copy what you keep. */
    @FunctionalInterface
    public interface LogitsSink {
        void accept(int index, float[] logits);
    }

    private final Model model;
    private final Llama llama;
    private final KvCache cache;
    private final int seq;
    private final int contextLength;
    private final Batch batch;
    private final Llama.Scratch scratch;
    private final float[] logits;
    private final float[] last;
    private final float[] one;
    private int position;

    Session(Model model, SessionOptions o) {
        this.model = model;
        this.llama = model.llama();
        LlamaConfig c = model.config();
        int ctx = o.contextLength() > 0 ? o.contextLength() : Math.min(c.contextLength(), 4096);
        this.contextLength = ctx;
        int bs = Math.max(1, Math.min(o.batchSize(), ctx));
        this.cache = model.backend().kvCache(KvCache.Config.single(c.layers(), c.kvDim(), o.kvType(), ctx));
        this.seq = cache.newSequence();
        this.batch = new Batch(bs);
        int logitRows = o.allLogits() ? bs : 1;
        this.scratch = llama.newScratch(bs, logitRows);
        this.logits = new float[logitRows * c.vocab()];
        this.last = new float[c.vocab()];
        this.one = o.allLogits() ? new float[c.vocab()] : null;
    }

    /** Positions held so far. */
    public int position() {
        return position;
    }

    /** The most positions this session can hold. */
    public int contextLength() {
        return contextLength;
    }

    public Model model() {
        return model;
    }

    /** Forgets everything: the next token is at position 0. */
    public void reset() {
        truncate(0);
    }

    /** Keeps the first {@code positions} positions (to reuse a shared prefix) and forgets the rest. */
    public void truncate(int positions) {
        if (positions < 0 || positions > position) {
            throw new IllegalArgumentException("cannot truncate to " + positions + " (position " + position + ")");
        }
        cache.truncate(seq, positions);
        position = positions;
    }

    /**
     * Appends tokens and returns the logits after the last one. The returned array is reused
     * by the next call: copy it to keep it.
     */
    public float[] eval(int[] tokens) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("no tokens to evaluate");
        }
        run(tokens, false, null);
        return last;
    }

    /**
     * Appends tokens and hands the logits of every one of them to {@code sink}, in order.
     * Needs a session opened with {@link SessionOptions#withAllLogits}.
     */
    public void evalAll(int[] tokens, LogitsSink sink) {
        if (one == null) {
            throw new IllegalStateException("evalAll needs a session opened with allLogits");
        }
        run(tokens, true, sink);
    }

    private void run(int[] tokens, boolean all, LogitsSink sink) {
        int vocab = model.config().vocab();
        if (position + tokens.length > contextLength) {
            throw new CriaException("context full: " + (position + tokens.length) + " tokens needed, the context holds "
                    + contextLength + "; raise --ctx or shorten the input");
        }
        for (int t : tokens) {
            if (t < 0 || t >= vocab) {
                throw new CriaException("token id " + t + " is outside the vocabulary (0.." + (vocab - 1) + ")");
            }
        }
        cache.reserve(seq, position + tokens.length);
        int done = 0;
        while (done < tokens.length) {
            batch.clear();
            int n = Math.min(all ? scratch.maxLogits() : batch.capacity(), tokens.length - done);
            for (int i = 0; i < n; i++) {
                boolean want = all || done + i == tokens.length - 1;
                batch.add(tokens[done + i], position + i, seq, want);
            }
            llama.forward(batch, cache, scratch);
            int m = batch.logitCount();
            if (m > 0) {
                model.backend().download(scratch.logits(), m, logits);
                if (sink != null) {
                    for (int j = 0; j < m; j++) {
                        System.arraycopy(logits, j * vocab, one, 0, vocab);
                        sink.accept(done + batch.logitEntry(j), one);
                    }
                }
                if (done + n == tokens.length) {
                    System.arraycopy(logits, (m - 1) * vocab, last, 0, vocab);
                }
            }
            position += n;
            done += n;
        }
    }

    @Override
    public void close() {
        cache.close();
    }
}
