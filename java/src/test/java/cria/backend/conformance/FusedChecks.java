// Conformance body for the fused products (rmsnormMatmul, rmsnormGateUpSwiglu, matmulAdd) against the plain ops they stand for.
package cria.backend.conformance;

import static org.junit.jupiter.api.Assertions.fail;

import cria.backend.Backend;
import cria.backend.Buf;
import cria.backend.Ops;
import cria.backend.Weight;
import cria.backend.conformance.Tolerances.Check;
import cria.backend.cuda.Devices;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The three fused products as one layer calls them (q/k/v from the attention norm, gate/up with
 * SwiGLU from the ffn norm, the output product with its residual add, then the logits' in-place
 * norm and product), run with the fused ops on the target and with the plain ops on ref: every
 * buffer the plain ops write must hold the same afterwards, intermediate results included. The
 * target's fused ops must also leave what its own plain ops leave (Ops' contract), and ref's fused
 * ops (its default bodies) exactly what its plain ops leave.
 */
final class FusedChecks {
    private FusedChecks() {}

    /** Every buffer the sequence writes, in the order {@link #run} returns them. */
    static final String[] OUTPUTS = {"rmsnormMatmul: the normalized rows", "rmsnormMatmul: q", "rmsnormMatmul: k",
        "rmsnormMatmul: v", "rmsnormGateUpSwiglu: the normalized rows", "rmsnormGateUpSwiglu: silu(gate) * up",
        "rmsnormGateUpSwiglu: up", "matmulAdd: the product", "matmulAdd: the sum", "rmsnormMatmul in place: the normalized rows",
        "rmsnormMatmul in place: the product"};

    /** Outputs that are normalized rows (judged as rmsnorm); the others are products or built on them. */
    private static boolean normalized(int i) {
        return i == 0 || i == 4 || i == 9;
    }

    /**
     * Weights of type {@code t} at 512 values and at a width the one-row CUDA kernels take (norm
     * folded in for f32 norm weights, run first for bf16 ones; SwiGLU fused where the type has two
     * rows per warp); F32 and BF16 norm weights; one row (the fused kernels) and three (the plain).
     */
    static void fusedProducts(Pairs p, GgmlType t) {
        for (int dim : new int[] {512, Devices.gemvCols(t)}) {
            Tensor[] w = {p.matrix("q", t, 40, dim), p.matrix("k", t, 24, dim), p.matrix("v", t, 24, dim),
                p.matrix("gate", t, 48, dim), p.matrix("up", t, 48, dim), p.matrix("o", t, 37, dim)};
            for (GgmlType normType : new GgmlType[] {GgmlType.F32, GgmlType.BF16}) {
                Tensor norm = p.matrix("norm", normType, 1, dim);
                for (int n : new int[] {1, 3}) {
                    String what = t + " dim " + dim + " norm " + normType + " n " + n;
                    float[] x = p.gaussian(n * dim, 3);
                    float[] res = p.gaussian(n * 37, 1);
                    List<float[]> got = run(p.dev, true, norm, w, x, res, n);
                    List<float[]> want = run(Device.host(p.ref), false, norm, w, x, res, n);
                    List<float[]> plain = run(p.dev, false, norm, w, x, res, n);
                    List<float[]> refFused = run(Device.host(p.ref), true, norm, w, x, res, n);
                    double tol = Tolerances.matmul(t, p.target.kind());
                    double fusedTol = Tolerances.of(Check.FUSED_VS_PLAIN, p.target.kind());
                    int[] cols = {dim, 40, 24, 24, dim, 48, 48, 37, 37, dim, 37};
                    for (int i = 0; i < OUTPUTS.length; i++) {
                        double limit = normalized(i) ? Tolerances.of(Check.RMSNORM, p.target.kind())
                                : i == 5 ? Tolerances.swigluOfProducts(t, p.target.kind()) : tol;
                        p.judge(OUTPUTS[i] + ", " + what, got.get(i), want.get(i), cols[i], limit);
                        p.judge(OUTPUTS[i] + " against the target's plain ops, " + what, got.get(i), plain.get(i), cols[i], fusedTol);
                        if (!Arrays.equals(refFused.get(i), want.get(i))) {
                            fail("ref: " + OUTPUTS[i] + ", " + what + ": the fused op differs from the plain ops");
                        }
                    }
                }
            }
        }
    }

    /** The sequence with the fused ops, or (fused false) the plain ops they stand for, on fresh buffers (outputs NaN first). */
    static List<float[]> run(Device dev, boolean fused, Tensor normT, Tensor[] wt, float[] x, float[] res, int n) {
        Backend b = dev.backend();
        Ops ops = b.ops();
        int dim = x.length / n;
        Weight g = b.weight(normT);
        Weight[] w = new Weight[wt.length];
        for (int j = 0; j < w.length; j++) {
            w[j] = b.weight(wt[j]);
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
        Buf logits = b.allocate("logits", n, 37);
        for (Buf out : new Buf[] {nb, q, k, v, hb, hb2, o, logits}) {
            dev.poison(out);
        }
        dev.put(xb, x);
        dev.put(r, res);
        List<float[]> out = new ArrayList<>();
        Weight[] qkv = {w[0], w[1], w[2]};
        Buf[] qkvOut = {q, k, v};
        if (fused) {
            ops.rmsnormMatmul(xb, g, 1e-5f, n, nb, qkv, qkvOut);
        } else {
            ops.rmsnorm(xb, g, 1e-5f, n, nb);
            ops.matmul(nb, n, qkv, qkvOut);
        }
        out.addAll(List.of(Pairs.down(b, nb, n), Pairs.down(b, q, n), Pairs.down(b, k, n), Pairs.down(b, v, n)));
        dev.poison(nb);
        if (fused) {
            ops.rmsnormGateUpSwiglu(xb, g, 1e-5f, n, nb, w[3], w[4], hb, hb2);
        } else {
            ops.rmsnorm(xb, g, 1e-5f, n, nb);
            ops.matmul(nb, n, new Weight[] {w[3], w[4]}, new Buf[] {hb, hb2});
            ops.swiglu(hb, hb2, n);
        }
        out.addAll(List.of(Pairs.down(b, nb, n), Pairs.down(b, hb, n), Pairs.down(b, hb2, n)));
        if (fused) {
            ops.matmulAdd(nb, n, w[5], o, r);
        } else {
            ops.matmul(nb, n, new Weight[] {w[5]}, new Buf[] {o});
            ops.add(r, o, n);
        }
        out.addAll(List.of(Pairs.down(b, o, n), Pairs.down(b, r, n)));
        if (fused) {  // the logits' form: normalized in place, then one product (no folding)
            ops.rmsnormMatmul(xb, g, 1e-5f, n, xb, new Weight[] {w[5]}, new Buf[] {logits});
        } else {
            ops.rmsnorm(xb, g, 1e-5f, n, xb);
            ops.matmul(xb, n, new Weight[] {w[5]}, new Buf[] {logits});
        }
        out.addAll(List.of(Pairs.down(b, xb, n), Pairs.down(b, logits, n)));
        return out;
    }
}
