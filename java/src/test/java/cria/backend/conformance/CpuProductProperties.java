// Conformance bodies for what the CPU backend's matrix products promise beyond agreeing with ref: bits independent of batch and panel.
package cria.backend.conformance;

import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.Backend;
import cria.backend.Buf;
import cria.backend.Weight;
import cria.backend.cpu.CpuBackend;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.util.Arrays;

/** Run on the CPU targets only (the CUDA kernels choose other kernels for other batch sizes and do not promise these). */
final class CpuProductProperties {
    private CpuProductProperties() {}

    /**
     * A token's result never depends on the rest of its batch (what keeps batched generation's text
     * equal to generating alone): each row of a 9-input product equals that input run alone, bit
     * for bit (the one-input path is a separate kernel). 85 rows = 64 + 16 + 5: every panel grouping
     * of the float path. Checked once the JIT has compiled both paths: the Java path's last bits
     * change while they compile (Simd's reduceLanes(ADD) on floats has an unspecified order, which
     * the interpreted and the compiled code need not share), so comparing a compiled path with a
     * cold one can differ in the last bit ({@code -Dcria.test.warmup=0} shows it); the old suite
     * met this check only when earlier tests had warmed the JIT, and failed run alone.
     */
    static void batchInvariant(Pairs p, GgmlType t) {
        int cols = 512;
        int n = 9;
        Tensor w = p.matrix("w." + t, t, 85, cols);
        Tensor w2 = p.matrix("w2." + t, t, 12, cols);
        float[] x = p.gaussian(n * cols, 1);
        for (int warm = 0; warm < WARM_UP; warm++) {
            run(p, w, w2, x, n);
            run(p, w, w2, Arrays.copyOf(x, cols), 1);
        }
        float[][] all = run(p, w, w2, x, n);
        for (int i = 0; i < n; i++) {
            float[][] one = run(p, w, w2, Arrays.copyOfRange(x, i * cols, (i + 1) * cols), 1);
            for (int j = 0; j < 2; j++) {
                int rows = one[j].length;
                assertTrue(Arrays.equals(Arrays.copyOfRange(all[j], i * rows, (i + 1) * rows), one[j]),
                        p.target + " " + t + ": input " + i + " of " + n + " differs from the same input alone (output " + j + ")");
            }
        }
    }

    /**
     * Full panels of 16 rows and a ragged last panel take different unpacking paths in the native
     * kernels (direct builders for the common types, the generic unpacker otherwise); both must give
     * the same bits. The first 15 rows of a 32-row weight, run alone, are all ragged. 32-value
     * block types get 576-value rows, so each row also ends in a short chunk (2 x 256 + 64).
     */
    static void panelInvariant(Pairs p, GgmlType t) {
        int cols = t.blockSize() == 32 ? 576 : 768;
        Tensor w = p.matrix("w." + t, t, 32, cols);
        Tensor head = new Tensor("head." + t, t, new long[] {cols, 15}, w.data().asSlice(0, t.rowBytes(cols) * 15));
        for (int n : new int[] {1, 3}) {
            float[][] full = run(p, w, head, p.gaussian(n * cols, 1), n);
            for (int i = 0; i < n; i++) {
                float[] a = Arrays.copyOfRange(full[0], i * 32, i * 32 + 15);
                float[] b = Arrays.copyOfRange(full[1], i * 15, i * 15 + 15);
                assertTrue(Arrays.equals(a, b), p.target + " " + t + " n=" + n + " input " + i
                        + ": rows 0..14 differ between a full panel and a ragged one");
            }
        }
    }

    /**
     * Read-only weights (a model file's mapped tensors) are packed into the kernels' panel layout on
     * first use, where the build can (AVX-512 VNNI), and products read the packed copy: decode's fused
     * paths for a few inputs, the built panel for more. Each gives the same bits as the weight's own
     * rows, for every number of inputs around the fused paths' limits; 85 rows end in a ragged panel
     * (read from the rows), and 32-value block types get 576-value rows (a short last chunk).
     */
    static void packedInvariant(Pairs p, GgmlType t) {
        int cols = t.blockSize() == 32 ? 576 : 768;
        Tensor w = p.matrix("w." + t, t, 85, cols);
        Tensor w2 = p.matrix("w2." + t, t, 48, cols);
        Tensor rw = new Tensor("rw." + t, t, new long[] {cols, 85}, w.data().asReadOnly());
        Tensor rw2 = new Tensor("rw2." + t, t, new long[] {cols, 48}, w2.data().asReadOnly());
        CpuBackend cpu = (CpuBackend) p.backend;
        long before = cpu.packedBytes();
        for (int n : new int[] {1, 2, 3, 4, 5, 9}) {
            float[] x = p.gaussian(n * cols, 1);
            float[][] rows = run(p, w, w2, x, n);
            float[][] packed = run(p, rw, rw2, x, n);
            for (int j = 0; j < 2; j++) {
                assertTrue(Arrays.equals(rows[j], packed[j]), p.target + " " + t + " n=" + n + ": the packed weight gives other bits"
                        + " (output " + j + ")");
            }
        }
        if (t.isQuantized() && cpu.describe().contains("VNNI")) {
            assertTrue(cpu.packedBytes() > before, p.target + " " + t + ": a read-only weight was not packed");
        }
    }

