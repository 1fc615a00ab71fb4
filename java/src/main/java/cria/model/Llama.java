// The Llama forward pass, written once against Ops: a batch of (token, position, sequence) entries in, logits out.
package cria.model;

import cria.backend.AttnSpec;
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
 * A factorized block matrix ({@link LowRankTensors}: W ≈ B·A) runs as two products: its first
 * factor A takes W's place in the step that reads the input ({@code t = A·x}, into a buffer of
 * the rank's width), then a step of its own applies B ({@code y = B·t}) into W's output. Dense
 * matrices keep the fused steps; a step whose matrices are all dense runs exactly as before.
 * Programs never meet this class: {@code cria.engine.Model} is their handle on a loaded file
 * (tokenizer, template, backend, memory) and runs a {@code Llama} inside.
 */
public final class Llama {
    private final LlamaConfig c;
    private final LlamaWeights w;
    private final Backend backend;
    private final Ops ops;
    private final Rope[] rope;       // per layer (Gemma's windowed layers have their own base; the same object otherwise)
    private final Rope ropeLong;     // phi3 long-rope: the factors past the original context, or null
    private final int ropeLongFrom;  // ... used when a sequence may hold more positions than this
    private final Stage[] qkv;       // per layer: wq, wk, wv (or their first factors) of xb
    private final Stage[] wo;        // per layer: wo (or its first factor) of att
    private final Stage[] gateUp;    // per layer: gate, up (or their first factors) of xb
    private final Stage[] down;      // per layer: down (or its first factor) of hb
    private final AttnSpec[] attn;   // per layer: c.attnSpec(l), made once (nothing allocated per token)
    private final Weight[] output;
    private final LoraProducts lora;

    /**
     * The products of one input x, as the forward pass runs them: {@code first[j]·x} (the dense
     * matrix, or a factorized one's A) in one step, then {@code second[j][0]·t_j} (B, as a
     * one-element array for the ops) for each factorized j; {@code second[j]} is null for a dense
     * j. {@code rank[j]} is j's rank (0 when dense).
     */
    private record Stage(Weight[] first, Weight[][] second, int[] rank) {
        static Stage of(Weight[] dense, Weight[] a, Weight[] b) {
            Weight[] first = new Weight[dense.length];
            Weight[][] second = new Weight[dense.length][];
            int[] rank = new int[dense.length];
            for (int j = 0; j < dense.length; j++) {
                first[j] = a[j] == null ? dense[j] : a[j];
                second[j] = b[j] == null ? null : new Weight[] {b[j]};
                rank[j] = a[j] == null ? 0 : a[j].rows();
            }
            return new Stage(first, second, rank);
        }

