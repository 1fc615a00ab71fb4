// The Llama forward pass, written once against Ops: a batch of (token, position, sequence) entries in, logits out.
package cria.model;

import cria.backend.Backend;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.KvCache;
import cria.backend.Ops;
import cria.backend.Rope;
import cria.backend.Weight;

/**
 * A Llama-family model resident in a backend. {@link #forward} is the whole graph, straight
 * line, in the spirit of llama2.c's {@code forward}: it never knows which backend runs it.
 * Sessions own their {@link Scratch} (activations, sized once) and {@link KvCache}.
 * Programs never meet this class: {@code cria.engine.Model} is their handle on a loaded file
 * (tokenizer, template, backend, memory) and runs a {@code Llama} inside.
 */
public final class Llama {
    private final LlamaConfig c;
    private final LlamaWeights w;
    private final Backend backend;
    private final Ops ops;
    private final Rope rope;
    private final Weight[][] qkv;
    private final Weight[] output;

    public Llama(LlamaConfig config, LlamaWeights weights, Backend backend) {
        this.c = config;
        this.w = weights;
        this.backend = backend;
        this.ops = backend.ops();
        this.rope = new Rope(config.ropeDims(), config.ropeBase(), config.ropeFreqScale(), weights.ropeFactors, config.ropeNeox());
        this.qkv = new Weight[c.layers()][];
        this.output = new Weight[] {weights.output};
        for (int l = 0; l < c.layers(); l++) {
            qkv[l] = new Weight[] {w.wq[l], w.wk[l], w.wv[l]};
        }
    }

    public LlamaConfig config() {
        return c;
    }

    public Backend backend() {
        return backend;
    }

    public LlamaWeights weights() {
        return w;
    }

    /** Activation buffers of one session: up to {@code batchSize} entries per step, {@code maxLogits} logits rows. */
    public final class Scratch {
        final int batchSize;
        final int maxLogits;
        final Buf x;        // [B, dim]     residual stream
        final Buf xb;       // [B, dim]     normed input of a block
        final Buf xb2;      // [B, dim]     block output before the residual add
        final Buf q;        // [B, heads * headDim]
        final Buf k;        // [B, kvHeads * headDim]
        final Buf v;        // [B, kvHeads * headDim]
        final Buf att;      // [B, heads * headDim]  attention output
        final Buf hb;       // [B, ffn]     silu(gate) * up
        final Buf hb2;      // [B, ffn]     up
        final Buf xl;       // [Lg, dim]    rows that want logits
        final Buf logits;   // [Lg, vocab]
        final Buf[] qkvOut;
        final Buf[] logitsOut;

        Scratch(int batchSize, int maxLogits) {
            this.batchSize = batchSize;
            this.maxLogits = maxLogits;
            x = backend.allocate("x", batchSize, c.dim());
            xb = backend.allocate("xb", batchSize, c.dim());
            xb2 = backend.allocate("xb2", batchSize, c.dim());
            q = backend.allocate("q", batchSize, c.qDim());
            k = backend.allocate("k", batchSize, c.kvDim());
            v = backend.allocate("v", batchSize, c.kvDim());
            att = backend.allocate("att", batchSize, c.qDim());
            hb = backend.allocate("hb", batchSize, c.ffn());
            hb2 = backend.allocate("hb2", batchSize, c.ffn());
            xl = backend.allocate("xl", maxLogits, c.dim());
            logits = backend.allocate("logits", maxLogits, c.vocab());
            qkvOut = new Buf[] {q, k, v};
            logitsOut = new Buf[] {logits};
        }

        /** The logits buffer: row j belongs to the batch's j-th entry that wanted logits. */
        public Buf logits() {
            return logits;
        }

        public int batchSize() {
            return batchSize;
        }

        public int maxLogits() {
            return maxLogits;
        }
    }

