// A fixed little training run (two steps of a two-layer model at odd shapes, dropout on) whose parameters the determinism test compares.
package cria.backend.cpu;

import cria.bench.TrainModel;

/** Runs the same two training steps on a fresh backend and returns every parameter afterwards. */
final class DeterminismRun {
    static final TrainModel.Shape SHAPE = new TrainModel.Shape(40, 2, 4, 2, 52, 37, 19, 3, 0.1f);

    private DeterminismRun() {}

    static float[] run(boolean nat, int threads) {
        try (CpuBackend b = new CpuBackend(threads, nat); CpuTrainOps t = b.trainOps()) {
            TrainModel m = new TrainModel(t, SHAPE, 5);
            m.step();
            m.step();
            return m.parameters();
        }
    }
}
