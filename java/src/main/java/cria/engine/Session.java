// One conversation with a model: its KV cache, its position, evaluation of tokens into logits.
package cria.engine;

import cria.CriaException;
import cria.backend.KvCache;
import cria.model.Llama;
import cria.model.LlamaConfig;

/**
 * A single sequence over a model: tokens go in, logits come out, the KV cache remembers. Memory
 * (cache, activations) is allocated once when the session opens. Not thread-safe; close it to
 * free its memory.
 *
 * <p>Errors: opening a session whose context or batch would not fit the machine, evaluating past
 * the end of the context, and token ids outside the vocabulary are {@link CriaException}s with a
 * one-line message; misuse (an empty token array, truncating beyond the position) is an
 * {@link IllegalArgumentException}.
 */
public final class Session implements AutoCloseable {
    /** Receives the logits of one position during {@link #evalAll}. The array is reused: copy what you keep. */
    @FunctionalInterface
    public interface LogitsSink {
        void accept(int index, float[] logits);
    }

    private final Model model;
    private final Scheduler loop;
    private final Sequence seq;
    private final int contextLength;
    private final float[] last;

    Session(Model model, SessionOptions o) {
        this.model = model;
        Llama llama = model.llama();
        LlamaConfig c = model.config();
        if (o.contextLength() < 0 || o.batchSize() < 0) {
            throw new CriaException("context length and batch size must not be negative: " + o.contextLength() + ", " + o.batchSize());
        }
        int ctx = o.contextLength() > 0 ? o.contextLength() : Math.min(c.trainedContextLength(), 4096);
        this.contextLength = ctx;
        int bs = Math.max(1, Math.min(o.batchSize(), ctx));
        int maxLogits = o.allLogits() ? bs : 1;
        // sizes from the caller: checked in long against the machine before anything is allocated
        long kvBytes = KvCache.Config.bytesFor(c.layers(), c.kvDim(), o.kvType(), ctx, Math.min(64, ctx));
        MemoryBudget.check(model, MemoryBudget.sum(kvBytes, llama.scratchBytes(bs, maxLogits)),
                MemoryBudget.sum((long) maxLogits * c.vocab(), c.vocab(), o.allLogits() ? c.vocab() : 0),
                "a context of " + ctx + " tokens with batches of " + bs, "lower --ctx or --batch-size");
        // one sequence driven by the caller: the same loop a BatchGenerator runs with many
        this.loop = new Scheduler(model, KvCache.Config.single(c.layers(), c.kvDim(), o.kvType(), ctx), bs, maxLogits, ctx);
        this.seq = new Sequence(loop.newSequenceId(), 64);
        this.last = new float[c.vocab()];
        seq.last = last;
        seq.one = o.allLogits() ? new float[c.vocab()] : null;
    }

    /** Positions held so far. */
    public int position() {
        return seq.position;
    }

    /** The most positions this session can hold. */
    public int contextLength() {
        return contextLength;
    }

    /** The model this session runs. */
    public Model model() {
        return model;
    }

    /** Forgets everything: the next token is at position 0. */
    public void reset() {
        truncate(0);
    }

    /** Keeps the first {@code positions} positions (to reuse a shared prefix) and forgets the rest. */
    public void truncate(int positions) {
        if (positions < 0 || positions > seq.position) {
            throw new IllegalArgumentException("cannot truncate to " + positions + " (position " + seq.position + ")");
        }
        loop.truncate(seq, positions);
    }

    /** The tokens of the sequence so far (evaluated ones, plus a last generated one not yet evaluated). */
    public int[] tokens() {
        return java.util.Arrays.copyOf(seq.tokens, seq.length);
    }

