// A fixed training workload for benchmarks and tests: cria.train's own graph and AdamW on one batch of random tokens, through any TrainOps.
package cria.bench;

import cria.backend.TrainOps;
import cria.model.LlamaConfig;
import cria.train.Params;
import cria.train.TrainGraph;
import java.util.Random;

/**
 * One micro-batch of random tokens trained by the trainer's own pieces ({@link Params},
 * {@link TrainGraph}: the graph {@code cria train} runs, not a copy of it) with AdamW over every
 * tensor: a fixed workload to time the training ops as a whole and to check them (allocation,
 * determinism). Every buffer is allocated in the constructor, so a warm {@link #step()} allocates
 * nothing but what the ops do.
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

        LlamaConfig config() {
            return new LlamaConfig("llama", dim, layers, heads, kvHeads, headDim(), ffn, vocab, len, 1e-5f, headDim(), 10000f, 1f, false);
        }
    }

    /** The benchmark's small shape: dim 64, 5 layers, 8/4 heads, ffn 172, vocab 512, ctx 256, batch 32. */
    public static final Shape SMALL = new Shape(64, 5, 8, 4, 172, 512, 256, 32, 0f);
    /** The benchmark's larger shape: dim 288, 6 layers, 6/6 heads, ffn 768, vocab 512, ctx 256, batch 16. */
    public static final Shape LARGE = new Shape(288, 6, 6, 6, 768, 512, 256, 16, 0f);

    private final TrainOps t;
    private final Shape s;
    private final Params params;
    private final TrainGraph graph;
    private final int[] tokens;
    private final int[] targets;
    private int step;

    public TrainModel(TrainOps t, Shape s, long seed) {
        this(t, s, s.config(), false, seed);
    }

    /**
     * The shape as qwen3 with qwen2's q/k/v biases as well (NeoX rope, per-head q/k norms, frozen
     * biases): every op the qwen graphs add runs.
     */
    public static TrainModel qwen(TrainOps t, Shape s, long seed) {
        LlamaConfig c = new LlamaConfig("qwen3", s.dim(), s.layers(), s.heads(), s.kvHeads(), s.headDim(), s.ffn(), s.vocab(), s.len(),
                1e-6f, s.headDim(), 10000f, 1f, true, true);
        return new TrainModel(t, s, c, true, seed);
    }

    private TrainModel(TrainOps t, Shape s, LlamaConfig c, boolean biases, long seed) {
        this.t = t;
        this.s = s;
        this.params = new Params(c, false, biases, t);
        params.initRandom(t, seed);
        this.graph = new TrainGraph(params, t, s.seqs(), s.len(), false, s.drop());
        Random r = new Random(seed);
        tokens = new int[s.n()];
        targets = new int[s.n()];
        for (int i = 0; i < s.n(); i++) {
            tokens[i] = r.nextInt(s.vocab());
            targets[i] = r.nextInt(s.vocab());
        }
    }

    /** The forward pass and the loss (summed over the rows), without gradients or dropout. */
    public double forward() {
        return graph.loss(tokens, targets, s.seqs());
    }

    /** Forward, backward and AdamW over every tensor (the trainer's constants): one training step; returns the summed loss. */
    public double step() {
        step++;
        params.zeroGrads(t);
        double loss = graph.trainStep(tokens, targets, 1f / s.n(), 17 + step);
        params.adamw(t, 1f, 1e-3f, 0.1f, step);
        return loss;
    }

    /** Every parameter's values, concatenated (for comparisons). */
    public float[] parameters() {
        long total = 0;
        for (Params.Param p : params.all()) {
            total += p.size();
        }
        float[] all = new float[Math.toIntExact(total)];
        int at = 0;
        for (Params.Param p : params.all()) {
            float[] v = params.values(t, p);
            System.arraycopy(v, 0, all, at, v.length);
            at += v.length;
        }
        return all;
    }
}
