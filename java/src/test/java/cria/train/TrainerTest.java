package cria.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.backend.TrainOps;
import cria.backend.ref.RefTrainOps;
import cria.model.LlamaConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The training loop's promises: accumulation equals a larger batch, resuming repeats the losses, checkpoints refuse other runs. */
class TrainerTest {
    static final LlamaConfig C = TrainGraphGradientTest.tiny();

    static int[] stream(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] s = new int[n];
        for (int i = 0; i < n; i++) {
            // a little structure so the loss can fall: mostly "next = previous + 1"
            s[i] = i > 0 && r.nextInt(4) != 0 ? (s[i - 1] + 1) % C.vocab() : r.nextInt(C.vocab());
        }
        return s;
    }

    static TrainOptions options(int batch, int accum, int steps, boolean shuffle, Path ckpt, int saveEvery) {
        Schedule s = new Schedule(Schedule.Kind.COSINE, 3e-2, 3e-3, 2, steps, 0.5, 1, 2);
        return new TrainOptions(batch, 6, accum, s, 0.1, 1.0, shuffle, 11, 0f, false, 0, 8, 0, ckpt, saveEvery);
    }

    static List<Double> run(Supplier<TrainOps> opsMaker, TrainOptions o, float[][] finalWeights) {
        List<Double> losses = new ArrayList<>();
        try (TrainOps ops = opsMaker.get()) {
            Params p = new Params(C, false, ops);
            p.initRandom(ops, 5);
            Trainer t = new Trainer(p, ops, o, stream(1, 400), stream(2, 100), "test");
            t.run(false, new Trainer.Listener() {
                @Override
                public void onStep(Trainer.StepResult r) {
                    losses.add(r.loss());
                }
            });
            if (finalWeights != null) {
                for (int i = 0; i < p.all().size(); i++) {
                    finalWeights[i] = p.values(ops, p.all().get(i));
                }
            }
        }
        return losses;
    }

    @Test
    void accumulationOverKMicroBatchesEqualsOneBatchKTimesAsLarge() {
        for (boolean shuffle : new boolean[] {false, true}) {
            int tensors = 3 + 9 * C.layers();
            float[][] big = new float[tensors][];
            float[][] acc = new float[tensors][];
            List<Double> a = run(RefTrainOps::new, options(4, 1, 4, shuffle, null, 1), big);
            List<Double> b = run(RefTrainOps::new, options(1, 4, 4, shuffle, null, 1), acc);
            for (int s = 0; s < a.size(); s++) {
                assertEquals(a.get(s), b.get(s), 1e-12 * Math.abs(a.get(s)), "step " + (s + 1) + " loss, shuffle " + shuffle);
            }
            for (int i = 0; i < tensors; i++) {
                for (int j = 0; j < big[i].length; j++) {
                    assertEquals(big[i][j], acc[i][j], 1e-6f * Math.max(1, Math.abs(big[i][j])), "tensor " + i + " value " + j);
                }
            }
            assertTrue(a.get(a.size() - 1) < a.get(0), "the loss falls: " + a);
        }
    }

    @Test
    void resumingAfterAnInterruptionRepeatsTheLosses(@TempDir Path dir) {
        List<Double> whole = run(RefTrainOps::new, options(2, 1, 6, true, null, 1), null);
        Path ckpt = dir.resolve("ck");
        TrainOptions o = options(2, 1, 6, true, ckpt, 3);
        List<Double> first = new ArrayList<>();
        try (TrainOps ops = new RefTrainOps()) {
            Params p = new Params(C, false, ops);
            p.initRandom(ops, 5);
            Trainer t = new Trainer(p, ops, o, stream(1, 400), stream(2, 100), "test");
            assertThrows(IllegalStateException.class, () -> t.run(false, new Trainer.Listener() {
                @Override
                public void onStep(Trainer.StepResult r) {
                    if (r.step() == 5) {
                        throw new IllegalStateException("killed"); // after the checkpoint of step 3, before step 6
                    }
                    first.add(r.loss());
                }
            }));
        }
        List<Double> rest = new ArrayList<>();
        try (TrainOps ops = new RefTrainOps()) {
            Params p = new Params(C, false, ops);
            p.initRandom(ops, 99); // overwritten by the checkpoint
            Trainer t = new Trainer(p, ops, o, stream(1, 400), stream(2, 100), "test");
            t.run(true, new Trainer.Listener() {
                @Override
                public void onStep(Trainer.StepResult r) {
                    rest.add(r.loss());
                }
            });
        }
        assertEquals(3, rest.size(), "steps 4 to 6 run again");
        for (int s = 0; s < 3; s++) {
            // the ref keeps float64 but a checkpoint stores float32: equal to float rounding
            assertEquals(whole.get(3 + s), rest.get(s), 1e-6 * whole.get(3 + s), "step " + (4 + s));
        }
        assertEquals(whole.subList(0, 4), first, "the first run's steps");
    }

    @Test
    void patienceStopsEarlyAndTheBestWeightsAreKept() {
        // validation text that runs the other way (next = previous - 1): the better the model learns
        // the training text, the worse it does there, so validation loss rises after a while
        int[] val = new int[200];
        for (int i = 1; i < val.length; i++) {
            val[i] = (val[i - 1] + C.vocab() - 1) % C.vocab();
        }
        Schedule s = new Schedule(Schedule.Kind.CONSTANT, 3e-2, 3e-2, 0, 60, 0.5, 1, 2);
        TrainOptions o = new TrainOptions(2, 6, 1, s, 0.0, 1.0, true, 11, 0f, false, 2, 8, 2, null, 1);
        List<Trainer.EvalResult> evals = new ArrayList<>();
        try (TrainOps ops = new RefTrainOps()) {
            Params p = new Params(C, false, ops);
            p.initRandom(ops, 5);
            Trainer t = new Trainer(p, ops, o, stream(1, 400), val, "test");
            Trainer.Result r = t.run(false, new Trainer.Listener() {
                @Override
                public void onEval(Trainer.EvalResult e) {
                    evals.add(e);
                }
            });
            assertTrue(r.stoppedEarly(), "stopped early: " + evals);
            assertTrue(r.steps() < 60, "before the last step: " + r.steps());
            Trainer.EvalResult last = evals.get(evals.size() - 1);
            Trainer.EvalResult prev = evals.get(evals.size() - 2);
            assertTrue(!last.best() && !prev.best(), "two evaluations without improvement: " + evals);
            assertEquals(r.best().loss(), t.validationLoss(), 1e-9, "the weights left in place are the best evaluated ones");
        }
    }

    @Test
    void aCheckpointOfAnotherRunOrACorruptOneIsRefused(@TempDir Path dir) throws IOException {
        Path ckpt = dir.resolve("ck");
        TrainOptions o = options(2, 1, 2, true, ckpt, 1);
        try (TrainOps ops = new RefTrainOps()) {
            Params p = new Params(C, false, ops);
            p.initRandom(ops, 5);
            new Trainer(p, ops, o, stream(1, 400), stream(2, 100), "run A").run(false, new Trainer.Listener() {});
            Trainer other = new Trainer(p, ops, o, stream(1, 400), stream(2, 100), "run B");
            CriaException e = assertThrows(CriaException.class, () -> other.run(true, new Trainer.Listener() {}));
            assertTrue(e.getMessage().contains("another run"), e.getMessage());
            Path f = Checkpoint.file(ckpt);
            byte[] bytes = Files.readAllBytes(f);
            Files.write(f, java.util.Arrays.copyOf(bytes, bytes.length - 10));
            Trainer same = new Trainer(p, ops, o, stream(1, 400), stream(2, 100), "run A");
            e = assertThrows(CriaException.class, () -> same.run(true, new Trainer.Listener() {}));
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
            assertTrue(!Files.exists(ckpt.resolve("checkpoint.bin.tmp")), "no temporary file left behind");
        }
    }
}
