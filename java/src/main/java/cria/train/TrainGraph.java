// The Llama graph for training: the forward pass of cria.model.Llama over whole windows, keeping what backward needs, and its backward.
package cria.train;

import cria.backend.Buf;
import cria.backend.Rope;
import cria.backend.TrainOps;
import cria.model.LlamaConfig;

/**
 * The same graph as {@code cria.model.Llama.forward} (embedding; per layer rmsnorm, q/k/v,
 * rope, causal grouped-query attention, output product into the residual stream, rmsnorm,
 * SwiGLU feed-forward into the residual stream; final rmsnorm and the output product; qwen2's
 * q/k/v biases and qwen3's per-head q/k norms where the params have them; the config's rope
 * style), run over
 * {@code seqs} windows of {@code len} tokens at once on {@link TrainOps}, keeping each layer's
 * activations for backward. Buffers are sized once, here; a step allocates nothing.
 *
 * <p>With {@code recompute}, only each layer's input is kept and the rest of a layer is computed
 * again just before its backward: memory for activations shrinks by about the layer count, at the
 * price of a second forward pass. Dropout masks are functions of a seed (see
 * {@link TrainOps#keep}), so the recomputed layer is the same layer.
 */
public final class TrainGraph {
    private final LlamaConfig c;
    private final TrainOps ops;
    private final Params p;
    private final Rope rope;
    private final int seqs;
    private final int len;
    private final int n;
    private final boolean recompute;
    private final float dropout;

    private final Buf[] xIn;      // [L + 1][n, dim] residual stream entering layer l; xIn[L] leaves the last layer
    private final Acts[] acts;    // per layer, or one shared set when recomputing
    private final Buf xf;         // [n, dim] final norm output
    private final Buf rstdF;      // [n, 1]
    // gradients of activations (shared by all layers)
    private final Buf dx;         // [n, dim] gradient of the residual stream
    private final Buf dxb;        // [n, dim]
    private final Buf dxf;        // [n, dim]
    private final Buf dy;         // [n, dim] gradient of a branch output (after dropout's mask)
    private final Buf dq;
    private final Buf dk;
    private final Buf dv;
    private final Buf dqPre;      // [n, qDim] gradient of q before its per-head norm (qwen3), else null
    private final Buf dkPre;
    private final Buf datt;
    private final Buf dh;         // [n, ffn]
    private final Buf dgate;
    private final Buf dup;
    private final Buf y;          // [n, dim] a branch output before it joins the residual stream
    // the multi-products' operands, filled per call (so that a step allocates nothing)
    private final Buf[] w3 = new Buf[3];
    private final Buf[] o3 = new Buf[3];
    private final Buf[] g3 = new Buf[3];
    private final Buf[] w2 = new Buf[2];
    private final Buf[] o2 = new Buf[2];
    private final Buf[] g2 = new Buf[2];
    // LoRA (when the params carry adapters): what each adapter keeps, and scratch by width
    private final float loraDropout;
    private final Buf[][] loraT;                 // [layer][target] [n, rank] scale · A·x, kept for backward
    private final java.util.Map<Integer, Buf> loraOut = new java.util.HashMap<>();   // [n, out] B·t, by out width
    private final java.util.Map<Integer, Buf> loraIn = new java.util.HashMap<>();    // [n, in] dropped input, by in width
    private final java.util.Map<Integer, Buf> loraDx = new java.util.HashMap<>();    // [n, in] an adapter's input gradient, by in width
    private final java.util.Map<Integer, Buf> loraDt = new java.util.HashMap<>();    // [n, rank] gradient of t, by rank

    /** What one layer keeps for backward. */
    private static final class Acts {
        final Buf xb1;    // attention input after rmsnorm
        final Buf rstd1;
        final Buf q;      // after rope
        final Buf k;      // after rope
        final Buf qPre;   // q before its per-head norm (qwen3), else null
        final Buf kPre;
        final Buf rstdQ;  // [n · heads, 1]
        final Buf rstdK;  // [n · kvHeads, 1]
        final Buf v;
        final Buf att;    // attention output
        final Buf lse;
        final Buf xMid;   // residual stream after the attention branch
        final Buf xb2;    // feed-forward input after rmsnorm
        final Buf rstd2;
        final Buf gate;
        final Buf up;
        final Buf h;      // silu(gate) * up

