// Conformance bodies for the ops that read weights of every type: matmul (one weight or several on one input) and embed.
package cria.backend.conformance;

import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.Weight;
import cria.backend.conformance.Pairs.Pair;
import cria.backend.conformance.Pairs.W;
import cria.backend.conformance.Tolerances.Check;
import cria.gguf.GgmlType;
import java.util.ArrayList;
import java.util.List;

/** Each method is one case's body: the op on the target and on ref with the same inputs, outputs compared. */
final class ProductChecks {
    private ProductChecks() {}

    /**
     * Column counts exercising full chunks, K-quant super-blocks and (float types) partial chunks:
     * 172 is stories260K's ffn (not a multiple of 32), 100 not even of 8.
     */
    static int[] colsFor(GgmlType t) {
        if (t.blockSize() == 256) {
            return new int[] {256, 768};
        }
        if (t.blockSize() == 32) {
            return new int[] {32, 160};
        }
        return new int[] {64, 172, 100};
    }

    /**
     * matmul with weights of type {@code t}: 37 rows (not a multiple of 4 rows per block) at each
     * of {@link #colsFor}, 1 and 9 inputs (9 span two blocks of 8; their rows padded by 4 values);
     * two weights (37 and 12 rows, quantized from gaussian values) sharing a 512-value input with an
     * outlier, as q/k/v and gate/up share theirs, at 1, 3 and 9 inputs; and for 32-value block types 576-value rows (SmolLM's
     * width: each row ends in a short chunk after 2 x 256).
     */
    static void matmul(Pairs p, GgmlType t) {
        double tol = Tolerances.matmul(t, p.target.kind());
        for (int cols : colsFor(t)) {
            int rows = 37;
            W w = p.weight(p.matrix("w." + t, t, rows, cols));
            for (int n : new int[] {1, 9}) {
                int stride = cols + (n == 9 ? 4 : 0);
                Pair x = p.pair("x", n, stride, p.gaussian(n * stride, 1));
                Pair out = p.pair("out", n, rows, null);
                p.ops().matmul(x.t(), n, new Weight[] {w.t()}, new Buf[] {out.t()});
                p.ref.ops().matmul(x.r(), n, new Weight[] {w.r()}, new Buf[] {out.r()});
                p.same("matmul " + t + " rows " + rows + " cols " + cols + " n " + n + " input stride " + stride, out, n, tol);
            }
        }
        sharedInput(p, t, 512, 12, new int[] {1, 3, 9}, tol);
        if (t.blockSize() == 32) {
            sharedInput(p, t, 576, 16, new int[] {5}, tol);
        }
    }

    /**
     * Two weights (37 and {@code rows2} rows) on one input of {@code cols} values holding an outlier.
     * The weights are quantized from gaussian values, as a real model's are: with an outlier in the
     * input, weights of random bytes (whose per-block offsets cancel in the sum) push the native
     * path's 8-bit activations past its 2.5e-2 now and then (5 in 8624 products measured).
     */
    private static void sharedInput(Pairs p, GgmlType t, int cols, int rows2, int[] ns, double tol) {
        W a = p.weight(p.quantized("a." + t, t, 37, cols));
        W b = p.weight(p.quantized("b." + t, t, rows2, cols));
        for (int n : ns) {
            float[] xv = p.gaussian(n * cols, 1);
            xv[3] = 40f;  // an outlier, as real activations have
            Pair x = p.pair("x", n, cols, xv);
            Pair oa = p.pair("oa", n, 37, null);
            Pair ob = p.pair("ob", n, rows2, null);
            p.ops().matmul(x.t(), n, new Weight[] {a.t(), b.t()}, new Buf[] {oa.t(), ob.t()});
            p.ref.ops().matmul(x.r(), n, new Weight[] {a.r(), b.r()}, new Buf[] {oa.r(), ob.r()});
            String what = "matmul " + t + " two weights on one input, cols " + cols + " n " + n;
            p.same(what + ": output 0", oa, n, tol);
            p.same(what + ": output 1", ob, n, tol);
        }
    }

    /** Three weights of different types (Q4_K, Q6_K, Q8_0) on one input, as a q/k/v triple of a mixed-type model. */
    static void mixedTypesOneInput(Pairs p) {
        int cols = 512;
        GgmlType[] types = {GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0};
        int[] rows = {64, 16, 16};
        int n = 3;
        Pair x = p.pair("x", n, cols, p.gaussian(n * cols, 1));
        List<W> ws = new ArrayList<>();
        List<Pair> outs = new ArrayList<>();
        for (int j = 0; j < 3; j++) {
            ws.add(p.weight(p.matrix("w" + j, types[j], rows[j], cols)));
            outs.add(p.pair("o" + j, n, rows[j], null));
        }
        p.ops().matmul(x.t(), n, ws.stream().map(W::t).toArray(Weight[]::new), outs.stream().map(Pair::t).toArray(Buf[]::new));
        p.ref.ops().matmul(x.r(), n, ws.stream().map(W::r).toArray(Weight[]::new), outs.stream().map(Pair::r).toArray(Buf[]::new));
        for (int j = 0; j < 3; j++) {
            p.same("matmul q/k/v-like triple: the " + types[j] + " output", outs.get(j), n, Tolerances.matmul(types[j], p.target.kind()));
        }
    }

    /** embed from a table of type {@code t} at each of {@link #colsFor}: six tokens, one of them repeated. */
    static void embed(Pairs p, GgmlType t) {
        for (int cols : colsFor(t)) {
            int vocab = 50;
            W table = p.weight(p.matrix("emb." + t, t, vocab, cols));
            Batch batch = new Batch(6);
            for (int i = 0; i < 6; i++) {
                batch.add(i == 3 ? batch.token(1) : p.random.nextInt(vocab), i, 0, false);
            }
            Pair x = p.pair("x", 6, cols, null);
            p.ops().embed(table.t(), batch, x.t());
            p.ref.ops().embed(table.r(), batch, x.r());
            p.same("embed " + t + " cols " + cols, x, 6, Check.EMBED);
        }
    }
}
