// Conformance bodies for the ops without a weight matrix: rmsnorm (in place, per head too), rope (every variant), swiglu, geglu, scale, softcap, add, bias, gather.
package cria.backend.conformance;

import cria.backend.Batch;
import cria.backend.Rope;
import cria.backend.conformance.Pairs.Pair;
import cria.backend.conformance.Pairs.W;
import cria.backend.conformance.Tolerances.Check;
import cria.gguf.GgmlType;

/** Each method is one case's body: the op on the target and on ref with the same inputs, outputs compared. */
final class ElementwiseChecks {
    private ElementwiseChecks() {}

    /** rmsnorm with F32, F16 and BF16 norm weights at 64, 172 and 2048 values, into another buffer and in place. */
    static void rmsnorm(Pairs p) {
        for (GgmlType t : new GgmlType[] {GgmlType.F32, GgmlType.F16, GgmlType.BF16}) {
            for (int cols : new int[] {64, 172, 2048}) {
                int n = 3;
                W g = p.weight(p.matrix("norm." + t, t, 1, cols));
                Pair x = p.pair("x", n, cols, p.gaussian(n * cols, 3));
                Pair out = p.pair("out", n, cols, null);
                p.ops().rmsnorm(x.t(), g.t(), 1e-5f, n, out.t());
                p.ref.ops().rmsnorm(x.r(), g.r(), 1e-5f, n, out.r());
                p.same("rmsnorm " + t + " cols " + cols, out, n, Check.RMSNORM);
                p.ops().rmsnorm(x.t(), g.t(), 1e-5f, n, x.t());  // out == x
                p.ref.ops().rmsnorm(x.r(), g.r(), 1e-5f, n, x.r());
                p.same("rmsnorm in place " + t + " cols " + cols, x, n, Check.RMSNORM);
            }
        }
    }

    /**
     * addBias (qwen2's q, k, v biases) over 3 rows of 173 values and 5 of 896; rmsnormHeads (qwen3's
     * q/k norms) with F32, F16 and BF16 weights over 3 rows of 2, 7 and 16 heads of 16, 64 and 128
     * values (16 heads x 128: Qwen3-0.6B's q). Rows beyond n must stay as they were.
     */
    static void biasAndHeadNorm(Pairs p) {
        for (int[] shape : new int[][] {{3, 173}, {5, 896}}) {
            int n = shape[0];
            int cols = shape[1];
            W b = p.weight(p.matrix("bias." + cols, GgmlType.F32, 1, cols));
            Pair x = p.pair("x", n + 1, cols, p.gaussian((n + 1) * cols, 2));
            p.ops().addBias(x.t(), b.t(), n);
            p.ref.ops().addBias(x.r(), b.r(), n);
            p.same("addBias (" + n + " x " + cols + ")", x, n + 1, Check.ELEMENTWISE);
        }
        int n = 3;
        for (GgmlType t : new GgmlType[] {GgmlType.F32, GgmlType.F16, GgmlType.BF16}) {
            for (int[] shape : new int[][] {{2, 16}, {7, 64}, {16, 128}}) {
                int heads = shape[0];
                int headDim = shape[1];
                int cols = heads * headDim;
                W g = p.weight(p.matrix("qnorm." + t + "." + headDim, t, 1, headDim));
                Pair x = p.pair("x", n + 1, cols, p.gaussian((n + 1) * cols, 3));
                p.ops().rmsnormHeads(x.t(), g.t(), 1e-6f, headDim, n);
                p.ref.ops().rmsnormHeads(x.r(), g.r(), 1e-6f, headDim, n);
                p.same("rmsnormHeads " + t + ", " + heads + " heads x " + headDim, x, n + 1, Check.RMSNORM);
            }
        }
    }

    /**
     * rope on q (4 heads) and k (2 heads), five entries of two sequences: 64-value heads with llama
     * and NeoX pairs, all or half the head rotated, plain and scaled with llama3 factors, at random
     * positions up to 9000; 16-value heads with 8 or 16 values rotated (one scaled by 0.25, one with
     * factors) at positions 1, 101, ...
     */
    static void rope(Pairs p) {
        int qHeads = 4;
        int kHeads = 2;
        int n = 5;
        for (boolean neox : new boolean[] {false, true}) {
            for (int dims : new int[] {64, 32}) {
                float[] factors = new float[dims / 2];
                for (int i = 0; i < factors.length; i++) {
                    factors[i] = 1 + 7 * p.random.nextFloat();
                }
                Batch batch = new Batch(n);
                for (int i = 0; i < n; i++) {
                    batch.add(0, i == 0 ? 0 : p.random.nextInt(9000), i % 2, false);
                }
                for (Rope rope : new Rope[] {new Rope(dims, 10000f, 1f, null, neox), new Rope(dims, 500000f, 0.25f, factors, neox)}) {
                    rope(p, rope, 64, qHeads, kHeads, batch);
                }
            }
        }
        Batch batch = new Batch(n);
        for (int i = 0; i < n; i++) {
            batch.add(7 * i + 3, 100 * i + 1, 0, i % 2 == 0);
        }
        for (Rope rope : new Rope[] {new Rope(8, 10000f, 1f, null, false), new Rope(16, 500000f, 0.25f, null, true),
            new Rope(8, 10000f, 1f, new float[] {1f, 1.5f, 2f, 8f}, false)}) {
            rope(p, rope, 16, qHeads, kHeads, batch);
        }
    }

