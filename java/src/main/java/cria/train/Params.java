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
            this(name, rows, cols, decay, ops.allocate(name, rows, cols), ops.allocate(name + ".grad", rows, cols),
                    ops.allocate(name + ".m", rows, cols), ops.allocate(name + ".v", rows, cols));
        }

        /** A tensor with the given buffers; a frozen base tensor has no moments and (matrices) no gradient. */
        Param(String name, int rows, int cols, boolean decay, Buf value, Buf grad, Buf m, Buf v) {
            this.name = name;
            this.rows = rows;
            this.cols = cols;
            this.decay = decay;
            this.value = value;
            this.grad = grad;
            this.m = m;
            this.v = v;
            this.frozen = m == null;
        }

        /** Whether this tensor has optimizer state (a base tensor of fine-tuning has none: it never trains). */
        public boolean hasState() {
            return m != null;
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
    /** Per layer: qwen3's per-head q and k norm weights ([1, headDim]); null entries unless the config has q/k norms. */
    public final Param[] qNorm;
    public final Param[] kNorm;
    /** Per layer: qwen2's q, k and v biases ([1, out]), frozen; null entries where the model has none. */
    public final Param[] qBias;
    public final Param[] kBias;
    public final Param[] vBias;

    /** Makes one tensor: (name, rows, cols, decay) to a Param. */
    private interface Maker {
        Param make(String name, int rows, int cols, boolean decay);
    }

    /** Allocates the tensors of {@code c} (zeroed) in {@code ops}' memory. */
    public Params(LlamaConfig c, boolean tied, TrainOps ops) {
        this(c, tied, false, ops);
    }

    /**
     * Allocates the tensors of {@code c} (zeroed) in {@code ops}' memory, with q, k and v biases
     * when {@code biases}: those are frozen (the graph passes their activations' gradient through
     * but computes none for them), so they keep the values written into them.
     */
    public Params(LlamaConfig c, boolean tied, boolean biases, TrainOps ops) {
        this(c, tied, name -> biases, (name, rows, cols, decay) -> new Param(ops, name, rows, cols, decay));
        for (Param[] bs : new Param[][] {qBias, kBias, vBias}) {
            for (Param b : bs) {
                if (b != null) {
                    b.frozen = true;
                }
            }
        }
    }

    private Params(LlamaConfig c, boolean tied, Predicate<String> hasBias, Maker maker) {
        requireGraph(c);
        this.config = c;
        this.tied = tied;
        int L = c.layers();
        this.lora = new LoraPair[L][];
        emb = add(maker.make("token_embd.weight", c.vocab(), c.dim(), true));
        outNorm = add(maker.make("output_norm.weight", 1, c.dim(), false));
        out = tied ? emb : add(maker.make("output.weight", c.vocab(), c.dim(), true));
        attnNorm = new Param[L];
        wq = new Param[L];
        wk = new Param[L];
        wv = new Param[L];
        wo = new Param[L];
        ffnNorm = new Param[L];
        gate = new Param[L];
        up = new Param[L];
        down = new Param[L];
        qNorm = new Param[L];
        kNorm = new Param[L];
        qBias = new Param[L];
        kBias = new Param[L];
        vBias = new Param[L];
        for (int l = 0; l < L; l++) {
            String p = "blk." + l + ".";
            attnNorm[l] = add(maker.make(p + "attn_norm.weight", 1, c.dim(), false));
            wq[l] = add(maker.make(p + "attn_q.weight", c.qDim(), c.dim(), true));
            wk[l] = add(maker.make(p + "attn_k.weight", c.kvDim(), c.dim(), true));
            wv[l] = add(maker.make(p + "attn_v.weight", c.kvDim(), c.dim(), true));
            if (hasBias.test(p + "attn_q.bias")) {
                qBias[l] = add(maker.make(p + "attn_q.bias", 1, c.qDim(), false));
            }
            if (hasBias.test(p + "attn_k.bias")) {
                kBias[l] = add(maker.make(p + "attn_k.bias", 1, c.kvDim(), false));
            }
            if (hasBias.test(p + "attn_v.bias")) {
                vBias[l] = add(maker.make(p + "attn_v.bias", 1, c.kvDim(), false));
            }
            if (c.qkNorm()) {
                qNorm[l] = add(maker.make(p + "attn_q_norm.weight", 1, c.headDim(), false));
                kNorm[l] = add(maker.make(p + "attn_k_norm.weight", 1, c.headDim(), false));
            }
            wo[l] = add(maker.make(p + "attn_output.weight", c.dim(), c.qDim(), true));
            ffnNorm[l] = add(maker.make(p + "ffn_norm.weight", 1, c.dim(), false));
            gate[l] = add(maker.make(p + "ffn_gate.weight", c.ffn(), c.dim(), true));
            up[l] = add(maker.make(p + "ffn_up.weight", c.ffn(), c.dim(), true));
            down[l] = add(maker.make(p + "ffn_down.weight", c.dim(), c.ffn(), true));
        }
    }

    /** The architectures the training graph follows: the llama graph, qwen2's q/k/v biases, qwen3's per-head q/k norms. */
    public static final java.util.Set<String> GRAPH_ARCHITECTURES = java.util.Set.of("llama", "mistral", "qwen2", "qwen3");

    /**
     * The training graph follows llama (and mistral), qwen2 (q, k, v biases, NeoX rope) and qwen3
     * (per-head q/k norms, NeoX rope); not phi3's fused matrices nor gemma's graph.
     *
     * @throws CriaException one line naming the architecture otherwise
     */
    static void requireGraph(LlamaConfig c) {
        if (!GRAPH_ARCHITECTURES.contains(c.arch())) {
            throw new CriaException("training and fine-tuning support the llama, mistral, qwen2 and qwen3 architectures; this model is '"
                    + c.arch() + "' (it runs for inference: generate, batch, serve, perplexity, quantize)");
        }
    }

    /**
     * Refuses, in one line, a model file {@code train --init} cannot continue: another architecture
     * than llama (or mistral), or bias tensors (full training computes no bias gradients). The verb
     * calls it before it reads its data, so a refused file gets no other output first.
     *
     * @throws CriaException naming the architecture or the tensor
     */
    public static void requireTrainable(LlamaConfig c, GgufFile file) {
        if (!c.arch().equals("llama") && !c.arch().equals("mistral")) {
            throw new CriaException("train --init continues llama and mistral models only; this model is '" + c.arch()
                    + "' (LoRA fine-tuning, `cria finetune`, takes qwen2 and qwen3 too)");
        }
        for (GgufTensorInfo t : file.tensors()) {
            if (t.name().endsWith(".bias")) {
                throw new CriaException(file.path() + ": tensor " + t.name() + ": full training does not train biases yet"
                        + " (LoRA fine-tuning, `cria finetune`, keeps them frozen)");
            }
        }
    }

    /**
     * Refuses, in one line, a fine-tuning base the training graph cannot follow ({@link #requireGraph}).
     * Biases on q, k and v are taken (frozen); a bias on any other tensor is refused.
     *
     * @throws CriaException naming the architecture or the tensor
     */
    public static void requireFineTunable(LlamaConfig c, GgufFile file) {
        requireGraph(c);
        for (GgufTensorInfo t : file.tensors()) {
            String n = t.name();
            if (n.endsWith(".bias") && !(n.startsWith("blk.") && (n.endsWith(".attn_q.bias") || n.endsWith(".attn_k.bias")
                    || n.endsWith(".attn_v.bias")))) {
                throw new CriaException(file.path() + ": tensor " + n + ": fine-tuning takes biases on q, k and v only");
            }
        }
    }

    /**
     * A fine-tuning base: every tensor of {@code file} (a Llama model of shape {@code c}, any
     * weight type) frozen where it is. Matrices are {@link TrainOps#frozen} views of the mapped
     * file (never copied, never dequantized whole); the small norm vectors are copied as floats.
     * Nothing of it trains: adapters are added with {@link #addLora}.
     */
    public static Params frozenBase(LlamaConfig c, GgufFile file, TrainOps ops) {
        cria.model.LowRankTensors.requireDense(file, "fine-tuning");
        requireFineTunable(c, file);
        boolean tied = file.tensor("output.weight") == null;
        Params base = new Params(c, tied, name -> file.tensor(name) != null, (name, rows, cols, decay) -> {
            GgufTensorInfo info = file.tensor(name);
            if (info == null) {
                throw new CriaException(file.path() + ": no tensor " + name + "; fine-tuning needs a Llama model");
            }
            Tensor t = Tensor.of(file, info);
            if (t.rows() != rows || t.rowLength() != cols) {
                throw new CriaException(file.path() + ": tensor " + name + " is " + t.rows() + " x " + t.rowLength() + ", expected "
                        + rows + " x " + cols);
            }
            if (rows > 1) {
                return new Param(name, rows, cols, decay, ops.frozen(t), null, null, null);
            }
            Buf value = ops.allocate(name, 1, cols);
            ops.write(value, t.dequantizeRow(0));
            return new Param(name, 1, cols, decay, value, ops.allocate(name + ".grad", 1, cols), null, null);
        });
        GgufTensorInfo freqs = file.tensor("rope_freqs.weight");
        if (freqs != null) {
            Tensor t = Tensor.of(file, freqs);
            if (t.rows() != 1 || t.rowLength() != c.ropeDims() / 2) {
                throw new CriaException(file.path() + ": rope_freqs.weight has " + t.rowLength() + " values, expected " + c.ropeDims() / 2);
            }
            base.ropeFactors = t.dequantizeRow(0);
        }
        return base;
    }

    private Param add(Param p) {
        all.add(p);
        return p;
    }

    // ---- LoRA ----------------------------------------------------------------------------------

    /**
     * One adapter of a product: {@code y = W·x + scale · B·(A·x)} with A {@code [rank, in]} and B
     * {@code [out, rank]} (GGUF {@code <W>.lora_a} ne = [in, rank], {@code .lora_b} ne = [rank, out]).
     */
    public record LoraPair(LoraTarget target, Param a, Param b, float scale) {
        public int rank() {
            return a.rows;
        }
    }

    private final LoraPair[][] lora;
    private float[] ropeFactors;

    /** llama3's per-frequency rope factors of the base ({@code rope_freqs.weight}), or null. */
    public float[] ropeFactors() {
        return ropeFactors;
    }

    /** The base product a target names in layer l. */
    public Param product(int l, LoraTarget t) {
        return switch (t) {
            case Q -> wq[l];
            case K -> wk[l];
            case V -> wv[l];
            case O -> wo[l];
            case GATE -> gate[l];
            case UP -> up[l];
            case DOWN -> down[l];
        };
    }

    /**
     * Adds a trainable adapter on target t of layer l: A uniform in ±1/sqrt(in) (PyTorch's default
     * for a linear layer, as PEFT initializes it), B zero, so the adapted model starts as the base;
     * scale = alpha / rank. Seeded: the same seed gives the same A.
     */
    public LoraPair addLora(TrainOps ops, int l, LoraTarget t, int rank, float alpha, long seed) {
        Param w = product(l, t);
        Param a = add(new Param(ops, w.name + ".lora_a", rank, w.cols, true));
        Param b = add(new Param(ops, w.name + ".lora_b", w.rows, rank, true));
        float[] init = new float[Math.toIntExact(a.size())];
        Random r = new Random(seed * 1_000_003L + (long) l * LoraTarget.values().length + t.ordinal());
        double bound = 1.0 / Math.sqrt(w.cols);
        for (int i = 0; i < init.length; i++) {
            init[i] = (float) ((r.nextDouble() * 2 - 1) * bound);
        }
        ops.write(a.value, init);
        LoraPair pair = new LoraPair(t, a, b, alpha / rank);
        if (lora[l] == null) {
            lora[l] = new LoraPair[LoraTarget.values().length];
        }
        lora[l][t.ordinal()] = pair;
        return pair;
    }

    /** The adapter on target t of layer l, or null. */
    public LoraPair lora(int l, LoraTarget t) {
        return lora[l] == null ? null : lora[l][t.ordinal()];
    }

    /** Every adapter, by layer then target. */
    public List<LoraPair> loras() {
        List<LoraPair> list = new ArrayList<>();
        for (LoraPair[] layer : lora) {
            if (layer != null) {
                for (LoraPair p : layer) {
                    if (p != null) {
                        list.add(p);
                    }
                }
            }
        }
        return list;
    }

    /**
     * The tensors that train, in {@link #all()} order: what checkpoints and best-weight snapshots
     * hold (frozen ones are the same at every step: they come back from the model or the seed).
     */
    public List<Param> stateful() {
        List<Param> list = new ArrayList<>();
        for (Param p : all) {
            if (p.hasState() && !p.frozen) {
                list.add(p);
            }
        }
        return list;
    }

    /** Bytes of the values, gradients and moments of a model of this shape, as float32 (for memory checks). */
    public static long bytes(LlamaConfig c, boolean tied) {
        return 16L * count(c, tied);
    }

    /** Trainable values in a model of this shape. */
    public static long count(LlamaConfig c, boolean tied) {
        long perLayer = 2L * c.dim() + (c.qkNorm() ? 2L * c.headDim() : 0) + (long) c.dim() * (2L * c.qDim() + 2L * c.kvDim()) + 3L * c.dim() * c.ffn();
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
            if (lora[l] != null) {
                for (LoraPair q : lora[l]) {
                    if (q != null && !q.a.frozen) {
                        return l;
                    }
                }
            }
            for (Param p : new Param[] {attnNorm[l], wq[l], wk[l], wv[l], wo[l], ffnNorm[l], gate[l], up[l], down[l], qNorm[l], kNorm[l]}) {
                if (p != null && !p.frozen) {
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
            if (p.name.endsWith(".bias")) {
                java.util.Arrays.fill(vals, 0f);
            } else if (!p.decay) {
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
        cria.model.LowRankTensors.requireDense(file, "train --init");
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
            if (p.grad != null && !p.frozen) {
                ops.zero(p.grad);
            }
        }
    }

    @Override
    public void close() {
        // the buffers belong to the TrainOps that allocated them and go with it
    }
}
