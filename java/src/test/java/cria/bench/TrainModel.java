// A small LLaMA-shaped model trained through any TrainOps: one step is forward, loss, backward and AdamW over every parameter (benchmarks and tests).
package cria.bench;

import cria.backend.Buf;
import cria.backend.Rope;
import cria.backend.TrainOps;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The graph of a pre-norm LLaMA block stack written against {@link TrainOps} alone (embedding,
 * per layer rmsnorm → q, k, v → rope → attention → o → residual, rmsnorm → gate, up → SwiGLU →
 * down → residual, final rmsnorm and the fused cross-entropy with its own output matrix), its
 * backward in reverse, and AdamW. Every buffer is allocated once in the constructor, so a warm
 * {@link #step()} allocates nothing but what the ops do. Not the trainer: a fixed workload to
 * time ops and check them as a whole.
 */
public final class TrainModel {
    /** The shape of the model and of one micro-batch ({@code seqs} windows of {@code len} tokens). */
    public record Shape(int dim, int layers, int heads, int kvHeads, int ffn, int vocab, int len, int seqs, float drop) {
        public int headDim() {
            return dim / heads;
        }

        public int n() {
            return len * seqs;
        }

        /** Multiply-adds of one token's forward pass (matrix products, the causal half of attention, the output product). */
        public double forwardMacs() {
            int hd = headDim();
            double mm = (double) dim * (heads * hd + 2 * kvHeads * hd) + heads * hd * dim + 3.0 * dim * ffn;
            double att = 2.0 * heads * hd * (len + 1) / 2.0;
            return layers * (mm + att) + (double) dim * vocab;
        }
    }

    /** The benchmark's small shape: dim 64, 5 layers, 8/4 heads, ffn 172, vocab 512, ctx 256, batch 32. */
    public static final Shape SMALL = new Shape(64, 5, 8, 4, 172, 512, 256, 32, 0f);
    /** The benchmark's larger shape: dim 288, 6 layers, 6/6 heads, ffn 768, vocab 512, ctx 256, batch 16. */
    public static final Shape LARGE = new Shape(288, 6, 6, 6, 768, 512, 256, 16, 0f);

    final TrainOps t;
    final Shape s;
    final Rope rope;
    final int n;
    final int[] tokens;
    final int[] targets;
    final List<Buf[]> params = new ArrayList<>(); // {p, g, m, v}
    final Buf embed, dEmbed, normF, dNormF, out, dOut;
    final Layer[] layers;
    final Buf x0, xf, rstdF, dxf, dx, dxn, datt, dq, dk, dv, dh, dgate, dup;
    final Buf[] dQkv, dGateUp;
    int step;

    /** One layer's weights, their gradients, and the activations backward needs. */
    final class Layer {
        final Buf n1, wq, wk, wv, wo, n2, w1, w3, w2;
        final Buf dn1, dwq, dwk, dwv, dwo, dn2, dw1, dw3, dw2;
        final Buf xIn, xn1, rstd1, q, k, v, att, lse, o, x1, xn2, rstd2, gate, up, h, down;
        // the multi-products' operands (q, k, v of xn1; gate and up of xn2)
        final Buf[] wQkv, qkv, dwQkv, w13, gateUp, dw13;

        Layer(Random rnd, int li) {
            int qd = s.heads() * s.headDim(), kd = s.kvHeads() * s.headDim();
            n1 = param("n1." + li, 1, s.dim(), 0, rnd);
            dn1 = grad(n1);
            wq = param("wq." + li, qd, s.dim(), 1 / Math.sqrt(s.dim()), rnd);
            dwq = grad(wq);
            wk = param("wk." + li, kd, s.dim(), 1 / Math.sqrt(s.dim()), rnd);
            dwk = grad(wk);
            wv = param("wv." + li, kd, s.dim(), 1 / Math.sqrt(s.dim()), rnd);
            dwv = grad(wv);
            wo = param("wo." + li, s.dim(), qd, 1 / Math.sqrt(qd), rnd);
            dwo = grad(wo);
            n2 = param("n2." + li, 1, s.dim(), 0, rnd);
            dn2 = grad(n2);
            w1 = param("w1." + li, s.ffn(), s.dim(), 1 / Math.sqrt(s.dim()), rnd);
            dw1 = grad(w1);
            w3 = param("w3." + li, s.ffn(), s.dim(), 1 / Math.sqrt(s.dim()), rnd);
            dw3 = grad(w3);
            w2 = param("w2." + li, s.dim(), s.ffn(), 1 / Math.sqrt(s.ffn()), rnd);
            dw2 = grad(w2);
            xIn = li == 0 ? x0 : layers[li - 1].down; // the residual stream is kept in each layer's down (after the add)
            xn1 = t.allocate("xn1", n, s.dim());
            rstd1 = t.allocate("rstd1", n, 1);
            q = t.allocate("q", n, qd);
            k = t.allocate("k", n, kd);
            v = t.allocate("v", n, kd);
            att = t.allocate("att", n, qd);
            lse = t.allocate("lse", n, s.heads());
            o = t.allocate("o", n, s.dim());
            x1 = t.allocate("x1", n, s.dim());
            xn2 = t.allocate("xn2", n, s.dim());
            rstd2 = t.allocate("rstd2", n, 1);
            gate = t.allocate("gate", n, s.ffn());
            up = t.allocate("up", n, s.ffn());
            h = t.allocate("h", n, s.ffn());
            down = t.allocate("down", n, s.dim());
            wQkv = new Buf[] {wq, wk, wv};
            qkv = new Buf[] {q, k, v};
            dwQkv = new Buf[] {dwq, dwk, dwv};
            w13 = new Buf[] {w1, w3};
            gateUp = new Buf[] {gate, up};
            dw13 = new Buf[] {dw1, dw3};
        }
    }

    public TrainModel(TrainOps t, Shape s, long seed) {
        this.t = t;
        this.s = s;
        this.n = s.n();
        this.rope = new Rope(s.headDim(), 10000f, 1f, null, false);
        Random rnd = new Random(seed);
        tokens = new int[n];
        targets = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = rnd.nextInt(s.vocab());
            targets[i] = i % s.len() == s.len() - 1 ? -1 : rnd.nextInt(s.vocab());
        }
        int qd = s.heads() * s.headDim(), kd = s.kvHeads() * s.headDim();
        embed = param("embed", s.vocab(), s.dim(), 1, rnd);
        dEmbed = grad(embed);
        x0 = t.allocate("x0", n, s.dim());
        layers = new Layer[s.layers()];
        for (int l = 0; l < layers.length; l++) {
            layers[l] = new Layer(rnd, l);
        }
        normF = param("normF", 1, s.dim(), 0, rnd);
        dNormF = grad(normF);
        out = param("out", s.vocab(), s.dim(), 1 / Math.sqrt(s.dim()), rnd);
        dOut = grad(out);
        xf = t.allocate("xf", n, s.dim());
        rstdF = t.allocate("rstdF", n, 1);
        dxf = t.allocate("dxf", n, s.dim());
        dx = t.allocate("dx", n, s.dim());
        dxn = t.allocate("dxn", n, s.dim());
        datt = t.allocate("datt", n, qd);
        dq = t.allocate("dq", n, qd);
        dk = t.allocate("dk", n, kd);
        dv = t.allocate("dv", n, kd);
        dh = t.allocate("dh", n, s.ffn());
        dgate = t.allocate("dgate", n, s.ffn());
        dup = t.allocate("dup", n, s.ffn());
        dQkv = new Buf[] {dq, dk, dv};
        dGateUp = new Buf[] {dgate, dup};
    }

    /** A parameter with uniform values of ±amp (amp 0: ones, a norm's gain), and its AdamW moments. */
    private Buf param(String name, int rows, int cols, double amp, Random rnd) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = amp == 0 ? 1f : (float) ((rnd.nextDouble() * 2 - 1) * amp);
        }
        Buf p = t.allocate(name, rows, cols);
        t.write(p, v);
        params.add(new Buf[] {p, t.allocate("d" + name, rows, cols), t.allocate("m." + name, rows, cols), t.allocate("v." + name, rows, cols)});
        return p;
    }

    private Buf grad(Buf p) {
        return params.get(params.size() - 1)[1];
    }

    /** The forward pass and the loss (summed over the counted rows). */
    public double forward(boolean withGrad) {
        t.embed(embed, tokens, n, x0);
        int hd = s.headDim();
        for (Layer l : layers) {
            t.rmsnorm(l.xIn, l.n1, 1e-5f, n, l.xn1, l.rstd1);
            t.matmuls(l.xn1, l.wQkv, n, l.qkv);
            t.rope(l.q, s.heads(), hd, n, s.len(), rope, false);
            t.rope(l.k, s.kvHeads(), hd, n, s.len(), rope, false);
            t.attention(l.q, l.k, l.v, s.seqs(), s.len(), s.heads(), s.kvHeads(), hd, l.att, l.lse, s.drop(), 17 + step);
            t.matmul(l.att, l.wo, n, l.o);
            t.copy(l.xIn, n, l.x1);
            t.add(l.x1, l.o, n);
            t.rmsnorm(l.x1, l.n2, 1e-5f, n, l.xn2, l.rstd2);
            t.matmuls(l.xn2, l.w13, n, l.gateUp);
            t.swiglu(l.gate, l.up, n, l.h);
            t.matmul(l.h, l.w2, n, l.down);
            t.add(l.down, l.x1, n);
        }
        Buf last = layers[layers.length - 1].down;
        t.rmsnorm(last, normF, 1e-5f, n, xf, rstdF);
        return t.crossEntropy(xf, out, targets, n, 1f / n, withGrad ? dxf : null, withGrad ? dOut : null);
    }

    /** Backward through every layer after {@link #forward}(true); gradients accumulate into the parameters' gradients. */
    public void backward() {
        int hd = s.headDim();
        t.zero(dx);
        t.rmsnormBackward(dxf, layers[layers.length - 1].down, normF, rstdF, n, dx, dNormF);
        for (int li = layers.length - 1; li >= 0; li--) {
            Layer l = layers[li];
            // dx: the gradient of this layer's output (= of x1 + down)
            t.matmulBackward(dx, l.h, l.w2, n, dh, false, l.dw2);
            t.swigluBackward(dh, l.gate, l.up, n, dgate, dup);
            t.matmulsBackward(dGateUp, l.xn2, l.w13, n, dxn, false, l.dw13);
            t.rmsnormBackward(dxn, l.x1, l.n2, l.rstd2, n, dx, l.dn2); // dx is now the gradient of x1
            t.matmulBackward(dx, l.att, l.wo, n, datt, false, l.dwo);
            t.attentionBackward(datt, l.q, l.k, l.v, l.att, l.lse, s.seqs(), s.len(), s.heads(), s.kvHeads(), hd, s.drop(), 17 + step,
                    dq, dk, dv);
            t.rope(dq, s.heads(), hd, n, s.len(), rope, true);
            t.rope(dk, s.kvHeads(), hd, n, s.len(), rope, true);
            t.matmulsBackward(dQkv, l.xn1, l.wQkv, n, dxn, false, l.dwQkv);
            t.rmsnormBackward(dxn, l.xIn, l.n1, l.rstd1, n, dx, l.dn1); // dx is now the gradient of the layer's input
        }
        t.embedBackward(dx, tokens, n, dEmbed);
    }

    /** One AdamW step over every parameter, then the gradients are zeroed. */
    public void optimize() {
        step++;
        for (Buf[] p : params) {
            t.adamw(p[0], p[1], p[2], p[3], 1f, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
            t.zero(p[1]);
        }
    }

    /** Forward, backward and the optimizer: one training step on the fixed batch; returns the summed loss. */
    public double step() {
        double loss = forward(true);
        backward();
        optimize();
        return loss;
    }

    /** Every parameter's values, concatenated (for comparisons). */
    public float[] parameters() {
        int total = 0;
        for (Buf[] p : params) {
            total += p[0].rows() * p[0].cols();
        }
        float[] all = new float[total];
        int at = 0;
        for (Buf[] p : params) {
            float[] v = new float[p[0].rows() * p[0].cols()];
            t.read(p[0], v);
            System.arraycopy(v, 0, all, at, v.length);
            at += v.length;
        }
        return all;
    }
}
