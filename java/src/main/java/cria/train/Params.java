// The trainable tensors of a Llama model, by GGUF name: values, gradients and AdamW moments in the training ops' memory.
package cria.train;

import cria.CriaException;
import cria.backend.Buf;
import cria.backend.TrainOps;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.model.LlamaConfig;
import cria.tensor.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.Predicate;

/**
 * Every weight of the Llama graph under the name the inference side loads it by (the GGUF
 * tensor names of {@code cria.model.LlamaWeights}), each a {@code [out, in]} buffer (norm
 * weights {@code [1, dim]}) with its gradient and its two AdamW moments. The output product is
 * the embedding itself when {@code tied}.
 */
public final class Params implements AutoCloseable {

    /** One trainable tensor. {@code decay}: weight decay applies (matrices only, never norm weights). */
    public static final class Param {
        public final String name;
        public final int rows;
        public final int cols;
        public final boolean decay;
        public final Buf value;
        public final Buf grad;
        final Buf m;
        final Buf v;
        boolean frozen;

        Param(TrainOps ops, String name, int rows, int cols, boolean decay) {
            this.name = name;
            this.rows = rows;
            this.cols = cols;
            this.decay = decay;
            this.value = ops.allocate(name, rows, cols);
            this.grad = ops.allocate(name + ".grad", rows, cols);
            this.m = ops.allocate(name + ".m", rows, cols);
            this.v = ops.allocate(name + ".v", rows, cols);
        }

        /** Whether the optimizer leaves this tensor as it is (--freeze). */
        public boolean frozen() {
            return frozen;
        }

        /** Values in the tensor. */
        public long size() {
            return (long) rows * cols;
        }

        /** GGUF's shape of this tensor ({@code ne}: the row length first). */
        public long[] ggufShape() {
            return rows == 1 ? new long[] {cols} : new long[] {cols, rows};
        }
    }

    private final LlamaConfig config;
    private final boolean tied;
    private final List<Param> all = new ArrayList<>();
    public final Param emb;
    public final Param outNorm;
    public final Param out;   // the embedding when tied
    public final Param[] attnNorm;
    public final Param[] wq;
    public final Param[] wk;
    public final Param[] wv;
    public final Param[] wo;
    public final Param[] ffnNorm;
    public final Param[] gate;
    public final Param[] up;
    public final Param[] down;

    /** Allocates the tensors of {@code c} (zeroed) in {@code ops}' memory. */
    public Params(LlamaConfig c, boolean tied, TrainOps ops) {
        this.config = c;
        this.tied = tied;
        int L = c.layers();
        emb = add(ops, "token_embd.weight", c.vocab(), c.dim(), true);
        outNorm = add(ops, "output_norm.weight", 1, c.dim(), false);
        out = tied ? emb : add(ops, "output.weight", c.vocab(), c.dim(), true);
        attnNorm = new Param[L];
        wq = new Param[L];
        wk = new Param[L];
        wv = new Param[L];
        wo = new Param[L];
        ffnNorm = new Param[L];
        gate = new Param[L];
        up = new Param[L];
        down = new Param[L];
        for (int l = 0; l < L; l++) {
            String p = "blk." + l + ".";
            attnNorm[l] = add(ops, p + "attn_norm.weight", 1, c.dim(), false);
            wq[l] = add(ops, p + "attn_q.weight", c.qDim(), c.dim(), true);
            wk[l] = add(ops, p + "attn_k.weight", c.kvDim(), c.dim(), true);
            wv[l] = add(ops, p + "attn_v.weight", c.kvDim(), c.dim(), true);
            wo[l] = add(ops, p + "attn_output.weight", c.dim(), c.qDim(), true);
            ffnNorm[l] = add(ops, p + "ffn_norm.weight", 1, c.dim(), false);
            gate[l] = add(ops, p + "ffn_gate.weight", c.ffn(), c.dim(), true);
            up[l] = add(ops, p + "ffn_up.weight", c.ffn(), c.dim(), true);
            down[l] = add(ops, p + "ffn_down.weight", c.dim(), c.ffn(), true);
        }
    }

    private Param add(TrainOps ops, String name, int rows, int cols, boolean decay) {
        Param p = new Param(ops, name, rows, cols, decay);
        all.add(p);
        return p;
    }

    /** Bytes of the values, gradients and moments of a model of this shape, as float32 (for memory checks). */
    public static long bytes(LlamaConfig c, boolean tied) {
        return 16L * count(c, tied);
    }

    /** Trainable values in a model of this shape. */
    public static long count(LlamaConfig c, boolean tied) {
        long perLayer = 2L * c.dim() + (long) c.dim() * (2L * c.qDim() + 2L * c.kvDim()) + 3L * c.dim() * c.ffn();
        return (long) c.vocab() * c.dim() * (tied ? 1 : 2) + c.dim() + c.layers() * perLayer;
    }

    public LlamaConfig config() {
        return config;
    }

    public boolean tied() {
        return tied;
    }

