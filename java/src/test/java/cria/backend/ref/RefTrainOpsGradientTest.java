// Checks the training oracle: every backward op against central finite differences in float64, and the
// forward ops, AdamW and the loss against naive formulas written here independently.
package cria.backend.ref;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.Rope;
import cria.backend.TrainOps;
import java.util.Random;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class RefTrainOpsGradientTest {
    private static final long SEED = 0x5EED_0015L;
    private static final double H = 1e-6;           // central-difference step, in double
    private static final double REL_TOL = 1e-6;     // |analytic - numeric| ≤ REL_TOL · max(|a|, |n|) + ABS_TOL
    private static final double ABS_TOL = 1e-9;

    private final RefTrainOps ops = new RefTrainOps();
    private final Random rnd = new Random(SEED);

    // ---- backward ops against finite differences ------------------------------------------------

    @Test
    void embedBackwardIsTheGradientOfEmbed() {
        Buf table = random("table", 7, 3);
        int[] tokens = {2, 5, 2, 0};                 // token 2 twice: its gradient row adds up
        int n = tokens.length;
        Buf x = ops.allocate("x", n, 3);
        double[] r = randomArray(n * 3);
        DoubleSupplier loss = () -> {
            ops.embed(table, tokens, n, x);
            return dot(x, r);
        };
        Buf dTable = ops.allocate("dTable", 7, 3);
        ops.embedBackward(buf(r, n, 3), tokens, n, dTable);
        checkGradient("embed dTable", table, loss, RefTrainOps.values(dTable));
    }

    @Test
    void rmsnormBackwardIsTheGradientOfRmsnormAndAccumulates() {
        int n = 3;
        int dim = 5;
        Buf x = random("x", n, dim);
        Buf w = random("w", 1, dim);
        Buf out = ops.allocate("out", n, dim);
        Buf rstd = ops.allocate("rstd", n, 1);
        double[] r = randomArray(n * dim);
        DoubleSupplier loss = () -> {
            ops.rmsnorm(x, w, 1e-5f, n, out, rstd);
            return dot(out, r);
        };
        loss.getAsDouble();                          // rstd of the unperturbed x, for backward
        Buf dx = random("dx", n, dim);               // both accumulate: start from what is there
        Buf dw = random("dw", 1, dim);
        double[] dx0 = RefTrainOps.values(dx);
        double[] dw0 = RefTrainOps.values(dw);
        ops.rmsnormBackward(buf(r, n, dim), x, w, rstd, n, dx, dw);
        checkGradient("rmsnorm dx", x, loss, minus(RefTrainOps.values(dx), dx0));
        checkGradient("rmsnorm dw", w, loss, minus(RefTrainOps.values(dw), dw0));
    }

    @Test
    void rmsnormHeadsBackwardIsTheGradientOfRmsnormHeadsAndAccumulates() {
        int n = 3;
        int headDim = 4;
        int heads = 3;
        int cols = heads * headDim;
        Buf x = random("x", n, cols);
        Buf w = random("w", 1, headDim);
        Buf out = ops.allocate("out", n, cols);
        Buf rstd = ops.allocate("rstd", n * heads, 1);
        double[] r = randomArray(n * cols);
        DoubleSupplier loss = () -> {
            ops.rmsnormHeads(x, w, 1e-5f, headDim, n, out, rstd);
            return dot(out, r);
        };
        loss.getAsDouble();
        Buf dx = random("dx", n, cols);
        Buf dw = random("dw", 1, headDim);
        double[] dx0 = RefTrainOps.values(dx);
        double[] dw0 = RefTrainOps.values(dw);
        ops.rmsnormHeadsBackward(buf(r, n, cols), x, w, rstd, headDim, n, dx, dw);
        checkGradient("rmsnormHeads dx", x, loss, minus(RefTrainOps.values(dx), dx0));
        checkGradient("rmsnormHeads dw", w, loss, minus(RefTrainOps.values(dw), dw0));
    }

    @Test
    void rmsnormHeadsNormalizesEachHeadOnItsOwn() {
        // each head of a row against rmsnorm of that head alone, as its own [1, headDim] row
        int headDim = 5;
        int heads = 2;
        Buf x = random("x", 2, heads * headDim);
        Buf w = random("w", 1, headDim);
        Buf out = ops.allocate("out", 2, heads * headDim);
        Buf rstd = ops.allocate("rstd", 2 * heads, 1);
        ops.rmsnormHeads(x, w, 1e-5f, headDim, 2, out, rstd);
        double[] xv = RefTrainOps.values(x);
        double[] wv = RefTrainOps.values(w);
        double[] ov = RefTrainOps.values(out);
        for (int i = 0; i < 2 * heads; i++) {
            double ss = 0;
            for (int c = 0; c < headDim; c++) {
                ss += xv[i * headDim + c] * xv[i * headDim + c];
            }
            double rs = 1 / Math.sqrt(ss / headDim + 1e-5f);  // the float eps the op takes
            assertEquals(rs, RefTrainOps.values(rstd)[i], 1e-12, "rstd of head row " + i);
            for (int c = 0; c < headDim; c++) {
                assertEquals(xv[i * headDim + c] * rs * wv[c], ov[i * headDim + c], 1e-12, "head row " + i + " value " + c);
            }
        }
    }

    @Test
    void addBiasAddsTheRowToEveryRow() {
        Buf x = random("x", 3, 4);
        Buf b = random("b", 1, 4);
        double[] before = RefTrainOps.values(x);
        ops.addBias(x, b, 2);                        // the third row is left alone
        double[] after = RefTrainOps.values(x);
        double[] bv = RefTrainOps.values(b);
        for (int e = 0; e < 12; e++) {
            assertEquals(before[e] + (e < 8 ? bv[e % 4] : 0), after[e], 0, "element " + e);
        }
    }

    @Test
    void matmulBackwardIsTheGradientOfMatmul() {
        int n = 3;
        Buf x = random("x", n, 4);
        Buf w = random("w", 5, 4);
        Buf out = ops.allocate("out", n, 5);
        double[] r = randomArray(n * 5);
        DoubleSupplier loss = () -> {
            ops.matmul(x, w, n, out);
            return dot(out, r);
        };
        Buf dout = buf(r, n, 5);
        Buf dx = random("dx", n, 4);                 // written: what is there must go
        Buf dw = random("dw", 5, 4);                 // accumulated
        double[] dw0 = RefTrainOps.values(dw);
        ops.matmulBackward(dout, x, w, n, dx, false, dw);
        checkGradient("matmul dx", x, loss, RefTrainOps.values(dx));
        checkGradient("matmul dw", w, loss, minus(RefTrainOps.values(dw), dw0));

        double[] dx0 = RefTrainOps.values(random("dx0", n, 4));
        RefTrainOps.setValues(dx, dx0);
        ops.matmulBackward(dout, x, w, n, dx, true, null);   // accumulateDx, frozen weight
        checkGradient("matmul dx accumulated", x, loss, minus(RefTrainOps.values(dx), dx0));
        ops.matmulBackward(dout, x, w, n, null, false, null); // nobody needs anything: allowed
    }

    @Test
    void inverseRopeIsTheGradientOfRope() {
        float[] factors = {1f, 4f};
        for (Rope rope : new Rope[] {new Rope(4, 100f, 1f, null, false), new Rope(4, 100f, 0.5f, factors, true)}) {
            int heads = 2;
            int headDim = 6;                         // partial rotary: the last 2 values of each head stay
            int len = 3;
            int n = 6;
            Buf x = random("x", n, heads * headDim);
            Buf y = ops.allocate("y", n, heads * headDim);
            double[] r = randomArray(n * heads * headDim);
            DoubleSupplier loss = () -> {
                ops.copy(x, n, y);
                ops.rope(y, heads, headDim, n, len, rope, false);
                return dot(y, r);
            };
            Buf g = buf(r, n, heads * headDim);
            ops.rope(g, heads, headDim, n, len, rope, true);
            checkGradient("rope " + rope, x, loss, RefTrainOps.values(g));
        }
    }

    @Test
    void attentionBackwardIsTheGradientOfAttention() {
        checkAttention(0f);
    }

    @Test
    void attentionBackwardIsTheGradientOfAttentionWithDropout() {
        checkAttention(0.3f);
    }

    private void checkAttention(float dropP) {
        int seqs = 2;
        int len = 5;
        int heads = 4;
        int kvHeads = 2;
        int headDim = 4;
        int n = seqs * len;
        long dropSeed = 77;
        Buf q = random("q", n, heads * headDim);
        Buf k = random("k", n, kvHeads * headDim);
        Buf v = random("v", n, kvHeads * headDim);
        Buf out = ops.allocate("out", n, heads * headDim);
        Buf lse = ops.allocate("lse", n, heads);
        double[] r = randomArray(n * heads * headDim);
        DoubleSupplier loss = () -> {
            ops.attention(q, k, v, seqs, len, heads, kvHeads, headDim, out, lse, dropP, dropSeed);
            return dot(out, r);
        };
        loss.getAsDouble();
        Buf dq = random("dq", n, heads * headDim);   // written: what is there must go
        Buf dk = random("dk", n, kvHeads * headDim);
        Buf dv = random("dv", n, kvHeads * headDim);
        ops.attentionBackward(buf(r, n, heads * headDim), q, k, v, out, lse, seqs, len, heads, kvHeads, headDim, dropP,
                dropSeed, dq, dk, dv);
        String what = "attention (dropout " + dropP + ") ";
        checkGradient(what + "dq", q, loss, RefTrainOps.values(dq));
        checkGradient(what + "dk", k, loss, RefTrainOps.values(dk));
        checkGradient(what + "dv", v, loss, RefTrainOps.values(dv));
        if (dropP > 0) {                             // the mask must really drop some weights and keep others
            int dropped = 0;
            int weights = 0;
            for (int i = 0; i < n; i++) {
                for (int h = 0; h < heads; h++) {
                    for (int j = 0; j <= i % len; j++) {
                        weights++;
                        dropped += TrainOps.keep(dropSeed, ((long) i * heads + h) * len + j, dropP) ? 0 : 1;
                    }
                }
            }
            assertTrue(dropped > weights / 10 && dropped < weights / 2, "dropped " + dropped + " of " + weights + " weights");
        }
    }

    @Test
    void swigluBackwardIsTheGradientOfSwiglu() {
        int n = 3;
        Buf gate = random("gate", n, 5);
        Buf up = random("up", n, 5);
        Buf out = ops.allocate("out", n, 5);
        double[] r = randomArray(n * 5);
        DoubleSupplier loss = () -> {
            ops.swiglu(gate, up, n, out);
            return dot(out, r);
        };
        Buf dgate = random("dgate", n, 5);
        Buf dup = random("dup", n, 5);
        ops.swigluBackward(buf(r, n, 5), gate, up, n, dgate, dup);
        checkGradient("swiglu dgate", gate, loss, RefTrainOps.values(dgate));
        checkGradient("swiglu dup", up, loss, RefTrainOps.values(dup));
    }

    @Test
    void dropoutIsItsOwnBackward() {
        int n = 4;
        int cols = 6;
        float p = 0.4f;
        long dropSeed = 9;
        Buf x = random("x", n, cols);
        Buf y = ops.allocate("y", n, cols);
        double[] r = randomArray(n * cols);
        DoubleSupplier loss = () -> {
            ops.copy(x, n, y);
            ops.dropout(y, n, p, dropSeed);
            return dot(y, r);
        };
        Buf g = buf(r, n, cols);
        ops.dropout(g, n, p, dropSeed);
        double[] grad = RefTrainOps.values(g);
        checkGradient("dropout", x, loss, grad);
        int zeros = 0;
        for (double d : grad) {
            zeros += d == 0 ? 1 : 0;
        }
        assertTrue(zeros > 2 && zeros < n * cols - 2, "dropout dropped " + zeros + " of " + n * cols);
    }

    @Test
    void crossEntropyGradientIsTheGradientOfItsScaledLoss() {
        int n = 5;
        int dim = 4;
        int vocab = 7;
        float scale = 0.25f;
        int[] targets = {3, -1, 0, 6, -1};          // two rows skipped
        Buf x = random("x", n, dim);
        Buf w = random("w", vocab, dim);
        DoubleSupplier loss = () -> scale * ops.crossEntropy(x, w, targets, n, scale, null, null);
        Buf dx = random("dx", n, dim);               // written, skipped rows included
        Buf dw = random("dw", vocab, dim);           // accumulated
        double[] dw0 = RefTrainOps.values(dw);
        double returned = ops.crossEntropy(x, w, targets, n, scale, dx, dw);
        assertEquals(loss.getAsDouble() / scale, returned, 1e-12, "the loss with gradients is the loss without");
        checkGradient("crossEntropy dx", x, loss, RefTrainOps.values(dx));
        checkGradient("crossEntropy dw", w, loss, minus(RefTrainOps.values(dw), dw0));
    }

    // ---- forward ops and the optimizer against naive formulas ---------------------------------

    @Test
    void crossEntropyLossIsAnExplicitLogSumExp() {
        int n = 4;
        int dim = 3;
        int vocab = 6;
        int[] targets = {5, 0, -2, 2};
        Buf x = random("x", n, dim);
        Buf w = random("w", vocab, dim);
        double[] xs = RefTrainOps.values(x);
        double[] ws = RefTrainOps.values(w);
        double expected = 0;
        for (int i = 0; i < n; i++) {
            if (targets[i] < 0) {
                continue;
            }
            double sumExp = 0;
            double targetLogit = 0;
            for (int v = 0; v < vocab; v++) {
                double logit = 0;
                for (int c = 0; c < dim; c++) {
                    logit += ws[v * dim + c] * xs[i * dim + c];
                }
                sumExp += Math.exp(logit);
                if (v == targets[i]) {
                    targetLogit = logit;
                }
            }
            expected += Math.log(sumExp) - targetLogit;
        }
        assertEquals(expected, ops.crossEntropy(x, w, targets, n, 1f, null, null), 1e-12 * Math.abs(expected),
                "seed " + SEED);
    }

    @Test
    void attentionForwardIsNaiveCausalSoftmax() {
        checkAttentionForward(0f);
    }

    @Test
    void attentionForwardWithDropoutDropsTheMasksWeights() {
        checkAttentionForward(0.3f);
    }

    /** Compares attention with softmax(QKᵀ/√d + causal mask)·V per window and head, weights dropped by keep(). */
    private void checkAttentionForward(float dropP) {
        long dropSeed = 5;
        int seqs = 2;
        int len = 5;
        int heads = 4;
        int kvHeads = 2;
        int headDim = 4;
        int n = seqs * len;
        Buf q = random("q", n, heads * headDim);
        Buf k = random("k", n, kvHeads * headDim);
        Buf v = random("v", n, kvHeads * headDim);
        Buf out = ops.allocate("out", n, heads * headDim);
        Buf lse = ops.allocate("lse", n, heads);
        ops.attention(q, k, v, seqs, len, heads, kvHeads, headDim, out, lse, dropP, dropSeed);
        double[] qs = RefTrainOps.values(q);
        double[] ks = RefTrainOps.values(k);
        double[] vs = RefTrainOps.values(v);
        double[] outs = RefTrainOps.values(out);
        double[] lses = RefTrainOps.values(lse);
        int qw = heads * headDim;
        int kw = kvHeads * headDim;
        for (int b = 0; b < seqs; b++) {
            for (int h = 0; h < heads; h++) {
                int kh = h * kvHeads / heads;        // heads 0,1 → kv head 0; heads 2,3 → kv head 1
                // S = Q·Kᵀ/√d with -∞ above the diagonal, P = softmax(S) row by row, O = P·V
                double[][] s = new double[len][len];
                for (int t = 0; t < len; t++) {
                    for (int j = 0; j < len; j++) {
                        double dot = 0;
                        for (int d = 0; d < headDim; d++) {
                            dot += qs[(b * len + t) * qw + h * headDim + d] * ks[(b * len + j) * kw + kh * headDim + d];
                        }
                        s[t][j] = j <= t ? dot / Math.sqrt(headDim) : Double.NEGATIVE_INFINITY;
                    }
                }
                for (int t = 0; t < len; t++) {
                    double z = 0;
                    for (int j = 0; j < len; j++) {
                        z += Math.exp(s[t][j]);
                    }
                    String at = "dropout " + dropP + " window " + b + " position " + t + " head " + h + " (seed " + SEED + ")";
                    assertEquals(Math.log(z), lses[(b * len + t) * heads + h], 1e-12, "lse at " + at);
                    for (int d = 0; d < headDim; d++) {
                        double o = 0;
                        for (int j = 0; j < len; j++) {
                            long index = ((long) (b * len + t) * heads + h) * len + j;
                            double mask = TrainOps.keep(dropSeed, index, dropP) ? 1 / (1 - (double) dropP) : 0;
                            o += mask * Math.exp(s[t][j]) / z * vs[(b * len + j) * kw + kh * headDim + d];
                        }
                        assertEquals(o, outs[(b * len + t) * qw + h * headDim + d], 1e-12, "out at " + at + " dim " + d);
                    }
                }
            }
        }
    }

    @Test
    void ropeTurnsThePairsOfTheInferenceOp() {
        // The inference oracle (RefOps) rotates float buffers; the training oracle must use its pairs and angles.
        for (Rope rope : new Rope[] {new Rope(4, 100f, 1f, null, false), new Rope(4, 100f, 0.5f, new float[] {1f, 4f}, true)}) {
            int heads = 2;
            int headDim = 6;
            int len = 4;
            int n = 8;                               // two windows: positions 0..3, 0..3
            float[] xs = new float[n * heads * headDim];
            for (int e = 0; e < xs.length; e++) {
                xs[e] = (float) (rnd.nextDouble() * 2 - 1);
            }
            Buf x = ops.allocate("x", n, heads * headDim);
            ops.write(x, xs);
            ops.rope(x, heads, headDim, n, len, rope, false);
            float[] got = new float[xs.length];
            ops.read(x, got);

            RefBackend backend = new RefBackend();
            HostBuf hq = (HostBuf) backend.allocate("q", n, heads * headDim);
            HostBuf hk = (HostBuf) backend.allocate("k", n, heads * headDim);
            Batch batch = new Batch(n);
            for (int i = 0; i < n; i++) {
                batch.add(0, i % len, i / len, false);
                for (int c = 0; c < heads * headDim; c++) {
                    hq.set(i, c, xs[i * heads * headDim + c]);
                }
            }
            new RefOps().rope(hq, hk, headDim, batch, rope);
            for (int i = 0; i < n; i++) {
                for (int c = 0; c < heads * headDim; c++) {
                    assertEquals(hq.get(i, c), got[i * heads * headDim + c], 1e-6f, rope + " row " + i + " col " + c);
                }
            }
            backend.close();
        }
    }

    @Test
    void forwardOpsAreTheirFormulas() {
        int n = 3;
        int dim = 4;
        String at = " (seed " + SEED + ")";
        Buf x = random("x", n, dim);
        Buf w = random("w", 1, dim);
        Buf y = random("y", n, dim);
        double[] xs = RefTrainOps.values(x);
        double[] ws = RefTrainOps.values(w);
        double[] ys = RefTrainOps.values(y);

        Buf out = ops.allocate("out", n, dim);
        Buf rstd = ops.allocate("rstd", n, 1);
        ops.rmsnorm(x, w, 0.5f, n, out, rstd);       // a large eps, so that dropping it shows
        for (int i = 0; i < n; i++) {
            double meanSq = 0;
            for (int c = 0; c < dim; c++) {
                meanSq += xs[i * dim + c] * xs[i * dim + c] / dim;
            }
            double rs = 1 / Math.sqrt(meanSq + 0.5);
            assertEquals(rs, RefTrainOps.values(rstd)[i], 1e-14, "rmsnorm rstd row " + i + at);
            for (int c = 0; c < dim; c++) {
                assertEquals(xs[i * dim + c] * rs * ws[c], RefTrainOps.values(out)[i * dim + c], 1e-14, "rmsnorm" + at);
            }
        }

        ops.swiglu(x, y, n, out);
        for (int e = 0; e < n * dim; e++) {
            double silu = xs[e] / (1 + Math.exp(-xs[e]));
            assertEquals(silu * ys[e], RefTrainOps.values(out)[e], 1e-14, "swiglu element " + e + at);
        }

        Buf table = random("table", 5, dim);
        ops.embed(table, new int[] {4, 0, 4}, n, out);
        assertEquals(RefTrainOps.values(table)[4 * dim + 1], RefTrainOps.values(out)[2 * dim + 1], 0.0, "embed" + at);

        Buf m = random("m", 2, dim);                 // [out 2, in dim]
        Buf prod = ops.allocate("prod", n, 2);
        ops.matmul(x, m, n, prod);
        double[] ms = RefTrainOps.values(m);
        for (int i = 0; i < n; i++) {
            for (int r = 0; r < 2; r++) {
                double s = 0;
                for (int c = 0; c < dim; c++) {
                    s += ms[r * dim + c] * xs[i * dim + c];
                }
                assertEquals(s, RefTrainOps.values(prod)[i * 2 + r], 1e-14, "matmul out[" + i + "][" + r + "]" + at);
            }
        }

        float p = 0.25f;
        ops.dropout(x, n, p, 42);                    // element (i, c) is index i·cols + c
        int dropped = 0;
        for (int e = 0; e < n * dim; e++) {
            boolean kept = TrainOps.keep(42, e, p);
            dropped += kept ? 0 : 1;
            assertEquals(kept ? xs[e] / 0.75 : 0, RefTrainOps.values(x)[e], 1e-15, "dropout element " + e + at);
        }
        assertTrue(dropped > 0 && dropped < n * dim, "dropout dropped " + dropped + " of " + n * dim);
    }

    @Test
    void adamwTakesTorchsTwoSteps() {
        float gradScale = 0.5f;
        float lr = 0.01f;
        float beta1 = 0.9f;
        float beta2 = 0.999f;
        float eps = 1e-8f;
        float wd = 0.1f;
        float[] p0 = {1.0f, -2.0f, 0.5f};
        float[] g1 = {0.2f, -0.4f, 0.0f};
        float[] g2 = {-0.1f, 0.3f, 0.6f};
        Buf p = ops.allocate("p", 1, 3);
        Buf g = ops.allocate("g", 1, 3);
        Buf m = ops.allocate("m", 1, 3);
        Buf v = ops.allocate("v", 1, 3);
        ops.write(p, p0);
        ops.write(g, g1);
        ops.adamw(p, g, m, v, gradScale, lr, beta1, beta2, eps, wd, 1);
        ops.write(g, g2);
        ops.adamw(p, g, m, v, gradScale, lr, beta1, beta2, eps, wd, 2);
        double[] got = RefTrainOps.values(p);
        for (int e = 0; e < 3; e++) {
            // Written as the paper's bias-corrected moments m̂, v̂ (torch's form rearranged), decoupled decay first.
            double b1 = beta1;
            double b2 = beta2;
            double pe = p0[e];
            double m1 = (1 - b1) * (gradScale * (double) g1[e]);
            double v1 = (1 - b2) * Math.pow(gradScale * (double) g1[e], 2);
            pe = pe * (1 - (double) lr * wd);
            pe = pe - lr * (m1 / (1 - b1)) / (Math.sqrt(v1 / (1 - b2)) + eps);
            double m2 = b1 * m1 + (1 - b1) * (gradScale * (double) g2[e]);
            double v2 = b2 * v1 + (1 - b2) * Math.pow(gradScale * (double) g2[e], 2);
            pe = pe * (1 - (double) lr * wd);
            pe = pe - lr * (m2 / (1 - b1 * b1)) / (Math.sqrt(v2 / (1 - b2 * b2)) + eps);
            assertEquals(pe, got[e], 1e-12, "p[" + e + "] after two steps");
            assertEquals(m2, RefTrainOps.values(m)[e], 1e-15, "m[" + e + "]");
            assertEquals(v2, RefTrainOps.values(v)[e], 1e-15, "v[" + e + "]");
        }
        // The one with a zero first gradient moved by decay alone on step 1: |Δ| = lr·wd·|p|.
        assertTrue(Math.abs(got[2] - p0[2]) > 1e-3, "the second step moves p[2]");
    }

    @Test
    void sumSquaresCountsEveryRow() {
        Buf g = ops.allocate("g", 3, 2);
        ops.write(g, new float[] {1, -2, 3, 0.5f, 0, -1});
        assertEquals(1 + 4 + 9 + 0.25 + 0 + 1, ops.sumSquares(g), 0.0);
    }

    @Test
    void weightGradientsAccumulateAcrossCalls() {
        int n = 3;
        int dim = 4;
        Buf x = random("x", n, dim);
        Buf w = random("w", 5, dim);
        Buf dout = random("dout", n, 5);
        Buf norm = random("norm", 1, dim);
        Buf rstd = ops.allocate("rstd", n, 1);
        ops.rmsnorm(x, norm, 1e-5f, n, ops.allocate("out", n, dim), rstd);
        Buf doutNorm = random("doutNorm", n, dim);
        int[] tokens = {1, 4, 1};
        int[] targets = {2, -1, 0};
        String[] names = {"matmulBackward dw", "rmsnormBackward dw", "embedBackward dTable", "crossEntropy dw"};
        for (int op = 0; op < names.length; op++) {
            Buf dw = ops.allocate("dw", op == 1 ? 1 : 5, dim);
            double[][] after = new double[2][];
            for (int call = 0; call < 2; call++) {
                switch (op) {
                    case 0 -> ops.matmulBackward(dout, x, w, n, null, false, dw);
                    case 1 -> ops.rmsnormBackward(doutNorm, x, norm, rstd, n, ops.allocate("dx", n, dim), dw);
                    case 2 -> ops.embedBackward(x, tokens, n, dw);
                    default -> ops.crossEntropy(x, w, targets, n, 0.5f, ops.allocate("dx", n, dim), dw);
                }
                after[call] = RefTrainOps.values(dw);
            }
            double max = 0;
            for (int e = 0; e < after[0].length; e++) {
                assertEquals(2 * after[0][e], after[1][e], 1e-12, names[op] + " value " + e + " after two calls");
                max = Math.max(max, Math.abs(after[0][e]));
            }
            assertTrue(max > 1e-3, names[op] + " is not all zero");
        }
    }

    @Test
    void memoryRoundsOnlyOnRead() {
        Buf b = ops.allocate("b", 3, 2);
        RefTrainOps.setValues(b, new double[] {0.1, 1e-300, -3, 4, 5, 6});
        assertEquals(0.1, RefTrainOps.values(b)[0], 0.0);
        float[] f = new float[4];                    // the first two rows
        ops.read(b, f);
        assertEquals(0.1f, f[0], 0f);
        assertEquals(0f, f[1], 0f);
        Buf c = ops.allocate("c", 3, 2);
        ops.copy(b, 2, c);
        ops.add(c, b, 1);
        double[] cs = RefTrainOps.values(c);
        assertEquals(0.2, cs[0], 0.0);
        assertEquals(4, cs[3], 0.0);
        assertEquals(0, cs[4], 0.0, "copy stops at row n");
        ops.zero(b);
        assertEquals(0, ops.sumSquares(b), 0.0);
    }

    @Test
    void foreignBuffersAndWrongShapesAreRefused() {
        RefBackend backend = new RefBackend();
        Buf host = backend.allocate("host", 2, 2);
        Buf mine = ops.allocate("mine", 2, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ops.add(mine, host, 2));
        assertTrue(e.getMessage().contains("HostBuf") && !e.getMessage().contains("\n"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ops.matmul(mine, ops.allocate("w", 3, 5), 2, ops.allocate("o", 2, 3)));
        assertTrue(e.getMessage().contains("matmul's w"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ops.add(mine, mine, 3));
        assertTrue(e.getMessage().contains("at least 3 rows"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> ops.crossEntropy(mine, ops.allocate("w", 4, 2), new int[] {4, 0}, 2, 1f, null, null));
        backend.close();
    }

    // ---- helpers --------------------------------------------------------------------------------

    /** Compares analytic[e] with (L(x+h) - L(x-h)) / 2h for every element e of input. */
    private void checkGradient(String what, Buf input, DoubleSupplier loss, double[] analytic) {
        double[] x = RefTrainOps.values(input);
        assertEquals(x.length, analytic.length, what + ": gradient size");
        double largest = 0;
        for (int e = 0; e < x.length; e++) {
            double saved = x[e];
            x[e] = saved + H;
            RefTrainOps.setValues(input, x);
            double plus = loss.getAsDouble();
            x[e] = saved - H;
            RefTrainOps.setValues(input, x);
            double minus = loss.getAsDouble();
            x[e] = saved;
            RefTrainOps.setValues(input, x);
            double numeric = (plus - minus) / (2 * H);
            double err = Math.abs(analytic[e] - numeric);
            double bound = REL_TOL * Math.max(Math.abs(analytic[e]), Math.abs(numeric)) + ABS_TOL;
            if (!(err <= bound)) {
                fail(what + ": element " + e + " (row " + e / input.cols() + ", col " + e % input.cols() + ") analytic "
                        + analytic[e] + " vs finite difference " + numeric + " (seed " + SEED + ")");
            }
            largest = Math.max(largest, Math.abs(numeric));
        }
        assertTrue(largest > 1e-2, what + ": the gradient is all (near) zero, nothing was checked (seed " + SEED + ")");
        loss.getAsDouble();                          // leave the op's outputs as at the unperturbed input
    }

    private Buf random(String name, int rows, int cols) {
        return buf(randomArray(rows * cols), rows, cols);
    }

    private Buf buf(double[] values, int rows, int cols) {
        Buf b = ops.allocate("buf", rows, cols);
        RefTrainOps.setValues(b, values);
        return b;
    }

    private double[] randomArray(int n) {
        double[] a = new double[n];
        for (int e = 0; e < n; e++) {
            a[e] = rnd.nextDouble() * 2 - 1;
        }
        return a;
    }

    /** Σ b ⊙ r over b's first r.length values. */
    private static double dot(Buf b, double[] r) {
        double[] v = RefTrainOps.values(b);
        double s = 0;
        for (int e = 0; e < r.length; e++) {
            s += v[e] * r[e];
        }
        return s;
    }

    private static double[] minus(double[] a, double[] b) {
        double[] d = new double[a.length];
        for (int e = 0; e < a.length; e++) {
            d[e] = a[e] - b[e];
        }
        return d;
    }
}
