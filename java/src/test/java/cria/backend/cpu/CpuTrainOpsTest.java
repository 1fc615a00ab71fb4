// CpuTrainOps against the float64 oracle (RefTrainOps): every op on the native and the Java path, 1 and 2 threads, odd shapes; determinism.
package cria.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.Buf;
import cria.backend.Rope;
import cria.backend.ref.RefTrainOps;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Each op of {@link CpuTrainOps} is run beside {@link RefTrainOps} on the same float inputs, and
 * every output element must agree within float32 rounding: {@code 1e-4 · |ref| + 2e-6 · sqrt(K) ·
 * max|ref|} for a sum of K terms. Shapes are chosen off every kernel tile (rows, columns and
 * windows that are not multiples of 8, 12, 16 or 32; grouped-query heads; dropout on).
 */
class CpuTrainOpsTest {

    static Stream<Arguments> paths() {
        return Stream.of(Arguments.of(true, 1), Arguments.of(true, 2), Arguments.of(false, 1), Arguments.of(false, 2));
    }

    /** A buffer in both implementations. */
    record P(Buf c, Buf r) {}

    /** The two implementations side by side, with random inputs written to both. */
    static final class Both implements AutoCloseable {
        final CpuBackend backend;
        final CpuTrainOps c;
        final RefTrainOps r = new RefTrainOps();
        final Random rnd = new Random(7);

        Both(boolean nat, int threads) {
            backend = new CpuBackend(threads, nat);
            Assumptions.assumeTrue(backend.usesNativeKernels() == nat, "skipped: the native kernels are not built here");
            c = backend.trainOps();
            assertEquals(nat, c.usesNativeKernels());
        }

