// Every op of every host backend, for every weight type, against the ref backend on fresh random inputs.
package cria.backend;

import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.cpu.CpuBackend;
import cria.backend.ref.RefBackend;
import cria.gguf.GgmlType;
import cria.tensor.Codec;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * ARCHITECTURE.md rule 5: each op x backend x weight type checked against {@code ref}. The
 * backends under test are the CPU backend with its native kernels (when built) and without
 * them (Vector API). Thresholds are relative RMS errors: float weights must agree to float
 * rounding; quantized weights meet 8-bit activations, so they get 2.5 % (a bug gives ~100 %).
 */
class OpsConformanceTest {
    static final Arena ARENA = Arena.ofShared();
    static final GgmlType[] TYPES = {GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0,
        GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
        GgmlType.IQ4_NL, GgmlType.IQ4_XS};

    final Random rnd = new Random(System.nanoTime());

    @AfterAll
    static void free() {
        ARENA.close();
    }

    static List<Backend> candidates() {
        List<Backend> out = new ArrayList<>();
        out.add(new CpuBackend(2, false));
        CpuBackend nat = new CpuBackend(2, true);
        if (nat.usesNativeKernels()) {
            out.add(nat);
        } else {
            nat.close();
        }
        return out;
    }

    static String label(Backend b) {
        return b instanceof CpuBackend c && c.usesNativeKernels() ? "cpu+native" : b.name();
    }