    private static void rope(Pairs p, Rope rope, int headDim, int qHeads, int kHeads, Batch batch) {
        int n = batch.size();
        Pair q = p.pair("q", n, qHeads * headDim, p.gaussian(n * qHeads * headDim, 1));
        Pair k = p.pair("k", n, kHeads * headDim, p.gaussian(n * kHeads * headDim, 1));
        p.ops().rope(q.t(), k.t(), headDim, batch, rope);
        p.ref.ops().rope(q.r(), k.r(), headDim, batch, rope);
        String what = "rope head " + headDim + " neox=" + rope.neox() + " dims " + rope.dims() + " scale " + rope.freqScale()
                + " factors=" + (rope.factors() != null);
        p.same(what + ": q", q, n, Check.ROPE);
        p.same(what + ": k", k, n, Check.ROPE);
    }

    /**
     * swiglu then add, then gather of some rows (one twice): 3 rows of 173 values (a scalar tail
     * after the 16-byte groups) and 5 rows of 64.
     */
    static void swigluAddGather(Pairs p) {
        swigluAddGather(p, 3, 173, new int[] {2, 0, 2});
        swigluAddGather(p, 5, 64, new int[] {0, 2, 4});
    }

    private static void swigluAddGather(Pairs p, int n, int cols, int[] rows) {
        String shape = " (" + n + " x " + cols + ")";
        Pair a = p.pair("a", n, cols, p.gaussian(n * cols, 4));
        Pair b = p.pair("b", n, cols, p.gaussian(n * cols, 1));
        p.ops().swiglu(a.t(), b.t(), n);
        p.ref.ops().swiglu(a.r(), b.r(), n);
        p.same("swiglu" + shape, a, n, Check.ELEMENTWISE);
        p.ops().add(a.t(), b.t(), n);
        p.ref.ops().add(a.r(), b.r(), n);
        p.same("add" + shape, a, n, Check.ELEMENTWISE);
        p.put(a, p.gaussian(n * cols, 1));  // identical sources: gather must copy exactly
        Pair out = p.pair("out", rows.length, cols, null);
        p.ops().gather(a.t(), rows, rows.length, out.t());
        p.ref.ops().gather(a.r(), rows, rows.length, out.r());
        p.same("gather" + shape, out, rows.length, Check.GATHER);
    }

    /**
     * Gemma's element-wise ops over 3 rows of 173 values (a scalar tail after the 16-byte groups)
     * and 5 rows of 64, one row more in each buffer that must stay as it was: geglu (gates of spread
     * 4, so both of GELU's tails and the saturated tanh show), scale by sqrt(1152), softcap at 30 of
     * values of spread 40 (some far into the cap) and at 50.
     */
    static void gegluScaleSoftcap(Pairs p) {
        for (int[] shape : new int[][] {{3, 173}, {5, 64}}) {
            int n = shape[0];
            int cols = shape[1];
            String at = " (" + n + " x " + cols + ")";
            Pair a = p.pair("a", n + 1, cols, p.gaussian((n + 1) * cols, 4));
            Pair b = p.pair("b", n + 1, cols, p.gaussian((n + 1) * cols, 1));
            p.ops().geglu(a.t(), b.t(), n);
            p.ref.ops().geglu(a.r(), b.r(), n);
            p.same("geglu" + at, a, n + 1, Check.ELEMENTWISE);
            p.ops().scale(b.t(), (float) Math.sqrt(1152), n);
            p.ref.ops().scale(b.r(), (float) Math.sqrt(1152), n);
            p.same("scale" + at, b, n + 1, Check.ELEMENTWISE);
            Pair x = p.pair("x", n + 1, cols, p.gaussian((n + 1) * cols, 40));
            p.ops().softcap(x.t(), 30f, n);
            p.ref.ops().softcap(x.r(), 30f, n);
            p.same("softcap 30" + at, x, n + 1, Check.ELEMENTWISE);
            p.ops().softcap(x.t(), 50f, n);
            p.ref.ops().softcap(x.r(), 50f, n);
            p.same("softcap 50" + at, x, n + 1, Check.ELEMENTWISE);
        }
    }
}
