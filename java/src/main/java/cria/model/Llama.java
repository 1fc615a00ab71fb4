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
 * LoRA adapters ({@link LoraStack}) stay unmerged: each adapted product gets its low-rank
 * correction as a named step after it, through the same ops ({@code matmul}, {@code matmulAdd}).
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
    private final Weight[][] gateUp;
    private final Weight[] output;
    private final LoraProducts lora;

    /** The model without adapters. */
    public Llama(LlamaConfig config, LlamaWeights weights, Backend backend) {
        this(config, weights, LoraStack.NONE, backend);
    }

    /**
     * The model with the low-rank corrections of {@code adapters} added to its products (made
     * resident here, so before the backend's first op; the stack must outlive the model).
     */
    public Llama(LlamaConfig config, LlamaWeights weights, LoraStack adapters, Backend backend) {
        this.c = config;
        this.w = weights;
        this.backend = backend;
        this.lora = new LoraProducts(adapters, config.layers(), backend);
        this.ops = backend.ops();
        this.rope = new Rope(config.ropeDims(), config.ropeBase(), config.ropeFreqScale(), weights.ropeFactors, config.ropeNeox());
        this.qkv = new Weight[c.layers()][];
        this.gateUp = new Weight[c.layers()][];
        this.output = new Weight[] {weights.output};
        for (int l = 0; l < c.layers(); l++) {
            qkv[l] = new Weight[] {w.wq[l], w.wk[l], w.wv[l]};
            gateUp[l] = new Weight[] {w.gate[l], w.up[l]};
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
        final Buf[] gateUpOut;
        final Buf[] xOut;
        final Buf[] logitsOut;
        // LoRA corrections only (empty without adapters): loraT[k] holds k buffers [max(B, Lg), rank]
        // for the low-rank activations A·x of k products of one input; loraU one [rows, width] per
        // width of corrected outputs, for B'·(A·x) before it is added in.
        final Buf[][] loraT;
        final Buf[] loraU;

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
            gateUpOut = new Buf[] {hb, hb2};
            xOut = new Buf[] {x};
            logitsOut = new Buf[] {logits};
            loraT = new Buf[4][];
            int[] widths = lora.widths();
            loraU = new Buf[widths.length];
            if (!lora.isEmpty()) {
                int rows = Math.max(batchSize, maxLogits);
                Buf[] t = new Buf[3];
                for (int i = 0; i < t.length; i++) {
                    t[i] = backend.allocate("lora.t" + i, rows, lora.rank);
                }
                for (int k = 0; k < loraT.length; k++) {
                    loraT[k] = java.util.Arrays.copyOf(t, k);
                }
                for (int i = 0; i < widths.length; i++) {
                    loraU[i] = backend.allocate("lora.u" + widths[i], lora.outputWidth(widths[i]) ? rows : batchSize, widths[i]);
                }
            }
        }

        /** The correction buffer of this width (the widths are few: a scan allocates nothing). */
        Buf loraU(int width) {
            for (Buf u : loraU) {
                if (u.cols() == width) {
                    return u;
                }
            }
            throw new IllegalStateException("no LoRA buffer of width " + width);
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
        long bytes = 4L * (perRow * batchSize + (long) maxLogits * (c.dim() + c.vocab()));
        if (!lora.isEmpty()) {
            long rows = Math.max(batchSize, Math.max(1, maxLogits));
            long lo = 3L * rows * lora.rank;
            for (int width : lora.widths()) {
                lo += (lora.outputWidth(width) ? rows : batchSize) * (long) width;
            }
            bytes += 4L * lo;
        }
        return bytes;
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
            lowRank(lora.qkv[l], s.xb, n, s.qkvOut, s);                             // LoRA: q, k, v += B'·(A·xb), those adapted
            ops.ropeStoreKv(s.q, s.k, s.v, c.headDim(), batch, rope, cache, l);    // rotate q, k; cache[l][seq][pos] = k, v
            ops.attention(s.q, cache, l, c.heads(), c.kvHeads(), c.headDim(), batch, s.att); // att[n, qDim]
            ops.matmulAdd(s.att, n, w.wo[l], s.xb2, s.x);                          // xb2 = wo · att; x += xb2
            lowRank(lora.wo[l], s.att, n, s.xOut, s);                              // LoRA: x += B'·(A·att)
            // feed-forward block: xb = rmsnorm(x); hb2 = up · xb; hb = silu(gate · xb) * hb2  [n, ffn]
            if (lora.gateUp[l] == null) {
                ops.rmsnormGateUpSwiglu(s.x, w.ffnNorm[l], eps, n, s.xb, w.gate[l], w.up[l], s.hb, s.hb2);
            } else {  // LoRA on gate or up: the SwiGLU waits for the corrections
                ops.rmsnormMatmul(s.x, w.ffnNorm[l], eps, n, s.xb, gateUp[l], s.gateUpOut); // hb = gate · xb; hb2 = up · xb
                lowRank(lora.gateUp[l], s.xb, n, s.gateUpOut, s);                  // LoRA: hb, hb2 += B'·(A·xb), those adapted
                ops.swiglu(s.hb, s.hb2, n);                                        // hb = silu(hb) * hb2
            }
            ops.matmulAdd(s.hb, n, w.down[l], s.xb2, s.x);                         // xb2 = down · hb; x += xb2
            lowRank(lora.down[l], s.hb, n, s.xOut, s);                             // LoRA: x += B'·(A·hb)
        }
        int m = batch.logitCount();
        if (m > 0) {
            ops.gather(s.x, batch.logitRows(), m, s.xl);                           // xl[m, dim] = rows that want logits
            ops.rmsnormMatmul(s.xl, w.outputNorm, eps, m, s.xl, output, s.logitsOut); // xl = rmsnorm(xl) in place; logits[m, vocab]
            lowRank(lora.output, s.xl, m, s.logitsOut, s);                          // LoRA: logits += B'·(A·xl)
        }
        ops.endStep();
    }

    /**
     * The LoRA corrections of some products of one input x [n, in]: {@code t_j = A_j · x} for all
     * of them in one matmul ([n, rank] each), then {@code targets[target_j] += B'_j · t_j} (a
     * product with its add, through u [n, width]). Nothing when no adapter touches them.
     */
    private void lowRank(LoraProducts.Group g, Buf x, int n, Buf[] targets, Scratch s) {
        if (g == null) {
            return;
        }
        Buf[] t = s.loraT[g.a().length];
        ops.matmul(x, n, g.a(), t);
        for (int j = 0; j < t.length; j++) {
            Weight b = g.b()[j];
            ops.matmulAdd(t[j], n, b, s.loraU(b.rows()), targets[g.target()[j]]);
        }
    }
}
