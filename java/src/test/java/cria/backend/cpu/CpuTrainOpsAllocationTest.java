// ARCHITECTURE.md rule 2 for training: once warm, a whole training step (every TrainOps op) allocates nothing on the calling thread or any pool thread.
package cria.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.bench.TrainModel;
import java.lang.management.ManagementFactory;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Runs training steps of a small two-layer model (dropout on, so every op runs) and counts the
 * bytes the calling thread and every pool thread allocate over many steps once sizes have been
 * seen. A lambda, an array or a segment slice made per call shows up as kilobytes; the allowance
 * covers the probes and JIT noise.
 */
class CpuTrainOpsAllocationTest {
    static final TrainModel.Shape SHAPE = new TrainModel.Shape(40, 1, 4, 2, 52, 37, 9, 2, 0.1f);
    static final int STEPS = 20;
    static final int WINDOWS = 30;

    @ParameterizedTest(name = "native={0}")
    @ValueSource(booleans = {false, true})
    void aWarmTrainingStepAllocatesNothing(boolean nat) {
        check(nat, false);
    }

    /** The same with the qwen graphs' ops: biases, per-head q/k norms (views of the buffers made once). */
    @ParameterizedTest(name = "native={0}")
    @ValueSource(booleans = {false, true})
    void aWarmQwenTrainingStepAllocatesNothing(boolean nat) {
        check(nat, true);
    }

    private static void check(boolean nat, boolean qwen) {
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        Assumptions.assumeTrue(mx.isThreadAllocatedMemorySupported(), "skipped: this JVM does not count allocated bytes per thread");
        try (CpuBackend b = new CpuBackend(2, nat); CpuTrainOps t = b.trainOps()) {
            Assumptions.assumeTrue(b.usesNativeKernels() == nat, "skipped: the native kernels are not built here");
            TrainModel m = qwen ? TrainModel.qwen(t, SHAPE, 3) : new TrainModel(t, SHAPE, 3);
            int threads = b.pool().threads();
            long[] before = new long[threads];
            long[] after = new long[threads];
            WorkerPool.Task probeBefore = (th, nt) -> before[th] = mx.getCurrentThreadAllocatedBytes();
            WorkerPool.Task probeAfter = (th, nt) -> after[th] = mx.getCurrentThreadAllocatedBytes();
            // windows of steps until one allocates nothing: code still being compiled (the Vector API
            // allocates until C2 has it) shows in the first windows, an allocation per call in all of them
            long total = Long.MAX_VALUE;
            for (int w = 0; w < WINDOWS && total >= 4096; w++) {
                for (int s = 0; s < STEPS; s++) {
                    m.step();
                }
                b.pool().run(probeBefore);
                long callerBefore = mx.getCurrentThreadAllocatedBytes();
                for (int s = 0; s < STEPS; s++) {
                    m.step();
                }
                long callerAfter = mx.getCurrentThreadAllocatedBytes();
                b.pool().run(probeAfter);
                total = callerAfter - callerBefore;
                for (int th = 0; th < threads; th++) {
                    total += after[th] - before[th];
                }
            }
            assertTrue(total < 4096, (nat ? "native" : "java") + " train ops allocated " + total + " bytes over " + STEPS + " warm steps");
        }
    }
}