        Acts(TrainOps ops, LlamaConfig c, int n, String tag) {
            xb1 = ops.allocate(tag + "xb1", n, c.dim());
            rstd1 = ops.allocate(tag + "rstd1", n, 1);
            q = ops.allocate(tag + "q", n, c.qDim());
            k = ops.allocate(tag + "k", n, c.kvDim());
            v = ops.allocate(tag + "v", n, c.kvDim());
            qPre = c.qkNorm() ? ops.allocate(tag + "qPre", n, c.qDim()) : null;
            kPre = c.qkNorm() ? ops.allocate(tag + "kPre", n, c.kvDim()) : null;
            rstdQ = c.qkNorm() ? ops.allocate(tag + "rstdQ", n * c.heads(), 1) : null;
            rstdK = c.qkNorm() ? ops.allocate(tag + "rstdK", n * c.kvHeads(), 1) : null;
            att = ops.allocate(tag + "att", n, c.qDim());
            lse = ops.allocate(tag + "lse", n, c.heads());
            xMid = ops.allocate(tag + "xMid", n, c.dim());
            xb2 = ops.allocate(tag + "xb2", n, c.dim());
            rstd2 = ops.allocate(tag + "rstd2", n, 1);
            gate = ops.allocate(tag + "gate", n, c.ffn());
            up = ops.allocate(tag + "up", n, c.ffn());
            h = ops.allocate(tag + "h", n, c.ffn());
        }

        static long floatsPerRow(LlamaConfig c) {
            return 4L * c.dim() + 2 + 2L * c.qDim() + 2L * c.kvDim() + c.heads() + 3L * c.ffn()
                    + (c.qkNorm() ? c.qDim() + c.kvDim() + c.heads() + c.kvHeads() : 0);
        }
    }

    /**
     * @param seqs      windows per micro-batch
     * @param len       tokens per window (the context)
     * @param recompute keep only each layer's input and recompute the rest in backward
     * @param dropout   dropout probability on attention weights and residual branches (training only)
     */
    public TrainGraph(Params params, TrainOps ops, int seqs, int len, boolean recompute, float dropout) {
        this(params, ops, seqs, len, recompute, dropout, 0f);
    }

    /**
     * A graph whose products carry the params' LoRA adapters ({@link Params#addLora}):
     * {@code y = W·x + scale · B·(A·dropout(x))}, with {@code loraDropout} on each adapter's input
     * (its own mask per adapter; training steps only).
     */
    public TrainGraph(Params params, TrainOps ops, int seqs, int len, boolean recompute, float dropout, float loraDropout) {
        this.c = params.config();
        this.loraDropout = loraDropout;
        this.ops = ops;
        this.p = params;
        this.rope = new Rope(c.ropeDims(), c.ropeBase(), c.ropeFreqScale(), params.ropeFactors(), c.ropeNeox());
        this.seqs = seqs;
        this.len = len;
        this.n = Math.multiplyExact(seqs, len);
        this.recompute = recompute;
        this.dropout = dropout;
        int L = c.layers();
        xIn = new Buf[L + 1];
        for (int l = 0; l <= L; l++) {
            xIn[l] = ops.allocate("x" + l, n, c.dim());
        }
        acts = new Acts[recompute ? 1 : L];
        for (int i = 0; i < acts.length; i++) {
            acts[i] = new Acts(ops, c, n, "l" + i + ".");
        }
        xf = ops.allocate("xf", n, c.dim());
        rstdF = ops.allocate("rstdF", n, 1);
        dx = ops.allocate("dx", n, c.dim());
        dxb = ops.allocate("dxb", n, c.dim());
        dxf = ops.allocate("dxf", n, c.dim());
        dy = ops.allocate("dy", n, c.dim());
        y = ops.allocate("y", n, c.dim());
        dq = ops.allocate("dq", n, c.qDim());
        dk = ops.allocate("dk", n, c.kvDim());
        dv = ops.allocate("dv", n, c.kvDim());
        dqPre = c.qkNorm() ? ops.allocate("dqPre", n, c.qDim()) : null;
        dkPre = c.qkNorm() ? ops.allocate("dkPre", n, c.kvDim()) : null;
        datt = ops.allocate("datt", n, c.qDim());
        dh = ops.allocate("dh", n, c.ffn());
        dgate = ops.allocate("dgate", n, c.ffn());
        dup = ops.allocate("dup", n, c.ffn());
        loraT = new Buf[c.layers()][LoraTarget.values().length];
        for (Params.LoraPair lp : params.loras()) {
            int l = layerOf(lp);
            int t = lp.target().ordinal();
            loraT[l][t] = ops.allocate("lora" + l + "." + lp.target().shortName(), n, lp.rank());
            Params.Param w = params.product(l, lp.target());
            loraOut.computeIfAbsent(w.rows, k -> ops.allocate("loraOut" + k, n, k));
            loraDt.computeIfAbsent(lp.rank(), k -> ops.allocate("loraDt" + k, n, k));
            if (loraDropout > 0) {
                loraIn.computeIfAbsent(w.cols, k -> ops.allocate("loraIn" + k, n, k));
                loraDx.computeIfAbsent(w.cols, k -> ops.allocate("loraDx" + k, n, k));
            }
        }
    }

