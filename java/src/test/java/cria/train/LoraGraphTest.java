package cria.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.TrainOps;
import cria.backend.cpu.CpuBackend;
import cria.backend.ref.RefTrainOps;
import cria.gguf.GgufFile;
import cria.model.LlamaConfig;
import cria.quantize.LlamaFileType;
import cria.synth.Synth;
import cria.synth.SynthShape;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * LoRA in the training graph: the adapters' gradients against finite differences in float64
 * (with and without adapter dropout), the CPU backend against the oracle, and a frozen base of
 * quantized blocks (streamed in panels on the CPU, or its forward products in the inference
 * kernels) against the oracle's dequantized copy.
 */
class LoraGraphTest {

    /** Every tensor of a random base frozen, adapters on every target with random (non-zero) B. */
    private static Params adapted(TrainOps ops, LlamaConfig c, long seed) {
        Params p = new Params(c, false, ops);
        p.initRandom(ops, seed);
        SplittableRandom r = new SplittableRandom(seed);
        for (Params.Param q : p.all()) {
            float[] v = new float[Math.toIntExact(q.size())];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (q.decay ? r.nextGaussian() * 0.5 : 1 + r.nextGaussian() * 0.2);
            }
            ops.write(q.value, v);
        }
        p.freeze(name -> true);
        for (int l = 0; l < c.layers(); l++) {
            for (LoraTarget t : LoraTarget.values()) {
                Params.LoraPair lp = p.addLora(ops, l, t, 3, 6f, seed);
                float[] b = new float[Math.toIntExact(lp.b().size())];
                for (int i = 0; i < b.length; i++) {
                    b[i] = (float) (r.nextGaussian() * 0.3);
                }
                ops.write(lp.b().value, b);
            }
        }
        return p;
    }

    @ParameterizedTest(name = "lora dropout {0}")
    @ValueSource(floats = {0f, 0.25f})
    void adapterGradientsMatchFiniteDifferences(float loraDropout) {
        LlamaConfig c = TrainGraphGradientTest.tiny();
        try (TrainOps ops = new RefTrainOps()) {
            Params p = adapted(ops, c, 5);
            int seqs = 2;
            int len = 5;
            TrainGraph g = new TrainGraph(p, ops, seqs, len, false, 0f, loraDropout);
            int[][] d = TrainGraphGradientTest.data(3, seqs * len, c.vocab());
            long seed = 99;
            p.zeroGrads(ops);
            g.trainStep(d[0], d[1], 1f, seed);
            List<double[]> grads = new ArrayList<>();
            for (Params.LoraPair lp : p.loras()) {
                grads.add(RefTrainOps.values(lp.a().grad));
                grads.add(RefTrainOps.values(lp.b().grad));
            }
            double h = 1e-6;
            double worst = 0;
            String where = "";
            int checked = 0;
            int k = 0;
            for (Params.LoraPair lp : p.loras()) {
                for (Params.Param q : new Params.Param[] {lp.a(), lp.b()}) {
                    double[] grad = grads.get(k++);
                    double[] v = RefTrainOps.values(q.value);
                    for (int i = 0; i < v.length; i++) {
                        double keep = v[i];
                        v[i] = keep + h;
                        RefTrainOps.setValues(q.value, v);
                        double up = lossWithMasks(g, p, ops, d, seed);
                        v[i] = keep - h;
                        RefTrainOps.setValues(q.value, v);
                        double down = lossWithMasks(g, p, ops, d, seed);
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
            }
            assertTrue(checked > 500, "checked " + checked);
            assertTrue(worst < 1e-5, "worst relative error " + worst + " at " + where);
        }
    }

    /** The training loss with the same dropout masks (trainStep's forward), gradients discarded. */
    private static double lossWithMasks(TrainGraph g, Params p, TrainOps ops, int[][] d, long seed) {
        double loss = g.trainStep(d[0], d[1], 1f, seed);
        p.zeroGrads(ops);
        return loss;
    }

    @Test
    void bZeroStartsAsTheBaseModel() {
        LlamaConfig c = TrainGraphGradientTest.tiny();
        try (TrainOps ops = new RefTrainOps()) {
            Params base = new Params(c, false, ops);
            base.initRandom(ops, 4);
            int[][] d = TrainGraphGradientTest.data(2, 10, c.vocab());
            double before = new TrainGraph(base, ops, 2, 5, false, 0f).loss(d[0], d[1], 2);
            base.freeze(n -> true);
            for (LoraTarget t : LoraTarget.values()) {
                base.addLora(ops, 1, t, 4, 8f, 1);
            }
            double after = new TrainGraph(base, ops, 2, 5, false, 0f, 0.1f).loss(d[0], d[1], 2);
            assertEquals(before, after, 0.0, "B = 0: the adapted model is the base");
        }
    }

    /** The CPU paths (native and Vector API, 1 and 2 threads) give the oracle's loss and adapter gradients. */
    @ParameterizedTest(name = "native={0}")
    @ValueSource(booleans = {true, false})
    void theCpuBackendGivesTheOraclesAdapterGradients(boolean useNative) {
        LlamaConfig c = new LlamaConfig("llama", 40, 2, 4, 2, 10, 70, 53, 64, 1e-5f, 10, 10000f, 1f, false);
        int seqs = 2;
        int len = 13;
        int[][] d = TrainGraphGradientTest.data(11, seqs * len, c.vocab());
        List<double[]> want = new ArrayList<>();
        double refLoss;
        try (TrainOps ops = new RefTrainOps()) {
            Params p = adapted(ops, c, 8);
            p.zeroGrads(ops);
            refLoss = new TrainGraph(p, ops, seqs, len, false, 0f, 0.2f).trainStep(d[0], d[1], 1f / (seqs * len), 5);
            for (Params.Param q : p.stateful()) {
                want.add(RefTrainOps.values(q.grad));
            }
        }
        for (int threads : new int[] {1, 2}) {
            try (CpuBackend cpu = new CpuBackend(threads, useNative); TrainOps ops = cpu.trainOps()) {
                Params p = adapted(ops, c, 8);
                p.zeroGrads(ops);
                double loss = new TrainGraph(p, ops, seqs, len, false, 0f, 0.2f).trainStep(d[0], d[1], 1f / (seqs * len), 5);
                assertEquals(refLoss, loss, 1e-5 * refLoss, "loss, " + threads + " threads");
                compare(want, p, ops, 2e-4, threads + " threads");
            }
        }
    }

    private static void compare(List<double[]> want, Params p, TrainOps ops, double tol, String what) {
        List<Params.Param> got = p.stateful();
        assertEquals(want.size(), got.size());
        for (int i = 0; i < got.size(); i++) {
            Params.Param q = got.get(i);
            float[] g = new float[Math.toIntExact(q.size())];
            ops.read(q.grad, g);
            double scale = 0;
            for (double w : want.get(i)) {
                scale = Math.max(scale, Math.abs(w));
            }
            assertTrue(scale > 0, q.name + " has a gradient");
            for (int j = 0; j < g.length; j++) {
                assertEquals(want.get(i)[j], g[j], tol * scale, q.name + "[" + j + "], " + what);
            }
        }
    }

    /**
     * A quantized base (file written by cria synth) frozen in place: the CPU's panel-streamed
     * products give the loss and adapter gradients of the oracle's dequantized copy.
     */
    @ParameterizedTest(name = "{0} native={1} int8 forward={2}")
    @CsvSource({"Q8_0,true,false", "Q4_0,true,false", "Q4_0,false,false", "F16,true,false", "F32,true,false", "Q4_K_M,true,false",
        "Q8_0,true,true", "Q4_0,true,true", "Q4_K_M,true,true"})
    void aQuantizedFrozenBaseGivesTheOraclesGradients(String type, boolean useNative, boolean int8, @TempDir Path dir) throws Exception {
        // K-quants need rows of 256 values; small widths elsewhere
        boolean k = type.startsWith("Q4_K");
        SynthShape shape = new SynthShape("t", k ? 256 : 64, 2, 4, 2, k ? 256 : 96, 300, 128, 10000f, false, 0f, 1e-5f);
        Path file = dir.resolve("base-" + type + ".gguf");
        Synth.write(file, shape, LlamaFileType.parse(type), true, null, 3, 1, null);
        int seqs = 2;
        int len = 9;
        try (GgufFile f = GgufFile.open(file)) {
            LlamaConfig c = LlamaConfig.from(f.metadata(), (int) f.tensor("token_embd.weight").shape()[1]);
            int[][] d = TrainGraphGradientTest.data(4, seqs * len, c.vocab());
            List<double[]> want = new ArrayList<>();
            double refLoss;
            try (TrainOps ops = new RefTrainOps()) {
                Params p = adaptedBase(c, f, ops);
                p.zeroGrads(ops);
                refLoss = new TrainGraph(p, ops, seqs, len, false, 0f).trainStep(d[0], d[1], 1f / (seqs * len), 1);
                for (Params.Param q : p.stateful()) {
                    want.add(RefTrainOps.values(q.grad));
                }
            }
            try (CpuBackend cpu = new CpuBackend(2, useNative); cria.backend.cpu.CpuTrainOps ops = cpu.trainOps()) {
                ops.frozenForwardExact(!int8);
                Params p = adaptedBase(c, f, ops);
                p.zeroGrads(ops);
                double loss = new TrainGraph(p, ops, seqs, len, true, 0f).trainStep(d[0], d[1], 1f / (seqs * len), 1);
                // exact panels: float32 rounding; the 8-bit forward: within inference's own error of the exact product
                assertEquals(refLoss, loss, (int8 ? 1e-2 : 1e-5) * refLoss, "loss");
                compare(want, p, ops, int8 ? 5e-2 : 5e-4, type);
            }
        }
    }

    /** The file's tensors frozen, adapters of rank 4 on every product with seeded non-zero B. */
    private static Params adaptedBase(LlamaConfig c, GgufFile f, TrainOps ops) {
        Params p = Params.frozenBase(c, f, ops);
        for (int l = 0; l < c.layers(); l++) {
            for (LoraTarget t : LoraTarget.values()) {
                Params.LoraPair lp = p.addLora(ops, l, t, 4, 8f, 2);
                ops.write(lp.b().value, noise(lp.b().size(), l * 7 + t.ordinal()));
            }
        }
        return p;
    }

    private static float[] noise(long n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * 0.05);
        }
        return v;
    }
}