    /** Buffers for a session that runs up to {@code batchSize} entries per step and wants up to {@code maxLogits} logits rows. */
    public Scratch newScratch(int batchSize, int maxLogits) {
        return new Scratch(batchSize, Math.max(1, maxLogits));
    }

    /** Bytes of activations a scratch of this size takes (for memory checks before allocating). */
    public long scratchBytes(int batchSize, int maxLogits) {
        long perRow = 3L * c.dim() + 2L * c.qDim() + 2L * c.kvDim() + 2L * c.ffn();
        return 4L * (perRow * batchSize + (long) maxLogits * (c.dim() + c.vocab()));
    }

    /**
     * Runs the batch through the model. The cache must already hold pages for every entry's
     * position ({@link KvCache#reserve}). Afterwards {@code s.logits()} row j holds the logits of
     * the batch's j-th entry that asked for them.
     */
    public void forward(Batch batch, KvCache cache, Scratch s) {
        // A backend's ops share scratch memory and one worker pool: steps of sessions running on
        // different threads take turns.
        synchronized (backend) {
            step(batch, cache, s);
        }
    }

    private void step(Batch batch, KvCache cache, Scratch s) {
        int n = batch.size();
        if (n > s.batchSize || batch.logitCount() > s.maxLogits) {
            throw new IllegalArgumentException("batch of " + n + " entries / " + batch.logitCount()
                    + " logits exceeds the scratch (" + s.batchSize + " / " + s.maxLogits + ")");
        }
        // Every entry is checked before any op runs: tokens inside the vocabulary (the embedding is
        // read at that row, on the GPU without bounds checks) and positions inside the pages the
        // entry's own sequence holds (so no sequence can touch another's cache).
        for (int i = 0; i < n; i++) {
            int t = batch.token(i);
            if (t < 0 || t >= c.vocab()) {
                throw new IllegalArgumentException("batch entry " + i + ": token id " + t + " is outside the vocabulary (0.." + (c.vocab() - 1) + ")");
            }
        }
        cache.checkBatch(batch);
        float eps = c.rmsEps();
        // The step's ops in the order they run. Nothing is deferred or reordered behind them: on the
        // GPU each line launches its own kernels (a fused op one kernel in a decode step, where the
        // weights' types and shapes allow; CudaOps says when), so this list is what a step launches.
        ops.beginStep(batch, cache);
        ops.embed(w.tokenEmbedding, batch, s.x);                                   // x[n, dim] = embeddings
        for (int l = 0; l < c.layers(); l++) {
            // attention block
            ops.rmsnormMatmul(s.x, w.attnNorm[l], eps, n, s.xb, qkv[l], s.qkvOut); // xb = rmsnorm(x); q, k, v = wq, wk, wv · xb
            ops.ropeStoreKv(s.q, s.k, s.v, c.headDim(), batch, rope, cache, l);    // rotate q, k; cache[l][seq][pos] = k, v
            ops.attention(s.q, cache, l, c.heads(), c.kvHeads(), c.headDim(), batch, s.att); // att[n, qDim]
            ops.matmulAdd(s.att, n, w.wo[l], s.xb2, s.x);                          // xb2 = wo · att; x += xb2
            // feed-forward block: xb = rmsnorm(x); hb2 = up · xb; hb = silu(gate · xb) * hb2  [n, ffn]
            ops.rmsnormGateUpSwiglu(s.x, w.ffnNorm[l], eps, n, s.xb, w.gate[l], w.up[l], s.hb, s.hb2);
            ops.matmulAdd(s.hb, n, w.down[l], s.xb2, s.x);                         // xb2 = down · hb; x += xb2
        }
        int m = batch.logitCount();
        if (m > 0) {
            ops.gather(s.x, batch.logitRows(), m, s.xl);                           // xl[m, dim] = rows that want logits
            ops.rmsnormMatmul(s.xl, w.outputNorm, eps, m, s.xl, output, s.logitsOut); // xl = rmsnorm(xl) in place; logits[m, vocab]
        }
        ops.endStep();
    }
}