    private int layerOf(Params.LoraPair lp) {
        String name = lp.a().name; // blk.<l>.
        return Integer.parseInt(name.substring(4, name.indexOf('.', 4)));
    }

    /** Bytes of the buffers adapters of rank {@code rank} on {@code perLayer} products of every layer add (float32). */
    public static long loraActivationBytes(LlamaConfig c, int seqs, int len, int rank, int perLayer, boolean dropout) {
        long rows = (long) seqs * len;
        long widths = 2L * c.dim() + 2L * c.qDim() + 2L * c.kvDim() + 2L * c.ffn();
        return 4L * rows * ((long) c.layers() * perLayer * rank + rank + widths * (dropout ? 3 : 1));
    }

    /** Bytes of activations a graph of this size keeps (float32), for memory checks before allocating. */
    public static long activationBytes(LlamaConfig c, int seqs, int len, boolean recompute) {
        long rows = (long) seqs * len;
        long perRow = (c.layers() + 1L) * c.dim() + (recompute ? 1 : c.layers()) * Acts.floatsPerRow(c)
                + 6L * c.dim() + 1 + 2L * c.qDim() + 2L * c.kvDim() + 3L * c.ffn()
                + (c.qkNorm() ? c.qDim() + c.kvDim() : 0);
        return 4L * rows * perRow;
    }

    /** Rows of a full micro-batch (windows × tokens). */
    public int rows() {
        return n;
    }

    public int windows() {
        return seqs;
    }

    public int windowLength() {
        return len;
    }

    /**
     * Forward and backward of one micro-batch: gradients of {@code scale · Σ loss} accumulate into
     * the parameters' gradients (which the caller zeroes once per step).
     *
     * @param inputs  [seqs · len] token ids, window-major
     * @param targets [seqs · len] next tokens (negative: not scored)
     * @param scale   gradient scale, e.g. 1 / (scored tokens · accumulation steps)
     * @param seed    dropout seed of this micro-batch
     * @return the sum of the scored tokens' cross-entropies
     */
    public double trainStep(int[] inputs, int[] targets, float scale, long seed) {
        forward(inputs, n, seqs, dropout, loraDropout, seed);
        double loss = ops.crossEntropy(xf, p.out.value, targets, n, scale, dxf, p.out.frozen() ? null : p.out.grad);
        backward(inputs, seed);
        return loss;
    }