    /** Every tensor once (the tied output is not repeated), in GGUF order. */
    public List<Param> all() {
        return Collections.unmodifiableList(all);
    }

    /** The tensor called {@code name}, or null. */
    public Param byName(String name) {
        for (Param p : all) {
            if (p.name.equals(name)) {
                return p;
            }
        }
        return null;
    }

    /** Trainable values (frozen tensors excluded). */
    public long trainableCount() {
        long n = 0;
        for (Param p : all) {
            if (!p.frozen) {
                n += p.size();
            }
        }
        return n;
    }

    /** Freezes every tensor whose name matches. */
    public int freeze(Predicate<String> names) {
        int n = 0;
        for (Param p : all) {
            if (names.test(p.name)) {
                p.frozen = true;
                n++;
            }
        }
        return n;
    }

    /** The lowest layer whose weights (or anything below them) still train: backward can stop there. */
    int lowestTrainableLayer() {
        if (!emb.frozen) {
            return 0;
        }
        for (int l = 0; l < config.layers(); l++) {
            for (Param p : new Param[] {attnNorm[l], wq[l], wk[l], wv[l], wo[l], ffnNorm[l], gate[l], up[l], down[l]}) {
                if (!p.frozen) {
                    return l;
                }
            }
        }
        return config.layers();
    }

    /**
     * Random initialization: normal with std 0.02 for every matrix, the residual branches' output
     * products (attn_output, ffn_down) 0.02/sqrt(2·layers) (GPT-2's scaling, so the residual
     * stream's variance does not grow with depth), norm weights 1. Deterministic for a seed.
     */
    public void initRandom(TrainOps ops, long seed) {
        double outStd = 0.02 / Math.sqrt(2.0 * config.layers());
        int index = 0;
        for (Param p : all) {
            float[] vals = new float[Math.toIntExact(p.size())];
            if (!p.decay) {
                java.util.Arrays.fill(vals, 1f);
            } else {
                double std = p.name.endsWith("attn_output.weight") || p.name.endsWith("ffn_down.weight") ? outStd : 0.02;
                Random r = new Random(seed * 1_000_003L + index);
                for (int i = 0; i < vals.length; i++) {
                    vals[i] = (float) (r.nextGaussian() * std);
                }
            }
            ops.write(p.value, vals);
            index++;
        }
    }

    /**
     * Loads every tensor from a model file of the same shape (F32, F16 or BF16 weights: full
     * fine-tuning needs them exact).
     */
    public void load(TrainOps ops, GgufFile file) {
        for (Param p : all) {
            GgufTensorInfo info = file.tensor(p.name);
            if (info == null) {
                throw new CriaException(file.path() + ": no tensor " + p.name + "; --init needs a Llama model of the same shape");
            }
            if (info.type() != GgmlType.F32 && info.type() != GgmlType.F16 && info.type() != GgmlType.BF16) {
                throw new CriaException(file.path() + ": tensor " + p.name + " is " + info.type() + "; --init takes F32, F16 or BF16 weights"
                        + " (make one with `cria quantize --type F32`)");
            }
            Tensor t = Tensor.of(file, info);
            if (t.rows() != p.rows || t.rowLength() != p.cols) {
                throw new CriaException(file.path() + ": tensor " + p.name + " is " + t.rows() + " x " + t.rowLength() + ", expected "
                        + p.rows + " x " + p.cols);
            }
            float[] vals = new float[Math.toIntExact(p.size())];
            for (int r = 0; r < p.rows; r++) {
                t.dequantizeRow(r, vals, r * p.cols);
            }
            ops.write(p.value, vals);
        }
    }

    /** The values of one tensor as floats. */
    public float[] values(TrainOps ops, Param p) {
        float[] vals = new float[Math.toIntExact(p.size())];
        ops.read(p.value, vals);
        return vals;
    }

    /** {@code Σ g²} over the gradients of the tensors that train (frozen ones excluded). */
    public double gradientSumOfSquares(TrainOps ops) {
        double sum = 0;
        for (Param q : all) {
            if (!q.frozen) {
                sum += ops.sumSquares(q.grad);
            }
        }
        return sum;
    }

    /**
     * One AdamW step ({@link TrainOps#adamw}, the recipe's betas and epsilon) on every tensor that
     * trains, on its gradient times {@code gradScale}; weight decay on matrices only.
     *
     * @param step the optimizer step, counted from 1
     */
    public void adamw(TrainOps ops, float gradScale, float lr, float weightDecay, int step) {
        for (Param q : all) {
            if (!q.frozen) {
                ops.adamw(q.value, q.grad, q.m, q.v, gradScale, lr, TrainOptions.BETA1, TrainOptions.BETA2, TrainOptions.ADAM_EPS,
                        q.decay ? weightDecay : 0f, step);
            }
        }
    }

    /** Zeroes every gradient. */
    public void zeroGrads(TrainOps ops) {
        for (Param p : all) {
            ops.zero(p.grad);
        }
    }

    @Override
    public void close() {
        // the buffers belong to the TrainOps that allocated them and go with it
    }
}
