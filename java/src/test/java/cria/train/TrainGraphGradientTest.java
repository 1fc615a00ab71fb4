package cria.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.TrainOps;
import cria.backend.ref.RefTrainOps;
import cria.model.LlamaConfig;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole training graph in float64 ({@code ref}) against finite differences: every weight's
 * gradient from {@link TrainGraph#trainStep} equals the central difference of the graph's loss,
 * on a tiny model with grouped-query attention, for untied and tied output products, with and
 * without recomputation. This is what makes {@code ref} the oracle of the other backends.
 */
class TrainGraphGradientTest {

    static LlamaConfig tiny() {
        // dim 8, 2 layers, 4 heads over 2 KV heads of 2 values, ffn 12, vocab 19
        return new LlamaConfig("llama", 8, 2, 4, 2, 2, 12, 19, 16, 1e-5f, 2, 10000f, 1f, false);
    }

    static int[][] data(long seed, int rows, int vocab) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] in = new int[rows];
        int[] tg = new int[rows];
        for (int i = 0; i < rows; i++) {
            in[i] = r.nextInt(vocab);
            tg[i] = r.nextInt(vocab);
        }
        tg[rows / 2] = -1; // one position not scored
        return new int[][] {in, tg};
    }

    @ParameterizedTest(name = "tied={0}")
    @ValueSource(booleans = {false, true})
    void everyGradientMatchesFiniteDifferences(boolean tied) {
        check(tied, false);
    }

    @Test
    void recomputeGivesTheSameGradients() {
        check(false, true);
    }

    /** qwen2's shape: q, k, v biases (frozen, non-zero: only the activations' gradient passes them), NeoX rope. */
    static LlamaConfig tinyQwen2() {
        return new LlamaConfig("qwen2", 8, 2, 4, 2, 2, 12, 19, 16, 1e-5f, 2, 10000f, 1f, true);
    }

    /** qwen3's shape: per-head q/k norms (their weights train), NeoX rope, heads of 4 values while dim / heads is 2. */
    static LlamaConfig tinyQwen3() {
        return new LlamaConfig("qwen3", 8, 2, 4, 2, 4, 12, 19, 16, 1e-5f, 4, 10000f, 1f, true, true);
    }

    @ParameterizedTest(name = "recompute={0}")
    @ValueSource(booleans = {false, true})
    void qwen2GradientsMatchFiniteDifferences(boolean recompute) {
        check(tinyQwen2(), true, false, recompute);
    }

    @ParameterizedTest(name = "tied={0}")
    @ValueSource(booleans = {false, true})
    void qwen3GradientsMatchFiniteDifferences(boolean tied) {
        check(tinyQwen3(), false, tied, tied);
    }

    private void check(boolean tied, boolean recompute) {
        check(tiny(), false, tied, recompute);
    }

    private void check(LlamaConfig c, boolean biases, boolean tied, boolean recompute) {
        long seed = 7;
        try (TrainOps ops = new RefTrainOps()) {
            Params p = new Params(c, tied, biases, ops);
            p.initRandom(ops, seed);
            // larger weights than the 0.02 init, so every path matters in the loss
            SplittableRandom r = new SplittableRandom(seed);
            for (Params.Param q : p.all()) {
                double[] v = RefTrainOps.values(q.value);
                for (int i = 0; i < v.length; i++) {
                    v[i] = q.decay ? r.nextGaussian() * 0.5 : 1 + r.nextGaussian() * 0.2;
                }
                RefTrainOps.setValues(q.value, v);
            }
            int seqs = 2;
            int len = 5;
            TrainGraph g = new TrainGraph(p, ops, seqs, len, recompute, 0f);
            int[][] d = data(seed, seqs * len, c.vocab());
            p.zeroGrads(ops);
            double loss = g.trainStep(d[0], d[1], 1f, 0);
            assertEquals(loss, g.loss(d[0], d[1], seqs), 1e-12 * Math.abs(loss), "forward of trainStep and loss agree");
            double h = 1e-6;
            int checked = 0;
            double worst = 0;
            String where = "";
            for (Params.Param q : p.all()) {
                if (q.frozen()) {
                    assertTrue(q.name.endsWith(".bias"), q.name + " trains");
                    continue;  // biases are constants of the graph
                }
                double[] v = RefTrainOps.values(q.value);
                double[] grad = RefTrainOps.values(q.grad);
                for (int i = 0; i < v.length; i++) {
                    double keep = v[i];
                    v[i] = keep + h;
                    RefTrainOps.setValues(q.value, v);
                    double up = g.loss(d[0], d[1], seqs);
                    v[i] = keep - h;
                    RefTrainOps.setValues(q.value, v);
                    double down = g.loss(d[0], d[1], seqs);
                    v[i] = keep;
                    RefTrainOps.setValues(q.value, v);
                    double fd = (up - down) / (2 * h);
                    double err = Math.abs(fd - grad[i]) / Math.max(1e-3, Math.abs(fd));
                    if (err > worst) {
                        worst = err;
                        where = q.name + "[" + i + "]: analytic " + grad[i] + ", finite difference " + fd;
                    }
                    checked++;
                }
            }
            assertTrue(checked > 1000, "checked " + checked);
            assertTrue(worst < 1e-5, "worst relative error " + worst + " at " + where);
        }
    }

    /**
     * The CPU backend (native kernels and the Vector API path, 1 and 2 threads) gives the oracle's
     * loss and gradients for the whole graph, with dropout on, to float32 rounding.
     */
    @ParameterizedTest(name = "native={0}")
    @ValueSource(booleans = {true, false})
    void theCpuBackendGivesTheOraclesGradients(boolean useNative) {
        // a shape with odd widths, GQA and several windows, so every kernel's edges take part
        cpuAgainstRef(new LlamaConfig("llama", 40, 2, 4, 2, 10, 70, 53, 64, 1e-5f, 10, 10000f, 1f, false), false, useNative);
    }

    /** The same for qwen2 (biases, NeoX rope) and qwen3 (per-head q/k norms, heads of 12 values over dim 40). */
    @ParameterizedTest(name = "native={0}")
    @ValueSource(booleans = {true, false})
    void theCpuBackendGivesTheOraclesGradientsForQwen(boolean useNative) {
        cpuAgainstRef(new LlamaConfig("qwen2", 40, 2, 4, 2, 10, 70, 53, 64, 1e-5f, 10, 10000f, 1f, true), true, useNative);
        cpuAgainstRef(new LlamaConfig("qwen3", 40, 2, 4, 2, 12, 70, 53, 64, 1e-6f, 12, 10000f, 1f, true, true), false, useNative);
    }

    /** Random values for the (frozen) biases, the same in every backend. */
    private static void randomBiases(Params p, TrainOps ops) {
        java.util.Random r = new java.util.Random(5);
        for (Params.Param q : p.all()) {
            if (q.name.endsWith(".bias")) {
                float[] v = new float[Math.toIntExact(q.size())];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) r.nextGaussian() * 0.05f;
                }
                ops.write(q.value, v);
            }
        }
    }

    private void cpuAgainstRef(LlamaConfig c, boolean biases, boolean useNative) {
        int seqs = 3;
        int len = 17;
        int[][] d = data(11, seqs * len, c.vocab());
        double refLoss;
        java.util.List<double[]> refGrads = new java.util.ArrayList<>();
        try (TrainOps ops = new RefTrainOps()) {
            Params p = new Params(c, false, biases, ops);
            p.initRandom(ops, 9);
            randomBiases(p, ops);
            TrainGraph g = new TrainGraph(p, ops, seqs, len, false, 0.1f);
            p.zeroGrads(ops);
            refLoss = g.trainStep(d[0], d[1], 1f / (seqs * len), 77);
            for (Params.Param q : p.all()) {
                refGrads.add(RefTrainOps.values(q.grad));
            }
        }
        for (int threads : new int[] {1, 2}) {
            try (cria.backend.cpu.CpuBackend cpu = new cria.backend.cpu.CpuBackend(threads, useNative); TrainOps ops = cpu.trainOps()) {
                Params p = new Params(c, false, biases, ops);
                p.initRandom(ops, 9);
                randomBiases(p, ops);
                TrainGraph g = new TrainGraph(p, ops, seqs, len, false, 0.1f);
                p.zeroGrads(ops);
                double loss = g.trainStep(d[0], d[1], 1f / (seqs * len), 77);
                assertEquals(refLoss, loss, 1e-5 * refLoss, "loss, " + threads + " threads");
                for (int i = 0; i < p.all().size(); i++) {
                    Params.Param q = p.all().get(i);
                    if (q.frozen()) {
                        continue;
                    }
                    float[] got = new float[Math.toIntExact(q.size())];
                    ops.read(q.grad, got);
                    double[] want = refGrads.get(i);
                    double scale = 0;
                    for (double w : want) {
                        scale = Math.max(scale, Math.abs(w));
                    }
                    assertTrue(scale > 0, q.name + " has a gradient");
                    for (int j = 0; j < got.length; j++) {
                        assertEquals(want[j], got[j], 2e-4 * scale, q.name + "[" + j + "], " + threads + " threads");
                    }
                }
            }
        }
    }

    @Test
    void frozenWeightsGetNoGradientAndTheRestAreUnchanged() {
        LlamaConfig c = tiny();
        try (TrainOps ops = new RefTrainOps()) {
            Params a = new Params(c, false, ops);
            Params b = new Params(c, false, ops);
            a.initRandom(ops, 3);
            b.initRandom(ops, 3);
            b.freeze(name -> name.startsWith("blk.0.") || name.equals("token_embd.weight"));
            int[][] d = data(5, 10, c.vocab());
            TrainGraph ga = new TrainGraph(a, ops, 2, 5, false, 0f);
            TrainGraph gb = new TrainGraph(b, ops, 2, 5, false, 0f);
            a.zeroGrads(ops);
            b.zeroGrads(ops);
            ga.trainStep(d[0], d[1], 1f, 0);
            gb.trainStep(d[0], d[1], 1f, 0);
            for (int i = 0; i < a.all().size(); i++) {
                Params.Param qa = a.all().get(i);
                Params.Param qb = b.all().get(i);
                double[] ra = RefTrainOps.values(qa.grad);
                double[] rb = RefTrainOps.values(qb.grad);
                boolean matrixBelow = qb.frozen() && qb.decay;
                for (int j = 0; j < ra.length; j++) {
                    if (matrixBelow) {
                        assertEquals(0.0, rb[j], qb.name + " is frozen: no gradient computed");
                    } else if (!qb.frozen()) {
                        assertEquals(ra[j], rb[j], 1e-12 * Math.max(1, Math.abs(ra[j])), qb.name + " trains as before");
                    }
                }
            }
        }
    }
}