    /**
     * The summed cross-entropy of {@code windows} windows (at most {@link #windows()}), without
     * dropout and without gradients.
     */
    public double loss(int[] inputs, int[] targets, int windows) {
        if (windows < 1 || windows > seqs) {
            throw new IllegalArgumentException("windows " + windows + " outside 1.." + seqs);
        }
        int rows = windows * len;
        forward(inputs, rows, windows, 0f, 0f, 0);
        return ops.crossEntropy(xf, p.out.value, targets, rows, 1f, null, null);
    }

    private Acts acts(int l) {
        return acts[recompute ? 0 : l];
    }

    private static long siteSeed(long seed, int layer, int site) {
        long z = seed ^ (0x632BE59BD9B4E019L * (layer * 4L + site + 1));
        z = (z ^ (z >>> 31)) * 0x9E3779B97F4A7C15L;
        return z ^ (z >>> 29);
    }

    private void forward(int[] inputs, int rows, int windows, float drop, float loraDrop, long seed) {
        ops.embed(p.emb.value, inputs, rows, xIn[0]);
        for (int l = 0; l < c.layers(); l++) {
            layerForward(l, acts(l), rows, windows, drop, loraDrop, seed);
        }
        ops.rmsnorm(xIn[c.layers()], p.outNorm.value, c.rmsEps(), rows, xf, rstdF);
    }

    /** Layer l from xIn[l] into xIn[l + 1], keeping its activations in a. */
    private void layerForward(int l, Acts a, int rows, int windows, float drop, float loraDrop, long seed) {
        float eps = c.rmsEps();
        Buf x = xIn[l];
        // attention block: xMid = x + dropout(wo · attention(rope(wq·xb1), rope(wk·xb1), wv·xb1))
        ops.rmsnorm(x, p.attnNorm[l].value, eps, rows, a.xb1, a.rstd1);
        boolean qkNorm = c.qkNorm();
        Buf q = qkNorm ? a.qPre : a.q;
        Buf k = qkNorm ? a.kPre : a.k;
        ops.matmuls(a.xb1, fill(w3, p.wq[l].value, p.wk[l].value, p.wv[l].value), rows, fill(o3, q, k, a.v));
        addBias(q, p.qBias[l], rows);                                // qwen2: q, k, v += their (frozen) biases
        addBias(k, p.kBias[l], rows);
        addBias(a.v, p.vBias[l], rows);
        loraForward(l, LoraTarget.Q, a.xb1, q, rows, loraDrop, seed);    // q += scale · Bq·(Aq·xb1), likewise k, v
        loraForward(l, LoraTarget.K, a.xb1, k, rows, loraDrop, seed);
        loraForward(l, LoraTarget.V, a.xb1, a.v, rows, loraDrop, seed);
        if (qkNorm) {                                                // qwen3: each head of q, k RMS-normalized before rope
            ops.rmsnormHeads(a.qPre, p.qNorm[l].value, eps, c.headDim(), rows, a.q, a.rstdQ);
            ops.rmsnormHeads(a.kPre, p.kNorm[l].value, eps, c.headDim(), rows, a.k, a.rstdK);
        }
        ops.rope(a.q, c.heads(), c.headDim(), rows, len, rope, false);
        ops.rope(a.k, c.kvHeads(), c.headDim(), rows, len, rope, false);
        ops.attention(a.q, a.k, a.v, windows, len, c.heads(), c.kvHeads(), c.headDim(), a.att, a.lse, drop, siteSeed(seed, l, 0));
        ops.matmul(a.att, p.wo[l].value, rows, y);
        loraForward(l, LoraTarget.O, a.att, y, rows, loraDrop, seed);
        if (drop > 0) {
            ops.dropout(y, rows, drop, siteSeed(seed, l, 1));
        }
        ops.copy(x, rows, a.xMid);
        ops.add(a.xMid, y, rows);
        // feed-forward block: xIn[l+1] = xMid + dropout(down · (silu(gate·xb2) * up·xb2))
        ops.rmsnorm(a.xMid, p.ffnNorm[l].value, eps, rows, a.xb2, a.rstd2);
        ops.matmuls(a.xb2, fill(w2, p.gate[l].value, p.up[l].value), rows, fill(o2, a.gate, a.up));
        loraForward(l, LoraTarget.GATE, a.xb2, a.gate, rows, loraDrop, seed);
        loraForward(l, LoraTarget.UP, a.xb2, a.up, rows, loraDrop, seed);
        ops.swiglu(a.gate, a.up, rows, a.h);
        ops.matmul(a.h, p.down[l].value, rows, y);
        loraForward(l, LoraTarget.DOWN, a.h, y, rows, loraDrop, seed);
        if (drop > 0) {
            ops.dropout(y, rows, drop, siteSeed(seed, l, 2));
        }
        ops.copy(a.xMid, rows, xIn[l + 1]);
        ops.add(xIn[l + 1], y, rows);
    }