    Tensor randomWeight(GgmlType type, int rows, int cols) {
        Codec c = Codecs.of(type);
        MemorySegment seg = ARENA.allocate(type.rowBytes(cols) * rows, 64);
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) {
                row[i] = (float) rnd.nextGaussian() * 0.5f;
            }
            c.quantize(row, 0, cols, seg, r * type.rowBytes(cols));
        }
        return new Tensor("w." + type, type, new long[] {cols, rows}, seg);
    }

    static void fill(Backend b, Buf buf, int rows, float[] values) {
        HostBuf h = (HostBuf) buf;
        MemorySegment.copy(values, 0, h.segment(), java.lang.foreign.ValueLayout.JAVA_FLOAT, 0, rows * buf.cols());
    }

    float[] gaussian(int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian() * scale;
        }
        return a;
    }

    static double relRms(float[] a, float[] ref) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < ref.length; i++) {
            assertTrue(Float.isFinite(a[i]), "non-finite output at " + i);
            num += (a[i] - ref[i]) * (double) (a[i] - ref[i]);
            den += ref[i] * (double) ref[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-30));
    }

    @TestFactory
    Stream<DynamicTest> matmulEveryTypeEveryBackend() {
        List<DynamicTest> tests = new ArrayList<>();
        for (GgmlType t : TYPES) {
            tests.add(DynamicTest.dynamicTest("matmul " + t, () -> {
                int cols = 512;
                int rows = 37;
                Tensor w = randomWeight(t, rows, cols);
                Tensor w2 = randomWeight(t, 12, cols);
                for (int n : new int[] {1, 3, 9}) {
                    float[] x = gaussian(n * cols, 1f);
                    x[3] = 40f; // an outlier, as real activations have
                    float[][] ref = run(new RefBackend(), w, w2, x, n, cols);
                    for (Backend b : candidates()) {
                        try (b) {
                            float[][] got = run(b, w, w2, x, n, cols);
                            double limit = limit(b, t);
                            for (int j = 0; j < 2; j++) {
                                double e = relRms(got[j], ref[j]);
                                assertTrue(e < limit, label(b) + " " + t + " n=" + n + " output " + j + ": rel RMS " + e);
                            }
                        }
                    }
                }
            }));
        }
        return tests.stream();
    }

    /**
     * The relative RMS error allowed against ref: float rounding, except where quantized weights meet
     * the native kernels' 8-bit activations (blocks of 16 share a scale; x holds an outlier). The
     * Java path dequantizes weights and keeps activations in float, so it must agree to rounding.
     */
    static double limit(Backend b, GgmlType t) {
        return t.isQuantized() && b instanceof CpuBackend c && c.usesNativeKernels() ? 2.5e-2 : 1e-5;
    }

    /** The CPU backend's paths: pure Java, and native kernels where the library is built. */
    static List<Boolean> cpuPaths() {
        try (CpuBackend probe = new CpuBackend(2, true)) {
            return probe.usesNativeKernels() ? List.of(false, true) : List.of(false);
        }
    }

    interface TypeCheck {
        void check(GgmlType t) throws Exception;
    }

    static Stream<DynamicTest> perType(String what, TypeCheck check) {
        return Arrays.stream(TYPES).map(t -> DynamicTest.dynamicTest(what + " " + t, () -> check.check(t)));
    }

    /**
     * A token's result never depends on the rest of its batch (what keeps batched generation's text
     * equal to generating alone): each row of a 9-input product equals that input run alone, bit
     * for bit, on every host backend and weight type (the one-input path is a separate kernel).
     */
    @TestFactory
    Stream<DynamicTest> matmulIsBatchInvariant() {
        return perType("batch-invariant matmul", t -> {
            int cols = 512;
            int n = 9;
            Tensor w = randomWeight(t, 85, cols); // 64 + 16 + 5 rows: every panel grouping of the float path
            Tensor w2 = randomWeight(t, 12, cols);
            float[] x = gaussian(n * cols, 1f);
            for (boolean nat : cpuPaths()) {
                float[][] all = run(new CpuBackend(2, nat), w, w2, x, n, cols);
                for (int i = 0; i < n; i++) {
                    float[] xi = Arrays.copyOfRange(x, i * cols, (i + 1) * cols);
                    float[][] one = run(new CpuBackend(2, nat), w, w2, xi, 1, cols);
                    for (int j = 0; j < 2; j++) {
                        int rows = one[j].length;
                        float[] batched = Arrays.copyOfRange(all[j], i * rows, (i + 1) * rows);
                        assertTrue(Arrays.equals(batched, one[j]), (nat ? "native " : "java ") + t + ": input " + i + " of " + n
                                + " differs from the same input alone (output " + j + ")");
                    }
                }
            }
        });
    }

    /**
     * Full panels of 16 rows and a ragged last panel take different unpacking paths in the native
     * kernels (direct builders for the common types, the generic unpacker otherwise); both must give
     * the same bits. The first 15 rows of a 32-row weight, run alone, are all ragged.
     */
    @TestFactory
    Stream<DynamicTest> matmulRowsDoNotDependOnTheirPanel() {
        return perType("panel-invariant matmul", t -> {
            // 32-value block types: 576 values, so each row also ends in a short chunk (2 x 256 + 64)
            int cols = t.blockSize() == 32 ? 576 : 768;
            Tensor w = randomWeight(t, 32, cols);
            Tensor head = new Tensor("head." + t, t, new long[] {cols, 15}, w.data().asSlice(0, t.rowBytes(cols) * 15));
            for (int n : new int[] {1, 3}) {
                float[] x = gaussian(n * cols, 1f);
                for (boolean nat : cpuPaths()) {
                    float[][] full = run(new CpuBackend(2, nat), w, head, x, n, cols);
                    for (int i = 0; i < n; i++) {
                        float[] a = Arrays.copyOfRange(full[0], i * 32, i * 32 + 15);
                        float[] b = Arrays.copyOfRange(full[1], i * 15, i * 15 + 15);
                        assertTrue(Arrays.equals(a, b), (nat ? "native " : "java ") + t + " n=" + n + " input " + i
                                + ": rows 0..14 differ between a full panel and a ragged one");
                    }
                }
            }
        });
    }

    /**
     * Rows whose length is not a multiple of 256 (SmolLM's 576 and 960, say) still run natively for
     * the 32-value block types: the last chunk of each row is short. Checked against ref and for batch
     * invariance; K-quants need whole super-blocks and say so.
     */
    @TestFactory
    Stream<DynamicTest> matmulShortLastChunk() {
        GgmlType[] small = {GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.IQ4_NL};
        return Arrays.stream(small).map(t -> DynamicTest.dynamicTest("576-value rows " + t, () -> {
            int cols = 576;
            int n = 5;
            Tensor w = randomWeight(t, 37, cols);
            Tensor w2 = randomWeight(t, 16, cols);
            float[] x = gaussian(n * cols, 1f);
            float[][] ref = run(new RefBackend(), w, w2, x, n, cols);
            for (boolean nat : cpuPaths()) {
                try (CpuBackend probe = new CpuBackend(1, nat)) {
                    assertTrue(!nat || probe.runsNatively(t, cols), t + " with 576-value rows should run natively");
                    assertTrue(!probe.runsNatively(GgmlType.Q4_K, cols), "Q4_K needs whole 256-value super-blocks");
                }
                float[][] all = run(new CpuBackend(2, nat), w, w2, x, n, cols);
                double limit = nat ? 2.5e-2 : 1e-5; // as limit(): 8-bit activations on the native path only
                for (int j = 0; j < 2; j++) {
                    double e = relRms(all[j], ref[j]);
                    assertTrue(e < limit, (nat ? "native " : "java ") + t + " output " + j + ": rel RMS " + e);
                }
                float[][] last = run(new CpuBackend(2, nat), w, w2, Arrays.copyOfRange(x, (n - 1) * cols, n * cols), 1, cols);
                int rows = (int) w.rows();
                assertTrue(Arrays.equals(Arrays.copyOfRange(all[0], (n - 1) * rows, n * rows), last[0]),
                        (nat ? "native " : "java ") + t + ": the last input alone differs from the batch");
            }
        }));
    }

    /**
     * What the native path hands over to its Java ops, checked against ref on that path: products
     * with rows the kernels do not take (96 values: not whole pairs of 32-value blocks) and attention
     * with more than 64 query heads per KV head. Both keep float activations, so float rounding.
     */
    @Test
    void nativePathHandsOverWhatItsKernelsDoNotTake() {
        Assumptions.assumeTrue(cpuPaths().contains(true), "skipped: the native kernels are not built here");
        int cols = 96;
        for (GgmlType t : new GgmlType[] {GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.IQ4_NL}) {
            try (CpuBackend probe = new CpuBackend(1, true)) {
                assertTrue(!probe.runsNatively(t, cols), t + " with 96-value rows should not run natively");
            }
            Tensor w = randomWeight(t, 37, cols);
            Tensor w2 = randomWeight(t, 5, cols);
            for (int n : new int[] {1, 4}) {
                float[] x = gaussian(n * cols, 1f);
                float[][] ref = run(new RefBackend(), w, w2, x, n, cols);
                float[][] got = run(new CpuBackend(2, true), w, w2, x, n, cols);
                for (int j = 0; j < 2; j++) {
                    double e = relRms(got[j], ref[j]);
                    assertTrue(e < 1e-5, "native path, " + t + " with 96-value rows, n=" + n + " output " + j + ": rel RMS " + e);
                }
            }
        }
        int heads = 66;
        int headDim = 8;
        for (KvCache.Type kvType : KvCache.Type.values()) {
            List<float[]> ref = attention(new RefBackend(), kvType, new int[] {9, 3}, heads, 1, headDim, headDim, 5);
            List<float[]> got = attention(new CpuBackend(2, true), kvType, new int[] {9, 3}, heads, 1, headDim, headDim, 5);
            for (int step = 0; step < ref.size(); step++) {
                double e = relRms(got.get(step), ref.get(step));
                assertTrue(e < 1e-5, "native path, " + kvType + " attention of 66 query heads on one KV head, step " + step + ": " + e);
            }
        }
    }

    /** Two weights sharing one input, as the forward pass calls it (q/k/v, gate/up). */
    static float[][] run(Backend b, Tensor w, Tensor w2, float[] x, int n, int cols) {
        try (b) {
            Buf xb = b.allocate("x", n, cols);
            fill(b, xb, n, x);
            Buf o1 = b.allocate("o1", n, (int) w.rows());
            Buf o2 = b.allocate("o2", n, (int) w2.rows());
            b.ops().matmul(xb, n, new Weight[] {b.weight(w), b.weight(w2)}, new Buf[] {o1, o2});
            float[] r1 = new float[n * (int) w.rows()];
            float[] r2 = new float[n * (int) w2.rows()];
            b.download(o1, n, r1);
            b.download(o2, n, r2);
            return new float[][] {r1, r2};
        }
    }

    /**
     * The fused ops (rmsnormMatmul, rmsnormGateUpSwiglu, matmulAdd) for every weight type: on each
     * host backend the fused op leaves what the plain ops it stands for leave (a backend may fuse
     * only what it computes identically), and agrees with ref as the plain ops do. Within the
     * backend the bound is 1e-6, not bit equality: the CPU backend's float-weight Java paths differ
     * in the last bits between one run and the next while the JIT compiles them (about 1e-7).
     */
    @TestFactory
    Stream<DynamicTest> fusedProductsEqualThePlainOps() {
        return perType("fused products", t -> {
            int dim = 512;
            Tensor norm = randomWeight(GgmlType.F32, 1, dim);
            Tensor[] w = {randomWeight(t, 40, dim), randomWeight(t, 24, dim), randomWeight(t, 24, dim),  // q, k, v
                randomWeight(t, 48, dim), randomWeight(t, 48, dim),                                        // gate, up
                randomWeight(t, 37, dim)};                                                                 // o
            for (int n : new int[] {1, 3}) {
                float[] x = gaussian(n * dim, 2f);
                float[] res = gaussian(n * 37, 1f);
                List<float[]> ref = fusedProducts(new RefBackend(), false, norm, w, x, res, n);
                List<float[]> refFused = fusedProducts(new RefBackend(), true, norm, w, x, res, n);
                for (int i = 0; i < ref.size(); i++) {
                    assertTrue(Arrays.equals(refFused.get(i), ref.get(i)), "ref " + t + " n=" + n + ": fused output " + i + " differs");
                }
                for (boolean nat : cpuPaths()) {
                    String name = nat ? "native" : "java";
                    List<float[]> plain = fusedProducts(new CpuBackend(2, nat), false, norm, w, x, res, n);
                    List<float[]> fused = fusedProducts(new CpuBackend(2, nat), true, norm, w, x, res, n);
                    for (int i = 0; i < ref.size(); i++) {
                        double d = relRms(fused.get(i), plain.get(i));
                        assertTrue(d < 1e-6, name + " " + t + " n=" + n + ": fused output " + i + " (" + FUSED_OUTPUTS[i]
                                + ") differs from the plain ops' by rel RMS " + d);
                        // quantized weights meet 8-bit activations; the normalized rows are float arithmetic
                        double limit = i == 0 || i == 4 || i == 9 ? 2e-6 : (t.isQuantized() ? 2.5e-2 : 1e-5);
                        double e = relRms(fused.get(i), ref.get(i));
                        assertTrue(e < limit, name + " " + t + " n=" + n + " " + FUSED_OUTPUTS[i] + ": rel RMS " + e);
                    }
                }
            }
        });
    }

    static final String[] FUSED_OUTPUTS = {"rmsnormMatmul xb", "q", "k", "v", "rmsnormGateUpSwiglu xb", "hb", "hb2",
        "matmulAdd out", "matmulAdd residual", "in-place rmsnormMatmul x", "its product"};

    /** The fused ops, or (fused false) the plain ops they stand for, on fresh buffers; every buffer written, in FUSED_OUTPUTS' order. */
    static List<float[]> fusedProducts(Backend b, boolean fused, Tensor norm, Tensor[] w, float[] x, float[] res, int n) {
        int dim = x.length / n;
        try (b) {
            Ops ops = b.ops();
            Weight g = b.weight(norm);
            Weight[] ws = new Weight[w.length];
            for (int j = 0; j < w.length; j++) {
                ws[j] = b.weight(w[j]);
            }
            Buf xb = b.allocate("x", n, dim);
            Buf nb = b.allocate("xb", n, dim);
            Buf q = b.allocate("q", n, 40);
            Buf k = b.allocate("k", n, 24);
            Buf v = b.allocate("v", n, 24);
            Buf hb = b.allocate("hb", n, 48);
            Buf hb2 = b.allocate("hb2", n, 48);
            Buf o = b.allocate("o", n, 37);
            Buf r = b.allocate("res", n, 37);
            fill(b, xb, n, x);
            fill(b, r, n, res);
            List<float[]> out = new ArrayList<>();
            Weight[] qkv = {ws[0], ws[1], ws[2]};
            Buf[] qkvOut = {q, k, v};
            if (fused) {
                ops.rmsnormMatmul(xb, g, 1e-5f, n, nb, qkv, qkvOut);
            } else {
                ops.rmsnorm(xb, g, 1e-5f, n, nb);
                ops.matmul(nb, n, qkv, qkvOut);
            }
            out.addAll(List.of(read(b, nb, n), read(b, q, n), read(b, k, n), read(b, v, n)));
            if (fused) {
                ops.rmsnormGateUpSwiglu(xb, g, 1e-5f, n, nb, ws[3], ws[4], hb, hb2);
            } else {
                ops.rmsnorm(xb, g, 1e-5f, n, nb);
                ops.matmul(nb, n, new Weight[] {ws[3], ws[4]}, new Buf[] {hb, hb2});
                ops.swiglu(hb, hb2, n);
            }
            out.addAll(List.of(read(b, nb, n), read(b, hb, n), read(b, hb2, n)));
            if (fused) {
                ops.matmulAdd(nb, n, ws[5], o, r);
            } else {
                ops.matmul(nb, n, new Weight[] {ws[5]}, new Buf[] {o});
                ops.add(r, o, n);
            }
            out.addAll(List.of(read(b, o, n), read(b, r, n)));
            if (fused) {  // the logits' form: normalized in place
                ops.rmsnormMatmul(xb, g, 1e-5f, n, xb, new Weight[] {ws[5]}, new Buf[] {o});
            } else {
                ops.rmsnorm(xb, g, 1e-5f, n, xb);
                ops.matmul(xb, n, new Weight[] {ws[5]}, new Buf[] {o});
            }
            out.addAll(List.of(read(b, xb, n), read(b, o, n)));
            return out;
        }
    }

    /** ropeStoreKv leaves q, k and the cache as rope then storeKv do, on every host backend, and agrees with ref. */
    @Test
    void ropeStoreKvEqualsRopeThenStore() {
        for (KvCache.Type kvType : KvCache.Type.values()) {
            for (Rope rope : new Rope[] {new Rope(16, 10000f, 1f, null, false), new Rope(8, 500000f, 1f, null, true)}) {
                long seed = rnd.nextLong();
                List<float[]> ref = ropeStore(new RefBackend(), false, kvType, rope, seed);
                List<float[]> refFused = ropeStore(new RefBackend(), true, kvType, rope, seed);
                for (int i = 0; i < ref.size(); i++) {
                    assertTrue(Arrays.equals(refFused.get(i), ref.get(i)), "ref " + kvType + ": ropeStoreKv output " + i + " differs");
                }
                for (boolean nat : cpuPaths()) {
                    List<float[]> plain = ropeStore(new CpuBackend(2, nat), false, kvType, rope, seed);
                    List<float[]> fused = ropeStore(new CpuBackend(2, nat), true, kvType, rope, seed);
                    for (int i = 0; i < ref.size(); i++) {
                        String what = (nat ? "native " : "java ") + kvType + " neox=" + rope.neox() + " output " + i + " (q, k, attention)";
                        double d = relRms(fused.get(i), plain.get(i));
                        assertTrue(d < 1e-6, what + ": ropeStoreKv differs from rope + storeKv by rel RMS " + d);
                        double e = relRms(fused.get(i), ref.get(i));
                        assertTrue(e < 1e-5, what + ": rel RMS " + e);
                    }
                }
            }
        }
    }

    /** q and k after ropeStoreKv (or rope then storeKv), then attention over what the cache holds. */
    static List<float[]> ropeStore(Backend b, boolean fused, KvCache.Type kvType, Rope rope, long seed) {
        Random r = new Random(seed);
        int heads = 4;
        int kvHeads = 2;
        int headDim = 16;
        int kvDim = kvHeads * headDim;
        try (b; KvCache cache = b.kvCache(new KvCache.Config(1, kvDim, kvType, 16, 8, 2, 64))) {
            int s0 = cache.newSequence();
            int s1 = cache.newSequence();
            cache.reserve(s0, 40);
            cache.reserve(s1, 40);
            Batch batch = new Batch(3);
            batch.add(0, 0, s0, false);
            batch.add(0, 37, s1, false);
            batch.add(0, 1, s0, false);
            int n = batch.size();
            Buf q = b.allocate("q", n, heads * headDim);
            Buf k = b.allocate("k", n, kvDim);
            Buf v = b.allocate("v", n, kvDim);
            Buf o = b.allocate("o", n, heads * headDim);
            fill(b, q, n, gauss(r, n * heads * headDim));
            fill(b, k, n, gauss(r, n * kvDim));
            fill(b, v, n, gauss(r, n * kvDim));
            if (fused) {
                b.ops().ropeStoreKv(q, k, v, headDim, batch, rope, cache, 0);
            } else {
                b.ops().rope(q, k, headDim, batch, rope);
                b.ops().storeKv(cache, 0, k, v, batch);
            }
            List<float[]> out = new ArrayList<>(List.of(read(b, q, n), read(b, k, n)));
            b.ops().attention(q, cache, 0, heads, kvHeads, headDim, batch, o);
            out.add(read(b, o, n));
            return out;
        }
    }

    @Test
    void elementwiseOpsRopeEmbedAndGatherMatchRef() {
        int n = 5;
        int dim = 64;
        int headDim = 16;
        float[] x = gaussian(n * dim, 2f);
        float[] y = gaussian(n * dim, 1f);
        Tensor norm = randomWeight(GgmlType.F32, 1, dim);
        Tensor table = randomWeight(GgmlType.Q6_K, 300, 256);
        Batch batch = new Batch(n);
        for (int i = 0; i < n; i++) {
            batch.add(7 * i + 3, 100 * i + 1, 0, i % 2 == 0);
        }
        float[] factors = {1f, 1.5f, 2f, 8f};
        for (Rope rope : new Rope[] {new Rope(8, 10000f, 1f, null, false), new Rope(16, 500000f, 0.25f, null, true),
            new Rope(8, 10000f, 1f, factors, false)}) {
            List<float[]> ref = elementwise(new RefBackend(), x, y, norm, table, batch, rope, headDim);
            for (Backend b : candidates()) {
                List<float[]> got = elementwise(b, x, y, norm, table, batch, rope, headDim);
                for (int i = 0; i < ref.size(); i++) {
                    double e = relRms(got.get(i), ref.get(i));
                    assertTrue(e < 2e-6, label(b) + " op " + i + " (rmsnorm, rope q, rope k, swiglu, add, gather, embed): " + e);
                }
                b.close();
            }
        }
    }

    static List<float[]> elementwise(Backend b, float[] x, float[] y, Tensor norm, Tensor table, Batch batch, Rope rope, int headDim) {
        int n = batch.size();
        int dim = x.length / n;
        try (b) {
            List<float[]> out = new ArrayList<>();
            Buf xb = b.allocate("x", n, dim);
            Buf yb = b.allocate("y", n, dim);
            Buf o = b.allocate("o", n, dim);
            fill(b, xb, n, x);
            fill(b, yb, n, y);
            b.ops().rmsnorm(xb, b.weight(norm), 1e-5f, n, o);
            out.add(read(b, o, n));
            Buf q = b.allocate("q", n, dim);
            Buf k = b.allocate("k", n, dim / 2);
            fill(b, q, n, x);
            fill(b, k, n, Arrays.copyOf(y, n * dim / 2));
            b.ops().rope(q, k, headDim, batch, rope);
            out.add(read(b, q, n));
            out.add(read(b, k, n));
            fill(b, q, n, x);
            b.ops().swiglu(q, yb, n);
            out.add(read(b, q, n));
            fill(b, q, n, x);
            b.ops().add(q, yb, n);
            out.add(read(b, q, n));
            Buf g = b.allocate("g", n, dim);
            b.ops().gather(xb, batch.logitRows(), batch.logitCount(), g);
            out.add(Arrays.copyOf(read(b, g, n), batch.logitCount() * dim));
            Buf e = b.allocate("e", n, 256);
            b.ops().embed(b.weight(table), batch, e);
            out.add(read(b, e, n));
            return out;
        }
    }

    static float[] read(Backend b, Buf buf, int n) {
        float[] a = new float[n * buf.cols()];
        b.download(buf, n, a);
        return a;
    }

    @Test
    void pagedAttentionOverInterleavedSequencesMatchesRef() {
        for (KvCache.Type kvType : KvCache.Type.values()) {
            int heads = 8;
            int kvHeads = 2;
            int headDim = 32;
            int kvDim = kvHeads * headDim;
            // three sequences of different lengths, entries interleaved, pages shuffled by allocation order
            int[] lens = {70, 5, 33};
            List<float[]> ref = attention(new RefBackend(), kvType, lens, heads, kvHeads, headDim, kvDim, 11);
            for (Backend b : candidates()) {
                List<float[]> got = attention(b, kvType, lens, heads, kvHeads, headDim, kvDim, 11);
                for (int step = 0; step < ref.size(); step++) {
                    double e = relRms(got.get(step), ref.get(step));
                    assertTrue(e < 1e-5, label(b) + " " + kvType + " attention step " + step + ": " + e);
                }
                b.close();
            }
        }
    }

    static List<float[]> attention(Backend b, KvCache.Type kvType, int[] lens, int heads, int kvHeads, int headDim, int kvDim, long seed) {
        Random r = new Random(seed);
        List<float[]> outs = new ArrayList<>();
        try (b; KvCache cache = b.kvCache(new KvCache.Config(1, kvDim, kvType, 16, 16, 4, 128))) {
            int[] seqs = new int[lens.length];
            for (int s = 0; s < lens.length; s++) {
                seqs[s] = cache.newSequence();
            }
            int[] pos = new int[lens.length];
            int maxLen = 0;
            for (int l : lens) {
                maxLen = Math.max(maxLen, l);
            }
            int cap = 12;
            Buf q = b.allocate("q", cap, heads * headDim);
            Buf k = b.allocate("k", cap, kvDim);
            Buf v = b.allocate("v", cap, kvDim);
            Buf o = b.allocate("o", cap, heads * headDim);
            Batch batch = new Batch(cap);
            while (true) {
                batch.clear();
                // each step: up to 4 tokens of each unfinished sequence
                for (int s = 0; s < lens.length; s++) {
                    for (int t = 0; t < 4 && pos[s] < lens[s]; t++) {
                        cache.reserve(seqs[s], pos[s] + 1);
                        batch.add(0, pos[s]++, seqs[s], false);
                    }
                }
                int n = batch.size();
                if (n == 0) {
                    break;
                }
                fill(b, q, n, gauss(r, n * heads * headDim));
                fill(b, k, n, gauss(r, n * kvDim));
                fill(b, v, n, gauss(r, n * kvDim));
                b.ops().storeKv(cache, 0, k, v, batch);
                b.ops().attention(q, cache, 0, heads, kvHeads, headDim, batch, o);
                outs.add(read(b, o, n));
            }
            return outs;
        }
    }

    static float[] gauss(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    @Test
    void nativeKernelsAreBuiltWhereACompilerIs() {
        CpuBackend b = new CpuBackend(1, true);
        try {
            Assumptions.assumeTrue(System.getProperty("cria.native.dir") != null, "skipped: no native library directory configured");
            assertTrue(b.usesNativeKernels(), "the build makes target/native/libcria.so; the CPU backend should load it: " + b.describe());
        } finally {
            b.close();
        }
    }
}
