// One conversation with a model: its KV cache, its position, evaluation of tokens into logits.
package cria.engine;

import cria.CriaException;
import cria.backend.Batch;
import cria.backend.DeviceSampler;
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
    /** Every token of the sequence: [0, position) are in the cache, the rest (at most one) is pending. */
    private int[] history = new int[64];
    private int historyLen;
    private final int[] one1 = new int[1];

    Session(Model model, SessionOptions o) {
        this.model = model;
        this.llama = model.llama();
        LlamaConfig c = model.config();
        if (o.contextLength() < 0 || o.batchSize() < 0) {
            throw new CriaException("context length and batch size must not be negative: " + o.contextLength() + ", " + o.batchSize());
        }
        int ctx = o.contextLength() > 0 ? o.contextLength() : Math.min(c.contextLength(), 4096);
        this.contextLength = ctx;
        int bs = Math.max(1, Math.min(o.batchSize(), ctx));
        int logitRows = o.allLogits() ? bs : 1;
        // sizes from the caller: checked in long against the machine before anything is allocated
        long kvBytes = KvCache.Config.bytesFor(c.layers(), c.kvDim(), o.kvType(), ctx, Math.min(64, ctx));
        MemoryBudget.check(model, MemoryBudget.sum(kvBytes, llama.scratchBytes(bs, logitRows)),
                MemoryBudget.sum((long) logitRows * c.vocab(), c.vocab(), o.allLogits() ? c.vocab() : 0),
                "a context of " + ctx + " tokens with batches of " + bs, "lower --ctx or --batch-size");
        this.cache = model.backend().kvCache(KvCache.Config.single(c.layers(), c.kvDim(), o.kvType(), ctx));
        this.seq = cache.newSequence();
        this.batch = new Batch(bs);
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
        if (positions < 0 || positions > position) {
            throw new IllegalArgumentException("cannot truncate to " + positions + " (position " + position + ")");
        }
        cache.truncate(seq, positions);
        position = positions;
        historyLen = positions;
    }

    /** The tokens of the sequence so far (evaluated ones, plus a last generated one not yet evaluated). */
    public int[] tokens() {
        return java.util.Arrays.copyOf(history, historyLen);
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
        int limit = Math.min(position, tokens.length - 1); // at least one token is evaluated, to get logits
        while (common < limit && history[common] == tokens[common]) {
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

    /**
     * The backend's own sampler when it has one and these settings allow it (no penalties, greedy or
     * top-k within its range): only token ids then cross to the host. {@code -Dcria.deviceSampling=false} turns it off.
     */
    private DeviceSampler deviceSampler(GenerateOptions o) {
        if (!(model.backend() instanceof DeviceSampler ds) || "false".equals(System.getProperty("cria.deviceSampling"))) {
            return null;
        }
        cria.sample.SamplerParams p = o.sampler();
        boolean penalties = p.repeatPenalty() != 1f || p.frequencyPenalty() != 0f || p.presencePenalty() != 0f;
        return !penalties && ds.supports(p.temperature(), p.topK()) ? ds : null;
    }

    private int sampleOnDevice(DeviceSampler ds, cria.sample.Sampler sampler, GenerateOptions o) {
        cria.sample.SamplerParams p = o.sampler();
        int vocab = model.config().vocab();
        if (p.isGreedy()) {
            ds.argmax(scratch.logits(), 1, vocab, pick);
        } else {
            uniform[0] = sampler.drawUniform();
            ds.sample(scratch.logits(), 1, vocab, p.temperature(), p.topK(), p.topP(), p.minP(), uniform, pick);
        }
        return pick[0];
    }

    private final int[] pick = new int[1];
    private final double[] uniform = new double[1];

    /** Appends tokens; the last one's logits stay in the backend (row 0 of the logits buffer). */
    private void evalOnDevice(int[] tokens) {
        download = false;
        try {
            run(tokens, false, null);
        } finally {
            download = true;
        }
    }

    private boolean download = true;

    private void run(int[] tokens, boolean all, LogitsSink sink) {
        int vocab = model.config().vocab();
        if ((long) position + tokens.length > contextLength) {
            throw new CriaException("context full: " + ((long) position + tokens.length) + " tokens needed, the context holds "
                    + contextLength + "; raise --ctx or shorten the input");
        }
        for (int t : tokens) {
            if (t < 0 || t >= vocab) {
                throw new CriaException("token id " + t + " is outside the vocabulary (0.." + (vocab - 1) + ")");
            }
        }
        cache.reserve(seq, position + tokens.length);
        remember(tokens);
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
            if (m > 0 && download) {
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

    private void remember(int[] tokens) {
        // a pending (generated, not evaluated) token is the first of these
        historyLen = position;
        if (historyLen + tokens.length > history.length) {
            history = java.util.Arrays.copyOf(history, Math.max(history.length * 2, historyLen + tokens.length));
        }
        System.arraycopy(tokens, 0, history, historyLen, tokens.length);
        historyLen += tokens.length;
    }

    /**
     * Tokenizes {@code prompt} (BOS added at the start of a sequence, special tokens parsed) and
     * generates after it; see {@link #generate(int[], GenerateOptions, TokenListener)}.
     */
    public Generation generate(String prompt, GenerateOptions options, TokenListener listener) {
        int[] ids = model.tokenizer().encode(prompt, position == 0 && historyLen == 0, true);
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
        if (historyLen > position) { // the last generated token of an earlier call is not in the cache yet
            toEval = new int[prompt.length + 1];
            toEval[0] = history[position];
            System.arraycopy(prompt, 0, toEval, 1, prompt.length);
        }
        if (toEval.length == 0 && position == 0) {
            throw new CriaException("nothing to generate from: the prompt is empty and the model adds no BOS token");
        }
        DeviceSampler ds = deviceSampler(options);
        float[] logits = last;
        if (toEval.length > 0) {
            if (ds != null) {
                evalOnDevice(toEval);
            } else {
                logits = eval(toEval);
            }
        }
        boolean onDevice = ds != null && toEval.length > 0; // the logits of this step are on the device only
        long t1 = System.nanoTime();
        TokenStream stream = new TokenStream(tok, model.config().vocab(), options, listener, history, historyLen);
        while (true) {
            int before = stream.count();
            boolean more = onDevice ? stream.nextToken(sampleOnDevice(ds, stream.sampler(), options)) : stream.next(logits, 0);
            if (stream.count() > before) { // a token was sampled: it joins the sequence, evaluated by the next eval
                one1[0] = stream.last();
                remember(one1);
            }
            if (!more) {
                break;
            }
            if (position >= contextLength) {
                stream.finish(Generation.FinishReason.LENGTH);
                break;
            }
            if (ds != null) {
                evalOnDevice(one1);
                onDevice = true;
            } else {
                logits = eval(one1);
            }
        }
        stream.finish(Generation.FinishReason.LENGTH);
        long t2 = System.nanoTime();
        return stream.result(toEval.length, t1 - t0, t2 - t1);
    }

    @Override
    /** Frees the session's KV cache; the model stays open. */
    public void close() {
        cache.close();
    }
}