    private void addBias(Buf x, Params.Param bias, int rows) {
        if (bias != null) {
            ops.addBias(x, bias.value, rows);
        }
    }

    private static long loraSeed(long seed, int layer, LoraTarget t) {
        return siteSeed(seed ^ 0x4C6F52414C6F5241L, layer * 2 + t.ordinal() / 4, t.ordinal() % 4);
    }

    /** The input of target t's adapter: x itself, or a copy of it through the adapter's dropout mask. */
    private Buf loraInput(int l, LoraTarget t, Buf x, int rows, float drop, long seed) {
        if (drop <= 0) {
            return x;
        }
        Buf xd = loraIn.get(x.cols());
        ops.copy(x, rows, xd);
        ops.dropout(xd, rows, drop, loraSeed(seed, l, t));
        return xd;
    }

    /** {@code out += scale · B·(A·dropout(x))} for target t of layer l, when it has an adapter; keeps {@code scale · A·x}. */
    private void loraForward(int l, LoraTarget t, Buf x, Buf out, int rows, float drop, long seed) {
        Params.LoraPair lp = p.lora(l, t);
        if (lp == null) {
            return;
        }
        Buf tt = loraT[l][t.ordinal()];
        ops.matmul(loraInput(l, t, x, rows, drop, seed), lp.a().value, rows, tt);
        ops.scale(tt, rows, lp.scale());
        Buf u = loraOut.get(out.cols());
        ops.matmul(tt, lp.b().value, rows, u);
        ops.add(out, u, rows);
    }

    /**
     * The adapter's part of a product's backward, after the base product's: {@code dB += doutᵀ·t},
     * {@code dA += scale · (dout·B)ᵀ·x} and {@code dx += scale · (dout·B)·A} (through the mask).
     */
    private void loraBackward(int l, LoraTarget t, Buf dout, Buf x, Buf dxAcc, long seed) {
        Params.LoraPair lp = p.lora(l, t);
        if (lp == null) {
            return;
        }
        Buf dt = loraDt.get(lp.rank());
        ops.matmulBackward(dout, loraT[l][t.ordinal()], lp.b().value, n, dt, false, grad(lp.b()));
        ops.scale(dt, n, lp.scale());
        if (loraDropout > 0) {
            Buf xd = loraInput(l, t, x, n, loraDropout, seed);
            Buf dxl = loraDx.get(x.cols());
            ops.matmulBackward(dt, xd, lp.a().value, n, dxl, false, grad(lp.a()));
            ops.dropout(dxl, n, loraDropout, loraSeed(seed, l, t));
            ops.add(dxAcc, dxl, n);
        } else {
            ops.matmulBackward(dt, x, lp.a().value, n, dxAcc, true, grad(lp.a()));
        }
    }

    private static Buf[] fill(Buf[] into, Buf b0, Buf b1) {
        into[0] = b0;
        into[1] = b1;
        return into;
    }

    private static Buf[] fill(Buf[] into, Buf b0, Buf b1, Buf b2) {
        into[0] = b0;
        into[1] = b1;
        into[2] = b2;
        return into;
    }

    private static Buf grad(Params.Param q) {
        return q.frozen() || q.grad == null ? null : q.grad;
    }

