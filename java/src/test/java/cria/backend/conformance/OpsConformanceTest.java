// The one op conformance suite: every op x target x weight type against the ref backend on seeded random inputs.
package cria.backend.conformance;

import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.Cases;
import cria.backend.cpu.CpuBackend;
import cria.gguf.GgmlType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

/**
 * ARCHITECTURE.md rule 5. Each op case is written once against {@code Backend}/{@code Ops}
 * ({@link ProductChecks}, {@link ElementwiseChecks}, {@link KvChecks}, {@link AttnSpecChecks}, {@link FusedChecks}) and run
 * on every {@link Target}: {@code cpu-java} (the CPU backend without native kernels),
 * {@code cpu-native} (with them; skipped with the reason when the library is not built),
 * {@code cuda-emulator} (the kernels/*.cu sources on the CPU emulator; skipped without g++ and
 * libffi), the emulator under {@code reverse} and {@code random} thread schedules (races), and
 * {@code cuda-gpu} (skipped without a device). Ops that read weights get one case per weight type
 * the target reads; every case is named "op type @ target". Outputs start as NaN, so an element an
 * op does not write fails; the bounds are {@link Tolerances}' table.
 * <p>Seed: one per run, printed at the start and in every failure message; each case draws its
 * inputs from it and its own name, so {@code -Dcria.test.seed=N} reproduces a failure, alone or
 * in the whole run ({@code mvn test -Dtest=OpsConformanceTest -Dcria.test.seed=N}).
 * {@code -Dcria.test.targets=cuda-gpu} (names, comma-separated) runs some targets only, the others
 * skipped with that reason; {@code -Dcria.test.errors=true} prints every measured error and bound.
 */
class OpsConformanceTest {
    /** The run's seed: {@code -Dcria.test.seed}, or drawn. */
    static final long SEED = Long.getLong("cria.test.seed", new Random().nextLong());

    static {
        System.out.println("[conformance] seed " + SEED + " (-Dcria.test.seed=" + SEED + " reproduces this run's inputs)");
    }

    /** One case's body, given the target beside ref and (for ops that read weights) the weight type. */
    interface Body {
        void run(Pairs p, GgmlType t) throws Exception;
    }

    /** The seed of the case {@code key} (the op and type, not the target: every target gets the same inputs). */
    static long seedOf(String key) {
        long h = SEED ^ (key.hashCode() * 0x9E3779B97F4A7C15L);
        return h ^ (h >>> 31);
    }

    /** One case: opens the target (or skips), runs the body, closes; a failure gains the case and the seed. */
    static DynamicTest test(String op, GgmlType type, Target target, Body body) {
        String key = type == null ? op : op + " " + type;
        String name = key + " @ " + target;
        return DynamicTest.dynamicTest(name, () -> {
            String where = " [" + name + "; seed " + SEED + ": rerun with -Dcria.test.seed=" + SEED + "]";
            try (Pairs p = new Pairs(target, seedOf(key))) {
                body.run(p, type);
            } catch (TestAbortedException e) {
                throw e;
            } catch (AssertionFailedError e) {
                throw new AssertionFailedError(e.getMessage() + where, e);
            } catch (Throwable e) {
                throw new AssertionFailedError(e + where, e);
            }
        });
    }

    /** A case per target for an op that reads no weight matrix. */
    static Stream<DynamicTest> perTarget(String op, List<Target> targets, Body body) {
        return Cases.nonEmpty(targets.stream().map(t -> test(op, null, t, body)), op + " on each target");
    }

    /** A case per target and weight type it reads ({@code only}, when given, narrows the types). */
    static Stream<DynamicTest> perType(String op, List<Target> targets, List<GgmlType> only, Body body) {
        List<DynamicTest> tests = new ArrayList<>();
        for (Target target : targets) {
            for (GgmlType t : target.types()) {
                if (only == null || only.contains(t)) {
                    tests.add(test(op, t, target, body));
                }
            }
        }
        return Cases.nonEmpty(tests, op + " on each target and weight type");
    }

    // ---- the ops that read weights of every type --------------------------------------------------

    @TestFactory
    Stream<DynamicTest> matmul() {
        return perType("matmul", Target.ALL, null, (p, t) -> ProductChecks.matmul(p, t));
    }

    @TestFactory
    Stream<DynamicTest> matmulOfMixedTypesOnOneInput() {
        return perTarget("matmul of Q4_K, Q6_K and Q8_0 on one input", Target.ALL, (p, t) -> ProductChecks.mixedTypesOneInput(p));
    }

    @TestFactory
    Stream<DynamicTest> embed() {
        return perType("embed", Target.ALL, null, (p, t) -> ProductChecks.embed(p, t));
    }