        boolean dense() {
            for (Weight[] b : second) {
                if (b != null) {
                    return false;
                }
            }
            return true;
        }
    }

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
        this.lora = new LoraProducts(adapters, config, backend);
        this.ops = backend.ops();
        LlamaWeights.LongRope lr = weights.longRope;
        Rope global = new Rope(config.ropeDims(), config.ropeBase(), config.ropeFreqScale(),
                lr != null && lr.shortFactors() != null ? lr.shortFactors() : weights.ropeFactors, config.ropeNeox());
        this.rope = new Rope[config.layers()];
        Rope windowed = null;  // the windowed layers' one (Gemma: one base and scale for all of them)
        for (int l = 0; l < rope.length; l++) {
            if (config.ropeBase(l) == config.ropeBase() && config.ropeFreqScale(l) == config.ropeFreqScale()) {
                rope[l] = global;
            } else {
                if (windowed == null) {
                    windowed = new Rope(config.ropeDims(), config.ropeBase(l), config.ropeFreqScale(l), weights.ropeFactors, config.ropeNeox());
                }
                rope[l] = windowed;
            }
        }
        // phi3's long factors, for a cache whose sequences may pass the original context (llama.cpp's choice)
        this.ropeLong = lr == null || lr.longFactors() == null ? null
                : new Rope(config.ropeDims(), config.ropeBase(), config.ropeFreqScale(), lr.longFactors(), config.ropeNeox());
        this.ropeLongFrom = lr == null ? Integer.MAX_VALUE : lr.originalContext();
        this.qkv = new Stage[c.layers()];
        this.wo = new Stage[c.layers()];
        this.gateUp = new Stage[c.layers()];
        this.down = new Stage[c.layers()];
        this.attn = new AttnSpec[c.layers()];
        this.output = new Weight[] {weights.output};
        Weight[][] a = w.lowRankA;  // [role][layer], roles q, k, v, output, gate, up, down
        Weight[][] b = w.lowRankB;
        for (int l = 0; l < c.layers(); l++) {
            qkv[l] = Stage.of(new Weight[] {w.wq[l], w.wk[l], w.wv[l]}, new Weight[] {a[0][l], a[1][l], a[2][l]},
                    new Weight[] {b[0][l], b[1][l], b[2][l]});
            wo[l] = Stage.of(new Weight[] {w.wo[l]}, new Weight[] {a[3][l]}, new Weight[] {b[3][l]});
            gateUp[l] = Stage.of(new Weight[] {w.gate[l], w.up[l]}, new Weight[] {a[4][l], a[5][l]}, new Weight[] {b[4][l], b[5][l]});
            down[l] = Stage.of(new Weight[] {w.down[l]}, new Weight[] {a[6][l]}, new Weight[] {b[6][l]});
            attn[l] = c.attnSpec(l);
            if (lr != null && lr.attnFactor() != 1f) { // it multiplies rotated q and k: with the whole head rotating, every score by its square
                attn[l] = new AttnSpec(attn[l].scale() * lr.attnFactor() * lr.attnFactor(), attn[l].window(), attn[l].softcap());
            }
        }
    }

    /** Every stage of the blocks, in a fixed order (for sizing the rank buffers). */
    private Stage[][] stages() {
        return new Stage[][] {qkv, wo, gateUp, down};
    }

    /**
     * The rank buffers a session needs: one per (rank, position in its stage) that some
     * factorized product has, so products of one stage never share one; a key is
     * {@code rank * 4 + position}.
     */
    private java.util.SortedSet<Integer> rankBuffers() {
        java.util.SortedSet<Integer> keys = new java.util.TreeSet<>();
        for (Stage[] st : stages()) {
            for (Stage stage : st) {
                for (int j = 0; j < stage.rank.length; j++) {
                    if (stage.rank[j] > 0) {
                        keys.add(stage.rank[j] * 4 + j);
                    }
                }
            }
        }
        return keys;
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
        final Buf[] xb2Out;   // {xb2}: where LoRA corrections of a block output go before Gemma's post-norm
        final Buf[] logitsOut;
        // LoRA corrections only (empty without adapters): loraT[k] holds k buffers [max(B, Lg), rank]
        // for the low-rank activations A·x of k products of one input; loraU one [rows, width] per
        // width of corrected outputs, for B'·(A·x) before it is added in.
        final Buf[][] loraT;
        final Buf[] loraU;
        // Factorized matrices only: per stage (qkv, wo, gateUp, down) and layer, where each first
        // product writes (its output, or for a factorized one a [B, rank] buffer t) and, for a
        // factorized one, its output as a one-element array for B·t. Dense stages share the plain arrays.
        final Bufs[] qkvBufs;
        final Bufs[] woBufs;
        final Bufs[] gateUpBufs;
        final Bufs[] downBufs;

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
            xb2Out = new Buf[] {xb2};
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
            java.util.Map<Integer, Buf> t = new java.util.HashMap<>();
            for (int key : rankBuffers()) {
                t.put(key, backend.allocate("lowrank.t" + (key & 3) + "." + (key >> 2), batchSize, key >> 2));
            }
            qkvBufs = bufs(qkv, qkvOut, t);
            woBufs = bufs(wo, new Buf[] {xb2}, t);
            gateUpBufs = bufs(gateUp, gateUpOut, t);
            downBufs = bufs(down, new Buf[] {xb2}, t);
        }

        private Bufs[] bufs(Stage[] stages, Buf[] outs, java.util.Map<Integer, Buf> t) {
            Bufs dense = new Bufs(outs, null);
            Bufs[] b = new Bufs[stages.length];
            for (int l = 0; l < stages.length; l++) {
                Stage st = stages[l];
                if (st.dense()) {
                    b[l] = dense;
                    continue;
                }
                Buf[] first = new Buf[outs.length];
                Buf[][] second = new Buf[outs.length][];
                for (int j = 0; j < outs.length; j++) {
                    first[j] = st.rank[j] == 0 ? outs[j] : t.get(st.rank[j] * 4 + j);
                    second[j] = st.rank[j] == 0 ? null : new Buf[] {outs[j]};
                }
                b[l] = new Bufs(first, second);
            }
            return b;
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

        /**
         * After {@link #forwardHidden}: row j holds the final hidden state (after the output norm)
         * of the batch's j-th entry that wanted logits.
         */
        public Buf hidden() {
            return xl;
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

    /**
     * A stage's buffers in one session: {@code first[j]} receives its first product (the output,
     * or t for a factorized j); {@code second[j]} is {output} for a factorized j, else null.
     */
    record Bufs(Buf[] first, Buf[][] second) {}

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
        for (int key : rankBuffers()) {
            bytes += 4L * batchSize * (key >> 2);
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
            step(batch, cache, s, true);
        }
    }

    /**
     * As {@link #forward}, without the output product: afterwards {@code s.hidden()} row j holds
     * the output-normed hidden state of the batch's j-th entry that asked for logits (for embeddings).
     */
    public void forwardHidden(Batch batch, KvCache cache, Scratch s) {
        synchronized (backend) {
            step(batch, cache, s, false);
        }
    }

    private void step(Batch batch, KvCache cache, Scratch s, boolean wantLogits) {
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
        Rope r = ropeLong != null && cache.config().contextLength() > ropeLongFrom ? ropeLong : null; // else each layer's own
        float eps = c.rmsEps();
        // The step's ops in the order they run. Nothing is deferred or reordered behind them: on the
        // GPU each line launches its own kernels (a fused op one kernel in a decode step, where the
        // weights' types and shapes allow; CudaOps says when), so this list is what a step launches.
        ops.beginStep(batch, cache);
        ops.embed(w.tokenEmbedding, batch, s.x);                                   // x[n, dim] = embeddings
        if (c.isGemma()) {                                                          // gemma: x *= sqrt(dim)
            ops.scale(s.x, (float) Math.sqrt(c.dim()), n);
        }
        for (int l = 0; l < c.layers(); l++) {
            // attention block
            ops.rmsnormMatmul(s.x, w.attnNorm[l], eps, n, s.xb, qkv[l].first, s.qkvBufs[l].first); // xb = rmsnorm(x); q, k, v = wq, wk, wv · xb
            second(qkv[l], s.qkvBufs[l], n);                                        // factorized: q, k, v = B·t (t = A·xb above)
            lowRank(lora.qkv[l], s.xb, n, s.qkvOut, s);                             // LoRA: q, k, v += B'·(A·xb), those adapted
            if (w.qBias[l] != null) {                                              // qwen2: q, k, v += their biases
                ops.addBias(s.q, w.qBias[l], n);
            }
            if (w.kBias[l] != null) {
                ops.addBias(s.k, w.kBias[l], n);
            }
            if (w.vBias[l] != null) {
                ops.addBias(s.v, w.vBias[l], n);
            }
            if (c.qkNorm()) {                                                      // qwen3, gemma3: each head of q, k RMS-normalized
                ops.rmsnormHeads(s.q, w.qNorm[l], eps, c.headDim(), n);
                ops.rmsnormHeads(s.k, w.kNorm[l], eps, c.headDim(), n);
            }
            ops.ropeStoreKv(s.q, s.k, s.v, c.headDim(), batch, r != null ? r : rope[l], cache, l); // rotate q, k; cache[l][seq][pos] = k, v
            ops.attention(s.q, cache, l, c.heads(), c.kvHeads(), c.headDim(), attn[l], batch, s.att);      // att[n, qDim]
            if (c.isGemma()) {                                                      // gemma: xb2 = rmsnorm(wo · att); x += xb2
                matmulNormAdd(wo[l], s.woBufs[l], s.att, n, lora.wo[l], w.attnPostNorm[l], s);
            } else {
                matmulAdd(wo[l], s.woBufs[l], s.att, n, s.xb2, s.x);               // xb2 = wo · att; x += xb2
                lowRank(lora.wo[l], s.att, n, s.xOut, s);                          // LoRA: x += B'·(A·att)
            }
            // feed-forward block: xb = rmsnorm(x); hb2 = up · xb; hb = silu(gate · xb) * hb2  [n, ffn]
            if (lora.gateUp[l] == null && gateUp[l].dense() && !c.isGemma()) {
                ops.rmsnormGateUpSwiglu(s.x, w.ffnNorm[l], eps, n, s.xb, w.gate[l], w.up[l], s.hb, s.hb2);
            } else {  // LoRA on gate or up, or either factorized, or GELU: the gate waits for the other products
                ops.rmsnormMatmul(s.x, w.ffnNorm[l], eps, n, s.xb, gateUp[l].first, s.gateUpBufs[l].first); // hb = gate · xb; hb2 = up · xb
                second(gateUp[l], s.gateUpBufs[l], n);                             // factorized: hb, hb2 = B·t (t = A·xb above)
                lowRank(lora.gateUp[l], s.xb, n, s.gateUpOut, s);                  // LoRA: hb, hb2 += B'·(A·xb), those adapted
                if (c.isGemma()) {
                    ops.geglu(s.hb, s.hb2, n);                                     // gemma: hb = gelu(hb) * hb2
                } else {
                    ops.swiglu(s.hb, s.hb2, n);                                    // hb = silu(hb) * hb2
                }
            }
            if (c.isGemma()) {                                                      // gemma: xb2 = rmsnorm(down · hb); x += xb2
                matmulNormAdd(down[l], s.downBufs[l], s.hb, n, lora.down[l], w.ffnPostNorm[l], s);
            } else {
                matmulAdd(down[l], s.downBufs[l], s.hb, n, s.xb2, s.x);            // xb2 = down · hb; x += xb2
                lowRank(lora.down[l], s.hb, n, s.xOut, s);                         // LoRA: x += B'·(A·hb)
            }
        }
        int m = batch.logitCount();
        if (m > 0 && wantLogits) {
            ops.gather(s.x, batch.logitRows(), m, s.xl);                           // xl[m, dim] = rows that want logits
            ops.rmsnormMatmul(s.xl, w.outputNorm, eps, m, s.xl, output, s.logitsOut); // xl = rmsnorm(xl) in place; logits[m, vocab]
            lowRank(lora.output, s.xl, m, s.logitsOut, s);                          // LoRA: logits += B'·(A·xl)
            if (c.isGemma() && c.gemma().finalSoftcap() > 0) {                      // gemma: logits = cap * tanh(logits / cap)
                ops.softcap(s.logits, c.gemma().finalSoftcap(), m);
            }
        } else if (m > 0) {                                                         // hidden states only (embeddings)
            ops.gather(s.x, batch.logitRows(), m, s.xl);                           // xl[m, dim] = rows that want them
            ops.rmsnorm(s.xl, w.outputNorm, eps, m, s.xl);                         // xl = rmsnorm(xl) in place
        }
        ops.endStep();
    }

    /** The second products of a stage's factorized matrices: {@code out_j = B_j · t_j} [n, rows of B_j]; nothing for a dense stage. */
    private void second(Stage st, Bufs b, int n) {
        if (b.second == null) {
            return;
        }
        for (int j = 0; j < st.second.length; j++) {
            if (st.second[j] != null) {
                ops.matmul(b.first[j], n, st.second[j], b.second[j]);
            }
        }
    }

    /**
     * {@code out = W · x; residual += out} for a one-matrix stage: one fused step when W is dense;
     * factorized, {@code t = A · x} [n, rank], then {@code out = B · t; residual += out}.
     */
    private void matmulAdd(Stage st, Bufs b, Buf x, int n, Buf out, Buf residual) {
        if (b.second == null) {
            ops.matmulAdd(x, n, st.first[0], out, residual);
            return;
        }
        ops.matmul(x, n, st.first, b.first);
        ops.matmulAdd(b.first[0], n, st.second[0][0], out, residual);
    }

    /**
     * Gemma's block output: {@code xb2 = W · x} (a factorized W as its two products), the LoRA
     * correction added to xb2, then {@code xb2 = rmsnorm(xb2) * norm} and {@code x += xb2}.
     */
    private void matmulNormAdd(Stage st, Bufs b, Buf x, int n, LoraProducts.Group g, Weight norm, Scratch s) {
        ops.matmul(x, n, st.first, b.first);                                       // xb2 = W · x (or t = A · x)
        second(st, b, n);                                                           // factorized: xb2 = B · t
        lowRank(g, x, n, s.xb2Out, s);                                              // LoRA: xb2 += B'·(A·x)
        ops.rmsnorm(s.xb2, norm, c.rmsEps(), n, s.xb2);                            // xb2 = rmsnorm(xb2) in place
        ops.add(s.x, s.xb2, n);                                                     // x += xb2
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