    /**
     * The gradient of a residual branch's output: the stream's own gradient, or, with dropout, a
     * copy of it through the same mask the forward pass applied (no copy without dropout).
     */
    private Buf branchGradient(long seed, int layer, int site) {
        if (dropout <= 0) {
            return dx;
        }
        ops.copy(dx, n, dy);
        ops.dropout(dy, n, dropout, siteSeed(seed, layer, site));
        return dy;
    }

    private void backward(int[] inputs, long seed) {
        float eps = c.rmsEps();
        int L = c.layers();
        ops.zero(dx);
        ops.rmsnormBackward(dxf, xIn[L], p.outNorm.value, rstdF, n, dx, p.outNorm.grad);
        int lowest = p.lowestTrainableLayer();
        for (int l = L - 1; l >= lowest; l--) {
            Acts a = acts(l);
            if (recompute && l < L - 1) { // the shared set still holds the last layer's
                layerForward(l, a, n, seqs, dropout, loraDropout, seed);
            }
            // feed-forward block
            Buf dDown = branchGradient(seed, l, 2);
            ops.matmulBackward(dDown, a.h, p.down[l].value, n, dh, false, grad(p.down[l]));
            loraBackward(l, LoraTarget.DOWN, dDown, a.h, dh, seed);
            ops.swigluBackward(dh, a.gate, a.up, n, dgate, dup);
            ops.matmulsBackward(fill(o2, dgate, dup), a.xb2, fill(w2, p.gate[l].value, p.up[l].value), n, dxb, false,
                    fill(g2, grad(p.gate[l]), grad(p.up[l])));
            loraBackward(l, LoraTarget.GATE, dgate, a.xb2, dxb, seed);
            loraBackward(l, LoraTarget.UP, dup, a.xb2, dxb, seed);
            ops.rmsnormBackward(dxb, a.xMid, p.ffnNorm[l].value, a.rstd2, n, dx, p.ffnNorm[l].grad);
            // attention block
            Buf dO = branchGradient(seed, l, 1);
            ops.matmulBackward(dO, a.att, p.wo[l].value, n, datt, false, grad(p.wo[l]));
            loraBackward(l, LoraTarget.O, dO, a.att, datt, seed);
            ops.attentionBackward(datt, a.q, a.k, a.v, a.att, a.lse, seqs, len, c.heads(), c.kvHeads(), c.headDim(), dropout,
                    siteSeed(seed, l, 0), dq, dk, dv);
            ops.rope(dq, c.heads(), c.headDim(), n, len, rope, true);
            ops.rope(dk, c.kvHeads(), c.headDim(), n, len, rope, true);
            Buf gq = dq;
            Buf gk = dk;
            if (c.qkNorm()) { // through the per-head norms (their weights' gradients accumulate; frozen ones are never stepped)
                ops.zero(dqPre);
                ops.zero(dkPre);
                ops.rmsnormHeadsBackward(dq, a.qPre, p.qNorm[l].value, a.rstdQ, c.headDim(), n, dqPre, p.qNorm[l].grad);
                ops.rmsnormHeadsBackward(dk, a.kPre, p.kNorm[l].value, a.rstdK, c.headDim(), n, dkPre, p.kNorm[l].grad);
                gq = dqPre;
                gk = dkPre;
            }
            // the biases add a constant: q's gradient is the product's
            ops.matmulsBackward(fill(o3, gq, gk, dv), a.xb1, fill(w3, p.wq[l].value, p.wk[l].value, p.wv[l].value), n, dxb, false,
                    fill(g3, grad(p.wq[l]), grad(p.wk[l]), grad(p.wv[l])));
            loraBackward(l, LoraTarget.Q, gq, a.xb1, dxb, seed);
            loraBackward(l, LoraTarget.K, gk, a.xb1, dxb, seed);
            loraBackward(l, LoraTarget.V, dv, a.xb1, dxb, seed);
            ops.rmsnormBackward(dxb, xIn[l], p.attnNorm[l].value, a.rstd1, n, dx, p.attnNorm[l].grad);
        }
        if (lowest == 0 && !p.emb.frozen()) {
            ops.embedBackward(dx, inputs, n, p.emb.grad);
        }
    }
}
