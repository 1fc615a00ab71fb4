// Text embeddings from a generative model: the mean of its final hidden states, L2-normalized.
package cria.engine;

import cria.CriaException;
import cria.backend.Batch;
import cria.backend.KvCache;
import cria.model.Llama;
import cria.model.LlamaConfig;

/**
 * Turns a token sequence into one vector: the model runs over the tokens (causal attention, as
 * when generating), the final hidden state of every token is taken after the output norm (the
 * input of the output product), the states are averaged (mean pooling) and the mean is scaled to
 * length 1. Its own KV cache and activations are allocated once; it runs beside a
 * {@link Session} or {@link BatchGenerator} on the same model (forward steps take turns).
 *
 * <pre>{@code
 * try (Embedder e = new Embedder(model, 512)) {
 *     float[] v = e.embed(model.tokenizer().encode("a sentence", true, false));
 * }
 * }</pre>
 *
 * Thread-safe: calls are serialized.
 */
public final class Embedder implements AutoCloseable {
    private static final int BATCH = 128;
    private final Model model;
    private final Llama llama;
    private final KvCache cache;
    private final Batch batch;
    private final Llama.Scratch scratch;
    private final int contextLength;
    private final int dim;
    private final float[] rows;
    private final int seq;

    /**
     * @param contextLength the most tokens one input may have
     * @throws CriaException when the cache would not fit this machine's memory
     */
    public Embedder(Model model, int contextLength) {
        if (contextLength < 1) {
            throw new CriaException("the embedding context must be at least 1 token, got " + contextLength);
        }
        this.model = model;
        this.llama = model.llama();
        LlamaConfig c = model.config();
        this.contextLength = contextLength;
        this.dim = c.dim();
        int bs = Math.min(BATCH, contextLength);
        long kvBytes = KvCache.Config.bytesFor(c.layers(), c.kvDim(), KvCache.Type.F32, contextLength, Math.min(64, contextLength));
        MemoryBudget.check(model, MemoryBudget.sum(kvBytes, llama.scratchBytes(bs, bs)), (long) bs * dim,
                "an embedding context of " + contextLength + " tokens", "lower --ctx");
        this.cache = model.backend().kvCache(KvCache.Config.single(c.layers(), c.kvDim(), KvCache.Type.F32, contextLength));
        try {
            this.batch = new Batch(bs);
            this.scratch = llama.newScratch(bs, bs);
            this.rows = new float[bs * dim];
            this.seq = cache.newSequence();
        } catch (RuntimeException | Error e) {
            cache.close();
            throw e;
        }
    }

    /** The length of the vectors (the model's embedding width). */
    public int dimension() {
        return dim;
    }

    /**
     * The embedding of {@code tokens}: mean-pooled final hidden states, L2-normalized.
     *
     * @throws CriaException when there are no tokens, more than the context holds, or an id outside the vocabulary
     */
    public synchronized float[] embed(int[] tokens) {
        if (tokens.length == 0) {
            throw new CriaException("nothing to embed: the input has no tokens");
        }
        if (tokens.length > contextLength) {
            throw new CriaException("the input has " + tokens.length + " tokens, more than the " + contextLength
                    + " the embedding context holds; shorten it or raise --ctx");
        }
        int vocab = model.config().vocab();
        for (int t : tokens) {
            if (t < 0 || t >= vocab) {
                throw new CriaException("token id " + t + " is outside the vocabulary (0.." + (vocab - 1) + ")");
            }
        }
        cache.truncate(seq, 0);
        cache.reserve(seq, tokens.length);
        double[] sum = new double[dim];
        for (int start = 0; start < tokens.length; start += batch.batchSize()) {
            int n = Math.min(batch.batchSize(), tokens.length - start);
            batch.clear();
            for (int i = 0; i < n; i++) {
                batch.add(tokens[start + i], start + i, seq, true);
            }
            llama.forwardHidden(batch, cache, scratch);
            model.backend().download(scratch.hidden(), n, rows);
            for (int i = 0; i < n; i++) {
                for (int d = 0; d < dim; d++) {
                    sum[d] += rows[i * dim + d];
                }
            }
        }
        double norm = 0;
        for (double v : sum) {
            norm += v * v;
        }
        norm = Math.sqrt(norm);
        float[] out = new float[dim];
        for (int d = 0; d < dim; d++) {
            out[d] = norm == 0 ? 0f : (float) (sum[d] / norm); // the mean's 1/n cancels in the normalization
        }
        return out;
    }

    /** Frees the cache. */
    @Override
    public synchronized void close() {
        cache.close();
    }
}