    @TestFactory
    Stream<DynamicTest> fusedProducts() {
        return perType("rmsnormMatmul, rmsnormGateUpSwiglu, matmulAdd", Target.ALL, null, (p, t) -> FusedChecks.fusedProducts(p, t));
    }

    // ---- the ops without a weight matrix -------------------------------------------------------------

    @TestFactory
    Stream<DynamicTest> rmsnorm() {
        return perTarget("rmsnorm", Target.ALL, (p, t) -> ElementwiseChecks.rmsnorm(p));
    }

    @TestFactory
    Stream<DynamicTest> rope() {
        return perTarget("rope", Target.ALL, (p, t) -> ElementwiseChecks.rope(p));
    }

    @TestFactory
    Stream<DynamicTest> swigluAddGather() {
        return perTarget("swiglu, add, gather", Target.ALL, (p, t) -> ElementwiseChecks.swigluAddGather(p));
    }

    @TestFactory
    Stream<DynamicTest> addBiasAndRmsnormHeads() {
        return perTarget("addBias, rmsnormHeads", Target.ALL, (p, t) -> ElementwiseChecks.biasAndHeadNorm(p));
    }

    @TestFactory
    Stream<DynamicTest> gegluScaleSoftcap() {
        return perTarget("geglu, scale, softcap", Target.ALL, (p, t) -> ElementwiseChecks.gegluScaleSoftcap(p));
    }

    // ---- the KV cache -----------------------------------------------------------------------------

    @TestFactory
    Stream<DynamicTest> storeKvAndAttention() {
        return perTarget("storeKv and attention (GQA, paged, split)", Target.ALL, (p, t) -> KvChecks.storeKvAndAttention(p));
    }

    @TestFactory
    Stream<DynamicTest> pagedAttentionOverInterleavedSequences() {
        return perTarget("paged attention over interleaved sequences", Target.ALL, (p, t) -> KvChecks.pagedAttentionInterleaved(p));
    }

    @TestFactory
    Stream<DynamicTest> attentionWindowSoftcapScale() {
        return perTarget("attention with sliding windows, soft-caps, scales", Target.ALL, (p, t) -> AttnSpecChecks.windowSoftcapScale(p));
    }

    @TestFactory
    Stream<DynamicTest> attentionWindowIsTheLastPositions() {
        return perTarget("a sliding window is the last W positions", Target.ALL, (p, t) -> AttnSpecChecks.windowIsTheLastPositions(p));
    }

    @TestFactory
    Stream<DynamicTest> ropeStoreKv() {
        return perTarget("ropeStoreKv", Target.ALL, (p, t) -> KvChecks.ropeStoreKv(p));
    }

    // ---- what the CPU backend's products promise beyond ref ----------------------------------------

    @TestFactory
    Stream<DynamicTest> cpuMatmulIsBatchInvariant() {
        return perType("batch-invariant matmul", Target.CPU, null, (p, t) -> CpuProductProperties.batchInvariant(p, t));
    }

    @TestFactory
    Stream<DynamicTest> cpuMatmulRowsDoNotDependOnTheirPanel() {
        return perType("panel-invariant matmul", Target.CPU, null, (p, t) -> CpuProductProperties.panelInvariant(p, t));
    }

    @TestFactory
    Stream<DynamicTest> cpuMatmulPackedWeightsGiveTheSameBits() {
        return perType("packed weights", Target.CPU, null, (p, t) -> CpuProductProperties.packedInvariant(p, t));
    }

    @TestFactory
    Stream<DynamicTest> cpuMatmulShortLastChunk() {
        return perType("576-value rows", Target.CPU, Arrays.asList(CpuProductProperties.SHORT_CHUNK_TYPES),
                (p, t) -> CpuProductProperties.shortLastChunk(p, t));
    }

    @TestFactory
    Stream<DynamicTest> cpuMatmulHandsOverRowsItsKernelsDoNotTake() {
        return perType("96-value rows", Target.CPU, Arrays.asList(CpuProductProperties.HAND_OVER_TYPES),
                (p, t) -> CpuProductProperties.handOver(p, t));
    }

    /** cpu-native skips where the library is missing; where the build configured it, it must load. */
    @Test
    void nativeKernelsAreBuiltWhereACompilerIs() {
        try (CpuBackend b = new CpuBackend(1, true)) {
            Assumptions.assumeTrue(System.getProperty("cria.native.dir") != null, "skipped: no native library directory configured");
            assertTrue(b.usesNativeKernels(), "the build makes target/native/libcria.so; the CPU backend should load it: " + b.describe());
        }
    }
}