    /**
     * Generates after the sequence {@code tokens}, reusing the longest prefix of it that the
     * session already holds (a chat re-rendered each turn only evaluates what is new); the rest
     * of the session is forgotten first.
     */
    public Generation generateAfter(int[] tokens, GenerateOptions options, TokenListener listener) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        int common = 0;
        int limit = Math.min(seq.position, tokens.length - 1); // at least one token is evaluated, to get logits
        while (common < limit && seq.tokens[common] == tokens[common]) {
            common++;
        }
        truncate(common);
        return generate(java.util.Arrays.copyOfRange(tokens, common, tokens.length), options, listener);
    }

    /**
     * Appends tokens and returns the logits after the last one. The returned array is reused
     * by the next call: copy it to keep it.
     */
    public float[] eval(int[] tokens) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("no tokens to evaluate");
        }
        run(tokens, null);
        return last;
    }

    /**
     * Appends tokens and hands the logits of every one of them to {@code sink}, in order.
     * Needs a session opened with {@link SessionOptions#withAllLogits}.
     */
    public void evalAll(int[] tokens, LogitsSink sink) {
        if (seq.one == null) {
            throw new IllegalStateException("evalAll needs a session opened with allLogits");
        }
        run(tokens, sink);
    }

    /** Feeds tokens to the loop and steps it until they are in the cache. */
    private void run(int[] tokens, LogitsSink sink) {
        seq.stream = null;
        seq.sink = sink;
        seq.sinkBase = seq.position;
        try {
            loop.feed(seq, tokens, 0, tokens.length);
            while (loop.isActive(seq) && loop.step()) {
                // the loop has this one sequence: each step evaluates a chunk of its tokens
            }
        } finally {
            seq.sink = null;
        }
    }

    /**
     * Tokenizes {@code prompt} (BOS added at the start of a sequence, special tokens parsed) and
     * generates after it; see {@link #generate(int[], GenerateOptions, TokenListener)}.
     */
    public Generation generate(String prompt, GenerateOptions options, TokenListener listener) {
        int[] ids = model.tokenizer().encode(prompt, seq.position == 0 && seq.length == 0, true);
        return generate(ids, options, listener);
    }

    /**
     * Appends {@code prompt} to the sequence and generates up to {@code options.maxTokens()}
     * tokens, streaming each to {@code listener} with the text it completes. Generation stops at
     * an end-of-generation token (unless ignored), a stop string, the token limit, the end of
     * the context, a listener returning false, or an interrupt of the calling thread.
     */
    public Generation generate(int[] prompt, GenerateOptions options, TokenListener listener) {
        var tok = model.tokenizer();
        long t0 = System.nanoTime();
        int[] toEval = prompt;
        if (seq.length > seq.position) { // the last generated token of an earlier call is not in the cache yet
            toEval = new int[prompt.length + 1];
            toEval[0] = seq.tokens[seq.position];
            System.arraycopy(prompt, 0, toEval, 1, prompt.length);
        }
        if (toEval.length == 0 && seq.position == 0) {
            throw new CriaException("nothing to generate from: the prompt is empty and the model adds no BOS token");
        }
        seq.sink = null;
        seq.stream = null;
        seq.failure = null;
        seq.firstLogits = 0;
        seq.deviceSampler = loop.deviceSampler(options);
        try {
            if (toEval.length > 0) {
                loop.feed(seq, toEval, 0, toEval.length);
            }
            seq.stream = new TokenStream(tok, model.config().vocab(), options, listener, seq.tokens, seq.length);
            if (toEval.length == 0) { // nothing new: sample from the logits the last evaluation left
                seq.firstLogits = System.nanoTime();
                loop.sample(seq, last, 0);
            }
            while (loop.isActive(seq) && loop.step()) {
                // the loop has this one sequence: each step evaluates a chunk of it, then samples
            }
        } finally {
            seq.deviceSampler = null;
        }
        TokenStream stream = seq.stream;
        seq.stream = null;
        if (seq.failure != null) {
            RuntimeException e = seq.failure;
            seq.failure = null;
            throw e;
        }
        stream.finish(Generation.FinishReason.LENGTH);
        long t2 = System.nanoTime();
        long t1 = seq.firstLogits == 0 ? t2 : seq.firstLogits;
        return stream.result(toEval.length, t1 - t0, t2 - t1);
    }

    @Override
    /** Frees the session's KV cache; the model stays open. */
    public void close() {
        loop.close();
    }
}