        P rand(String name, int rows, int cols, double amp) {
            float[] v = new float[rows * cols];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) ((rnd.nextDouble() * 2 - 1) * amp);
            }
            P p = new P(c.allocate(name, rows, cols), r.allocate(name, rows, cols));
            c.write(p.c, v);
            r.write(p.r, v);
            return p;
        }

        P zeros(String name, int rows, int cols) {
            return new P(c.allocate(name, rows, cols), r.allocate(name, rows, cols));
        }

        /** The first {@code rows} rows of p agree, for sums of k terms. */
        void expect(String what, P p, int rows, int k) {
            expect(what, p, rows, k, 1e-30);
        }

        /** The same with an absolute floor on the tolerance (for outputs that are 0 in exact arithmetic). */
        void expect(String what, P p, int rows, int k, double floor) {
            int cols = p.c.cols();
            float[] got = new float[rows * cols];
            c.read(p.c, got);
            double[] want = RefTrainOps.values(p.r);
            double max = 0;
            for (int i = 0; i < got.length; i++) {
                max = Math.max(max, Math.abs(want[i]));
            }
            for (int i = 0; i < got.length; i++) {
                double tol = 1e-4 * Math.abs(want[i]) + 2e-6 * Math.sqrt(k) * max + floor;
                if (!(Math.abs(got[i] - want[i]) <= tol)) {
                    throw new AssertionError(what + ": element (" + i / cols + ", " + i % cols + ") is " + got[i] + ", expected "
                            + want[i] + " (tolerance " + tol + ", max " + max + ")");
                }
            }
        }

        @Override
        public void close() {
            c.close();
            r.close();
            backend.close();
        }
    }

    @ParameterizedTest(name = "native={0} threads={1}")
    @MethodSource("paths")
    void matrixProductsAndTheirBackward(boolean nat, int threads) {
        // odd sizes, small and past the kernels' row blocks
        int[][] shapes = {{39, 37, 53}, {1, 5, 3}, {300, 70, 75}, {97, 64, 32}, {64, 172, 64}};
        for (int[] s : shapes) {
            int n = s[0], in = s[1], out = s[2];
            try (Both b = new Both(nat, threads)) {
                P x = b.rand("x", n + 2, in, 1), w = b.rand("w", out, in, 0.5), y = b.zeros("y", n + 2, out);
                b.c.matmul(x.c, w.c, n, y.c);
                b.r.matmul(x.r, w.r, n, y.r);
                b.expect("matmul " + n + "x" + in + "x" + out, y, n, in);
                P g = b.rand("g", n, out, 1), dx = b.rand("dx", n, in, 1), dw = b.rand("dw", out, in, 1);
                b.c.matmulBackward(g.c, x.c, w.c, n, dx.c, false, dw.c);
                b.r.matmulBackward(g.r, x.r, w.r, n, dx.r, false, dw.r);
                b.expect("matmul dx", dx, n, out);
                b.expect("matmul dw", dw, out, n);
                b.c.matmulBackward(g.c, x.c, w.c, n, dx.c, true, null);
                b.r.matmulBackward(g.r, x.r, w.r, n, dx.r, true, null);
                b.expect("matmul dx +=", dx, n, out);
                b.c.matmulBackward(g.c, x.c, w.c, n, null, false, dw.c);
                b.r.matmulBackward(g.r, x.r, w.r, n, null, false, dw.r);
                b.expect("matmul dw +=", dw, out, 2 * n);
            }
        }
    }

    /** Several products of one input (q, k, v; gate, up) against the oracle, and bit for bit against one product at a time. */
    @ParameterizedTest(name = "native={0} threads={1}")
    @MethodSource("paths")
    void severalProductsOfOneInput(boolean nat, int threads) {
        int[][] shapes = {{97, 64, 64, 32, 32}, {300, 37, 53, 20, 7}, {39, 70, 172, 172}, {5, 9, 3}};
        for (int[] s : shapes) {
            int n = s[0], in = s[1], count = s.length - 2;
            try (Both b = new Both(nat, threads)) {
                P x = b.rand("x", n + 1, in, 1);
                P[] w = new P[count], y = new P[count], g = new P[count], dw = new P[count];
                for (int j = 0; j < count; j++) {
                    w[j] = b.rand("w" + j, s[2 + j], in, 0.5);
                    y[j] = b.zeros("y" + j, n + 1, s[2 + j]);
                    g[j] = b.rand("g" + j, n, s[2 + j], 1);
                    dw[j] = b.rand("dw" + j, s[2 + j], in, 1);
                }
                Buf[] wc = new Buf[count], wr = new Buf[count], yc = new Buf[count], yr = new Buf[count];
                Buf[] gc = new Buf[count], gr = new Buf[count], dwc = new Buf[count], dwr = new Buf[count];
                for (int j = 0; j < count; j++) {
                    wc[j] = w[j].c;
                    wr[j] = w[j].r;
                    yc[j] = y[j].c;
                    yr[j] = y[j].r;
                    gc[j] = g[j].c;
                    gr[j] = g[j].r;
                    dwc[j] = j == 1 ? null : dw[j].c; // the second weight frozen
                    dwr[j] = j == 1 ? null : dw[j].r;
                }
                String what = count + " products " + n + "x" + in;
                b.c.matmuls(x.c, wc, n, yc);
                b.r.matmuls(x.r, wr, n, yr);
                for (int j = 0; j < count; j++) {
                    b.expect(what + " out " + j, y[j], n, in);
                    float[] fused = new float[n * s[2 + j]], one = new float[n * s[2 + j]];
                    b.c.read(y[j].c, fused);
                    b.c.matmul(x.c, w[j].c, n, y[j].c);
                    b.c.read(y[j].c, one);
                    assertArrayEquals(one, fused, what + " out " + j + ": fused and single products differ");
                }
                P dx = b.rand("dx", n, in, 1);
                float[] dx0 = new float[n * in];
                b.c.read(dx.c, dx0);
                b.c.matmulsBackward(gc, x.c, wc, n, dx.c, true, dwc);
                b.r.matmulsBackward(gr, x.r, wr, n, dx.r, true, dwr);
                b.expect(what + " dx +=", dx, n, 2 * Arrays.stream(s, 2, s.length).sum());
                for (int j = 0; j < count; j++) {
                    if (j != 1) {
                        b.expect(what + " dw " + j, dw[j], s[2 + j], n);
                    }
                }
                // dx written, bit for bit as one product at a time
                float[] fused = new float[n * in], one = new float[n * in];
                b.c.matmulsBackward(gc, x.c, wc, n, dx.c, false, null);
                b.c.read(dx.c, fused);
                for (int j = 0; j < count; j++) {
                    b.c.matmulBackward(gc[j], x.c, wc[j], n, dx.c, j > 0, null);
                }
                b.c.read(dx.c, one);
                assertArrayEquals(one, fused, what + ": fused and single dx differ");
            }
        }
    }

    @ParameterizedTest(name = "native={0} threads={1}")
    @MethodSource("paths")
    void normsAndElementWise(boolean nat, int threads) {
        // small (one thread takes it) and past the ops' hand-off size, columns past a block of 128
        for (int[] shape : new int[][] {{41, 37}, {700, 150}}) {
            normsAndElementWise(nat, threads, shape[0], shape[1]);
        }
    }

    private static void normsAndElementWise(boolean nat, int threads, int n, int d) {
        try (Both b = new Both(nat, threads)) {
            P x = b.rand("x", n, d, 2), w = b.rand("w", 1, d, 1), out = b.zeros("out", n, d), rstd = b.zeros("rstd", n, 1);
            b.c.rmsnorm(x.c, w.c, 1e-5f, n, out.c, rstd.c);
            b.r.rmsnorm(x.r, w.r, 1e-5f, n, out.r, rstd.r);
            b.expect("rmsnorm", out, n, d);
            b.expect("rmsnorm rstd", rstd, n, d);
            P g = b.rand("g", n, d, 1), dx = b.rand("dx", n, d, 1), dw = b.rand("dw", 1, d, 1);
            b.c.rmsnormBackward(g.c, x.c, w.c, rstd.c, n, dx.c, dw.c);
            b.r.rmsnormBackward(g.r, x.r, w.r, rstd.r, n, dx.r, dw.r);
            b.expect("rmsnorm dx", dx, n, d);
            b.expect("rmsnorm dw", dw, 1, n);

            P gate = b.rand("gate", n, d, 4), up = b.rand("up", n, d, 1), o = b.zeros("o", n, d);
            b.c.swiglu(gate.c, up.c, n, o.c);
            b.r.swiglu(gate.r, up.r, n, o.r);
            b.expect("swiglu", o, n, 1);
            P dg = b.zeros("dg", n, d), du = b.zeros("du", n, d);
            b.c.swigluBackward(g.c, gate.c, up.c, n, dg.c, du.c);
            b.r.swigluBackward(g.r, gate.r, up.r, n, dg.r, du.r);
            b.expect("swiglu dgate", dg, n, 1);
            b.expect("swiglu dup", du, n, 1);

            b.c.add(x.c, g.c, n - 3);
            b.r.add(x.r, g.r, n - 3);
            b.expect("add", x, n, 1);
            b.c.dropout(x.c, n - 1, 0.3f, 99);
            b.r.dropout(x.r, n - 1, 0.3f, 99);
            b.expect("dropout", x, n, 1);
            P cp = b.zeros("copy", n, d);
            b.c.copy(x.c, n - 2, cp.c);
            b.r.copy(x.r, n - 2, cp.r);
            b.expect("copy", cp, n, 1);

            int[] tokens = new int[n];
            for (int i = 0; i < n; i++) {
                tokens[i] = b.rnd.nextInt(9); // repeats: embedBackward adds into the same rows
            }
            P table = b.rand("table", 9, d, 1), e = b.zeros("e", n, d);
            b.c.embed(table.c, tokens, n, e.c);
            b.r.embed(table.r, tokens, n, e.r);
            b.expect("embed", e, n, 1);
            b.c.embedBackward(g.c, tokens, n, table.c);
            b.r.embedBackward(g.r, tokens, n, table.r);
            b.expect("embedBackward", table, 9, n);
        }
    }

    @ParameterizedTest(name = "native={0} threads={1}")
    @MethodSource("paths")
    void perHeadNormsAndBiases(boolean nat, int threads) {
        // qwen3's per-head q/k norm (heads of 12 and of 128 values, few rows and past the hand-off size) and qwen2's biases
        for (int[] shape : new int[][] {{37, 3, 12}, {300, 4, 128}}) {
            int n = shape[0], heads = shape[1], hd = shape[2], d = heads * hd;
            try (Both b = new Both(nat, threads)) {
                P x = b.rand("x", n, d, 2), w = b.rand("w", 1, hd, 1), out = b.zeros("out", n, d), rstd = b.zeros("rstd", n * heads, 1);
                b.c.rmsnormHeads(x.c, w.c, 1e-6f, hd, n, out.c, rstd.c);
                b.r.rmsnormHeads(x.r, w.r, 1e-6f, hd, n, out.r, rstd.r);
                b.expect("rmsnormHeads", out, n, hd);
                b.expect("rmsnormHeads rstd", rstd, n * heads, hd);
                P g = b.rand("g", n, d, 1), dx = b.rand("dx", n, d, 1), dw = b.rand("dw", 1, hd, 1);
                b.c.rmsnormHeadsBackward(g.c, x.c, w.c, rstd.c, hd, n, dx.c, dw.c);
                b.r.rmsnormHeadsBackward(g.r, x.r, w.r, rstd.r, hd, n, dx.r, dw.r);
                b.expect("rmsnormHeads dx", dx, n, hd);
                b.expect("rmsnormHeads dw", dw, 1, n * heads);
                P bias = b.rand("bias", 1, d, 1);
                b.c.addBias(x.c, bias.c, n - 2);
                b.r.addBias(x.r, bias.r, n - 2);
                b.expect("addBias", x, n, 1);
            }
        }
    }

    @ParameterizedTest(name = "native={0} threads={1}")
    @MethodSource("paths")
    void ropeAndItsInverse(boolean nat, int threads) {
        // interleaved and neox pairs, all or part of the head rotated, few rows and past the hand-off size
        // (heads of 10 values; of 8 with the dims 8 and 4)
        for (Rope rope : new Rope[] {new Rope(10, 10000f, 1f, null, false), new Rope(6, 500f, 0.5f, null, true),
            new Rope(6, 10000f, 1f, null, false), new Rope(8, 10000f, 1f, null, false), new Rope(4, 10000f, 1f, null, false)}) {
            for (int n : new int[] {3 * 13 - 4, 700 * 13 - 5}) {
                try (Both b = new Both(nat, threads)) {
                    int heads = 3, hd = rope.dims() == 8 || rope.dims() == 4 ? 8 : 10;
                    P x = b.rand("x", n, heads * hd, 1);
                    b.c.rope(x.c, heads, hd, n, 13, rope, false);
                    b.r.rope(x.r, heads, hd, n, 13, rope, false);
                    b.expect("rope", x, n, 4);
                    b.c.rope(x.c, heads, hd, n, 13, rope, true);
                    b.r.rope(x.r, heads, hd, n, 13, rope, true);
                    b.expect("rope inverse", x, n, 4);
                }
            }
        }
    }

    @ParameterizedTest(name = "native={0} threads={1}")
    @MethodSource("paths")
    void attentionAndItsBackward(boolean nat, int threads) {
        // {seqs, len, heads, kvHeads, headDim}: grouped (3 per KV head), plain, headDim 8 and 48 as the benchmark shapes;
        // the native kernels' edges: windows of one row, of fewer rows than a tile, heads of 5, 24, 40 and 64 values
        int[][] shapes = {{3, 13, 6, 2, 10}, {2, 37, 2, 2, 16}, {2, 70, 8, 4, 8}, {1, 45, 2, 1, 48}, {3, 1, 4, 2, 8}, {2, 5, 2, 1, 5},
            {1, 33, 4, 2, 24}, {2, 19, 2, 2, 40}, {1, 26, 2, 1, 64}};
        for (int[] s : shapes) {
            for (float drop : new float[] {0f, 0.2f}) {
                try (Both b = new Both(nat, threads)) {
                    int seqs = s[0], len = s[1], heads = s[2], kvh = s[3], hd = s[4], n = seqs * len;
                    String what = "attention " + java.util.Arrays.toString(s) + " drop " + drop;
                    P q = b.rand("q", n, heads * hd, 1.5), k = b.rand("k", n, kvh * hd, 1.5), v = b.rand("v", n, kvh * hd, 1);
                    P out = b.zeros("out", n, heads * hd), lse = b.zeros("lse", n, heads);
                    b.c.attention(q.c, k.c, v.c, seqs, len, heads, kvh, hd, out.c, lse.c, drop, 1234);
                    b.r.attention(q.r, k.r, v.r, seqs, len, heads, kvh, hd, out.r, lse.r, drop, 1234);
                    b.expect(what + " out", out, n, len);
                    b.expect(what + " lse", lse, n, len);
                    P g = b.rand("g", n, heads * hd, 1);
                    P dq = b.rand("dq", n, heads * hd, 1), dk = b.rand("dk", n, kvh * hd, 1), dv = b.rand("dv", n, kvh * hd, 1);
                    b.c.attentionBackward(g.c, q.c, k.c, v.c, out.c, lse.c, seqs, len, heads, kvh, hd, drop, 1234, dq.c, dk.c, dv.c);
                    b.r.attentionBackward(g.r, q.r, k.r, v.r, out.r, lse.r, seqs, len, heads, kvh, hd, drop, 1234, dq.r, dk.r, dv.r);
                    // windows of one row: dq and dk are 0 exactly (p = 1, dS = D - D), in float a rounding apart
                    double floor = len == 1 ? 1e-6 : 1e-30;
                    b.expect(what + " dq", dq, n, len * hd, floor);
                    b.expect(what + " dk", dk, n, len * hd * heads, floor);
                    b.expect(what + " dv", dv, n, len * heads);
                }
            }
        }
    }

    @ParameterizedTest(name = "native={0} threads={1}")
    @MethodSource("paths")
    void crossEntropyWithItsGradient(boolean nat, int threads) {
        for (int[] s : new int[][] {{300, 37, 70}, {5, 64, 512}}) {
            try (Both b = new Both(nat, threads)) {
                int n = s[0], d = s[1], vocab = s[2];
                P x = b.rand("x", n, d, 1), w = b.rand("w", vocab, d, 1), dx = b.rand("dx", n, d, 1), dw = b.rand("dw", vocab, d, 0.1);
                int[] targets = new int[n];
                for (int i = 0; i < n; i++) {
                    targets[i] = i % 7 == 3 ? -1 : b.rnd.nextInt(vocab);
                }
                double lc = b.c.crossEntropy(x.c, w.c, targets, n, 0.01f, dx.c, dw.c);
                double lr = b.r.crossEntropy(x.r, w.r, targets, n, 0.01f, dx.r, dw.r);
                assertEquals(lr, lc, 1e-5 * Math.abs(lr) + 1e-4, "summed loss");
                b.expect("crossEntropy dx", dx, n, vocab);
                b.expect("crossEntropy dw", dw, vocab, n);
                assertEquals(lr, b.c.crossEntropy(x.c, w.c, targets, n, 0.01f, null, null), 1e-5 * Math.abs(lr) + 1e-4, "loss alone");
            }
        }
    }

    @ParameterizedTest(name = "native={0} threads={1}")
    @MethodSource("paths")
    void optimizer(boolean nat, int threads) {
        for (int[] shape : new int[][] {{37, 53}, {300, 70}}) {
            optimizer(nat, threads, shape[0], shape[1]);
        }
    }

    private static void optimizer(boolean nat, int threads, int rows, int cols) {
        try (Both b = new Both(nat, threads)) {
            P p = b.rand("p", rows, cols, 1), g = b.rand("g", rows, cols, 1), m = b.zeros("m", rows, cols), v = b.zeros("v", rows, cols);
            double sc = b.c.sumSquares(g.c), sr = b.r.sumSquares(g.r);
            assertEquals(sr, sc, 1e-6 * sr, "sumSquares");
            for (int step = 1; step <= 3; step++) {
                b.c.adamw(p.c, g.c, m.c, v.c, 0.5f, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
                b.r.adamw(p.r, g.r, m.r, v.r, 0.5f, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
            }
            b.expect("adamw p", p, rows, 1);
            b.expect("adamw m", m, rows, 1);
            b.expect("adamw v", v, rows, 1);
        }
    }

    /** Every op's outputs of one fixed sequence, run twice: bit-identical; 1 and 2 threads only rounding apart. */
    @ParameterizedTest(name = "native={0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {true, false})
    void deterministic(boolean nat) {
        float[] a1 = DeterminismRun.run(nat, 2);
        float[] a2 = DeterminismRun.run(nat, 2);
        assertArrayEquals(a1, a2, "two runs on 2 threads differ");
        float[] b1 = DeterminismRun.run(nat, 1);
        for (int i = 0; i < a1.length; i++) {
            assertTrue(Math.abs(a1[i] - b1[i]) <= 1e-4f * Math.abs(b1[i]) + 1e-5f, "1 vs 2 threads at " + i + ": " + b1[i] + " vs " + a1[i]);
        }
    }

    @Test
    void badSizesAreRefusedInOneLine() {
        try (CpuBackend be = new CpuBackend(2); CpuTrainOps t = be.trainOps()) {
            Buf x = t.allocate("x", 4, 8), w = t.allocate("w", 3, 7), out = t.allocate("out", 4, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.matmul(x, w, 4, out));
            assertTrue(e.getMessage().contains("x") && !e.getMessage().contains("\n"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> t.matmul(x, t.allocate("w2", 3, 8), 5, out));
            assertThrows(IllegalArgumentException.class, () -> t.embed(w, new int[] {0, 3}, 2, t.allocate("e", 2, 7)));
            assertThrows(IllegalArgumentException.class, () -> t.dropout(x, 4, 1f, 0));
            assertThrows(IllegalArgumentException.class,
                    () -> t.attention(x, x, x, 2, 2, 3, 2, 8, x, x, 0f, 0)); // 3 heads over 2 KV heads
        }
    }
}