    /**
     * Rows whose length is not a multiple of 256 (SmolLM's 576 and 960, say) still run natively for
     * the 32-value block types: the last chunk of each row is short (ProductChecks.matmul checks
     * them against ref); K-quants need whole super-blocks and say so. The last of five inputs gives
     * the same bits alone.
     */
    static void shortLastChunk(Pairs p, GgmlType t) {
        int cols = 576;
        int n = 5;
        CpuBackend cpu = (CpuBackend) p.backend;
        if (cpu.usesNativeKernels()) {
            assertTrue(cpu.runsNatively(t, cols), p.target + ": " + t + " with 576-value rows should run natively");
        }
        assertTrue(!cpu.runsNatively(GgmlType.Q4_K, cols), p.target + ": Q4_K needs whole 256-value super-blocks");
        Tensor w = p.matrix("w." + t, t, 37, cols);
        Tensor w2 = p.matrix("w2." + t, t, 16, cols);
        float[] x = p.gaussian(n * cols, 1);
        float[][] all = run(p, w, w2, x, n);
        float[][] last = run(p, w, w2, Arrays.copyOfRange(x, (n - 1) * cols, n * cols), 1);
        assertTrue(Arrays.equals(Arrays.copyOfRange(all[0], (n - 1) * 37, n * 37), last[0]),
                p.target + " " + t + ": the last input alone differs from the batch");
    }

    /**
     * Rows the native kernels do not take (96 values: not whole pairs of 32-value blocks) are handed
     * to the Java ops on the native path, which keep float activations: float rounding against ref.
     */
    static void handOver(Pairs p, GgmlType t) {
        int cols = 96;
        CpuBackend cpu = (CpuBackend) p.backend;
        assertTrue(!cpu.runsNatively(t, cols), p.target + ": " + t + " with 96-value rows should not run natively");
        Pairs.W w = p.weight(p.matrix("w." + t, t, 37, cols));
        for (int n : new int[] {1, 4}) {
            Pairs.Pair x = p.pair("x", n, cols, p.gaussian(n * cols, 1));
            Pairs.Pair out = p.pair("out", n, 37, null);
            p.ops().matmul(x.t(), n, new Weight[] {w.t()}, new Buf[] {out.t()});
            p.ref.ops().matmul(x.r(), n, new Weight[] {w.r()}, new Buf[] {out.r()});
            p.same("matmul " + t + " with 96-value rows (handed to the Java ops), n " + n, out, n,
                    Tolerances.matmul(t, Target.Kind.CPU_JAVA));
        }
    }

    /** The types {@link #handOver} checks. */
    static final GgmlType[] HAND_OVER_TYPES = {GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.IQ4_NL};

    /** Products of each kind run before a bit-equality check (see {@link #batchInvariant}). */
    static final int WARM_UP = Integer.getInteger("cria.test.warmup", 200);

    /** The 32-value block types that run natively at any multiple of 32 values. */
    static final GgmlType[] SHORT_CHUNK_TYPES = {GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
        GgmlType.IQ4_NL};

    /** Two weights sharing one input on the target, as the forward pass calls them. */
    private static float[][] run(Pairs p, Tensor w, Tensor w2, float[] x, int n) {
        Backend b = p.backend;
        int cols = x.length / n;
        Buf xb = b.allocate("x", n, cols);
        p.dev.put(xb, x);
        Buf o1 = b.allocate("o1", n, (int) w.rows());
        Buf o2 = b.allocate("o2", n, (int) w2.rows());
        p.dev.poison(o1);
        p.dev.poison(o2);
        b.ops().matmul(xb, n, new Weight[] {b.weight(w), b.weight(w2)}, new Buf[] {o1, o2});
        float[][] out = {p.down(o1, n), p.down(o2, n)};
        for (float[] o : out) {
            for (int i = 0; i < o.length; i++) {  // bit equality alone would pass two unwritten (NaN) outputs
                assertTrue(Float.isFinite(o[i]), p.target + ": matmul left a non-finite value at " + i);
            }
        }
        return out;
    }
}
