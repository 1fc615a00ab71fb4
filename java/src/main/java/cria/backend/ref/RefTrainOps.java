// The training oracle: every TrainOps op in float64, written as its formula reads; slow on purpose.
package cria.backend.ref;

import cria.backend.Buf;
import cria.backend.Rope;
import cria.backend.TrainOps;

/**
 * The reference implementation of {@link TrainOps}: values are stored and computed in double,
 * one scalar loop per formula, single-threaded. It is the oracle that faster implementations are
 * checked against, and is itself checked by finite differences (RefTrainOpsGradientTest).
 *
 * <p>It takes only the {@link Buf}s it allocated. {@link #values(Buf)} and {@link #setValues(Buf,
 * double[])} read and write them in double, for tests that perturb inputs in float64.
 */
public final class RefTrainOps implements TrainOps {
    // Scratch kept between calls (grown, never shrunk): one row of scores / logits and its gradient.
    private double[] rowA = new double[0];
    private double[] rowB = new double[0];
    private Rope lastRope;
    private double[] lastInverseFrequencies;

    /** A new oracle; it holds no native memory. */
    public RefTrainOps() {
    }

    // ---- float64 access for tests -------------------------------------------------------------

    /** A copy of all {@code rows × cols} values of {@code b} (a buffer of a RefTrainOps), row-major, in double. */
    public static double[] values(Buf b) {
        return own(b, "buffer").data.clone();
    }

    /** Sets all {@code rows × cols} values of {@code b} (a buffer of a RefTrainOps) from {@code values}, row-major. */
    public static void setValues(Buf b, double[] values) {
        DoubleBuf d = own(b, "buffer");
        if (values.length != d.data.length) {
            throw new IllegalArgumentException("setValues: " + values.length + " values for " + b + "; give rows × cols = " + d.data.length);
        }
        System.arraycopy(values, 0, d.data, 0, values.length);
    }

    // ---- memory ----------------------------------------------------------------------------

    @Override
    public Buf allocate(String name, int rows, int cols) {
        if (rows < 0 || cols <= 0 || (long) rows * cols > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("cannot allocate " + name + "[" + rows + ", " + cols
                    + "] in the reference oracle: rows must be >= 0, cols > 0, and rows × cols fit a Java array");
        }
        return new DoubleBuf(name, rows, cols);
    }

    @Override
    public void write(Buf dst, float[] src) {
        DoubleBuf d = own(dst, "write's dst");
        if (src.length % d.cols() != 0 || src.length > d.data.length) {
            throw new IllegalArgumentException("write: " + src.length + " floats do not fill whole rows of " + dst
                    + "; give a multiple of " + d.cols() + " up to " + d.data.length);
        }
        for (int e = 0; e < src.length; e++) {
            d.data[e] = src[e];
        }
    }

    @Override
    public void read(Buf src, float[] dst) {
        DoubleBuf s = own(src, "read's src");
        if (dst.length % s.cols() != 0 || dst.length > s.data.length) {
            throw new IllegalArgumentException("read: " + dst.length + " floats are not whole rows of " + src
                    + "; give a multiple of " + s.cols() + " up to " + s.data.length);
        }
        for (int e = 0; e < dst.length; e++) {
            dst[e] = (float) s.data[e];
        }
    }

    @Override
    public void zero(Buf b) {
        java.util.Arrays.fill(own(b, "zero's buffer").data, 0.0);
    }

    @Override
    public void copy(Buf src, int n, Buf dst) {
        DoubleBuf s = rows(src, "copy's src", n, -1);
        DoubleBuf d = rows(dst, "copy's dst", n, s.cols());
        System.arraycopy(s.data, 0, d.data, 0, n * s.cols());
    }

    // ---- forward ---------------------------------------------------------------------------

    @Override
    public void embed(Buf table, int[] tokens, int n, Buf x) {
        DoubleBuf t = own(table, "embed's table");
        DoubleBuf out = rows(x, "embed's x", n, t.cols());
        checkTokens(tokens, n, t.rows(), "embed");
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < t.cols(); c++) {
                out.set(i, c, t.get(tokens[i], c));
            }
        }
    }

    @Override
    public void rmsnorm(Buf xb, Buf wb, float eps, int n, Buf outb, Buf rstdb) {
        DoubleBuf x = rows(xb, "rmsnorm's x", n, -1);
        int dim = x.cols();
        DoubleBuf w = rows(wb, "rmsnorm's w", 1, dim);
        DoubleBuf out = rows(outb, "rmsnorm's out", n, dim);
        DoubleBuf rstd = rows(rstdb, "rmsnorm's rstd", n, 1);
        for (int i = 0; i < n; i++) {
            double sumSq = 0;
            for (int c = 0; c < dim; c++) {
                sumSq += x.get(i, c) * x.get(i, c);
            }
            double r = 1.0 / Math.sqrt(sumSq / dim + eps);
            rstd.set(i, 0, r);
            for (int c = 0; c < dim; c++) {
                out.set(i, c, x.get(i, c) * r * w.get(0, c));   // out may be x: each value is read before it is written
            }
        }
    }

    @Override
    public void rmsnormHeads(Buf xb, Buf wb, float eps, int headDim, int n, Buf outb, Buf rstdb) {
        DoubleBuf x = rows(xb, "rmsnormHeads' x", n, -1);
        int heads = heads(x, headDim, "rmsnormHeads");
        DoubleBuf w = rows(wb, "rmsnormHeads' w", 1, headDim);
        DoubleBuf out = rows(outb, "rmsnormHeads' out", n, x.cols());
        DoubleBuf rstd = rows(rstdb, "rmsnormHeads' rstd", n * heads, 1);
        notSame(x, out, "rmsnormHeads' x and out");
        for (int i = 0; i < n; i++) {
            for (int h = 0; h < heads; h++) {
                int c0 = h * headDim;
                double sumSq = 0;
                for (int c = 0; c < headDim; c++) {
                    sumSq += x.get(i, c0 + c) * x.get(i, c0 + c);
                }
                double r = 1.0 / Math.sqrt(sumSq / headDim + eps);
                rstd.set(i * heads + h, 0, r);
                for (int c = 0; c < headDim; c++) {
                    out.set(i, c0 + c, x.get(i, c0 + c) * r * w.get(0, c));
                }
            }
        }
    }

    private static int heads(DoubleBuf x, int headDim, String op) {
        if (headDim <= 0 || x.cols() % headDim != 0) {
            throw new IllegalArgumentException(op + ": " + x + " is not whole heads of " + headDim + " values");
        }
        return x.cols() / headDim;
    }

    @Override
    public void addBias(Buf xb, Buf bb, int n) {
        DoubleBuf x = rows(xb, "addBias' x", n, -1);
        DoubleBuf b = rows(bb, "addBias' b", 1, x.cols());
        notSame(x, b, "addBias' x and b");
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < x.cols(); c++) {
                x.add(i, c, b.get(0, c));
            }
        }
    }

    @Override
    public void matmul(Buf xb, Buf wb, int n, Buf outb) {
        DoubleBuf x = rows(xb, "matmul's x", n, -1);
        DoubleBuf w = rows(wb, "matmul's w", 1, x.cols());
        DoubleBuf out = rows(outb, "matmul's out", n, w.rows());
        notSame(x, out, "matmul's x and out");
        for (int i = 0; i < n; i++) {
            for (int r = 0; r < w.rows(); r++) {
                double s = 0;
                for (int c = 0; c < x.cols(); c++) {
                    s += w.get(r, c) * x.get(i, c);
                }
                out.set(i, r, s);
            }
        }
    }

    @Override
    public void rope(Buf xb, int heads, int headDim, int n, int len, Rope rope, boolean inverse) {
        DoubleBuf x = rows(xb, "rope's x", n, heads * headDim);
        if (heads <= 0 || headDim <= 0 || len <= 0 || rope.dims() <= 0 || rope.dims() % 2 != 0 || rope.dims() > headDim) {
            throw new IllegalArgumentException("rope: heads " + heads + ", headDim " + headDim + ", len " + len + ", rope dims "
                    + rope.dims() + "; need positive heads, headDim and len, and even rope dims <= headDim");
        }
        double[] inv = inverseFrequencies(rope);
        int half = rope.dims() / 2;
        for (int i = 0; i < n; i++) {
            int pos = i % len;
            for (int h = 0; h < heads; h++) {
                int base = h * headDim;
                for (int p = 0; p < half; p++) {
                    double theta = (inverse ? -pos : pos) * inv[p];
                    double cos = Math.cos(theta);
                    double sin = Math.sin(theta);
                    int a = rope.neox() ? base + p : base + 2 * p;          // neox pairs i with i + dims/2,
                    int b = rope.neox() ? base + p + half : base + 2 * p + 1; // llama adjacent values
                    double x0 = x.get(i, a);
                    double x1 = x.get(i, b);
                    x.set(i, a, x0 * cos - x1 * sin);
                    x.set(i, b, x0 * sin + x1 * cos);
                }
            }
        }
    }

    @Override
    public void attention(Buf qb, Buf kb, Buf vb, int seqs, int len, int heads, int kvHeads, int headDim, Buf outb, Buf lseb,
                          float dropP, long seed) {
        int n = attentionRows(seqs, len, heads, kvHeads, headDim, dropP);
        DoubleBuf q = rows(qb, "attention's q", n, heads * headDim);
        DoubleBuf k = rows(kb, "attention's k", n, kvHeads * headDim);
        DoubleBuf v = rows(vb, "attention's v", n, kvHeads * headDim);
        DoubleBuf out = rows(outb, "attention's out", n, heads * headDim);
        DoubleBuf lse = rows(lseb, "attention's lse", n, heads);
        notSame(q, out, "attention's q and out");
        double[] s = scratchA(len);
        for (int i = 0; i < n; i++) {
            int first = (i / len) * len;   // row of the window's position 0
            int t = i % len;
            for (int h = 0; h < heads; h++) {
                int kh = h / (heads / kvHeads);
                scores(q, k, i, h, kh, headDim, first, t, s);
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j <= t; j++) {
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j <= t; j++) {
                    sum += Math.exp(s[j] - max);
                }
                double logSumExp = max + Math.log(sum);
                lse.set(i, h, logSumExp);
                for (int d = 0; d < headDim; d++) {
                    double o = 0;
                    for (int j = 0; j <= t; j++) {
                        double weight = Math.exp(s[j] - logSumExp) * dropFactor(seed, i, h, j, heads, len, dropP);
                        o += weight * v.get(first + j, kh * headDim + d);
                    }
                    out.set(i, h * headDim + d, o);
                }
            }
        }
    }

    @Override
    public void swiglu(Buf gateb, Buf upb, int n, Buf outb) {
        DoubleBuf gate = rows(gateb, "swiglu's gate", n, -1);
        DoubleBuf up = rows(upb, "swiglu's up", n, gate.cols());
        DoubleBuf out = rows(outb, "swiglu's out", n, gate.cols());
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < gate.cols(); c++) {
                double g = gate.get(i, c);
                out.set(i, c, g * sigmoid(g) * up.get(i, c));
            }
        }
    }

    @Override
    public Buf frozen(cria.tensor.Tensor t) {
        // The oracle keeps a double copy: it runs small models only, and a copy is the simplest truth.
        long rows = t.rows();
        int cols = t.rowLength();
        if (rows * cols > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor " + t.name() + " is too large for the reference oracle");
        }
        DoubleBuf d = new DoubleBuf(t.name(), (int) rows, cols);
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            t.dequantizeRow(r, row, 0);
            for (int c = 0; c < cols; c++) {
                d.data[r * cols + c] = row[c];
            }
        }
        return d;
    }

    @Override
    public void scale(Buf xb, int n, float s) {
        DoubleBuf x = rows(xb, "scale's x", n, -1);
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < x.cols(); c++) {
                x.data[i * x.cols() + c] *= s;
            }
        }
    }

    @Override
    public void add(Buf xb, Buf yb, int n) {
        DoubleBuf x = rows(xb, "add's x", n, -1);
        DoubleBuf y = rows(yb, "add's y", n, x.cols());
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < x.cols(); c++) {
                x.add(i, c, y.get(i, c));
            }
        }
    }

    @Override
    public void dropout(Buf xb, int n, float p, long seed) {
        DoubleBuf x = rows(xb, "dropout's x", n, -1);
        checkDropP(p, "dropout");
        int cols = x.cols();
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < cols; c++) {
                boolean kept = TrainOps.keep(seed, (long) i * cols + c, p);
                x.set(i, c, kept ? x.get(i, c) / (1.0 - p) : 0.0);
            }
        }
    }

    @Override
    public double crossEntropy(Buf xb, Buf wb, int[] targets, int n, float scale, Buf dxb, Buf dwb) {
        DoubleBuf x = rows(xb, "crossEntropy's x", n, -1);
        DoubleBuf w = rows(wb, "crossEntropy's w", 1, x.cols());
        int vocab = w.rows();
        int dim = x.cols();
        DoubleBuf dx = dxb == null ? null : rows(dxb, "crossEntropy's dx", n, dim);
        DoubleBuf dw = dxb == null || dwb == null ? null : rows(dwb, "crossEntropy's dw", vocab, dim);
        if (targets.length < n) {
            throw new IllegalArgumentException("crossEntropy: " + targets.length + " targets for " + n + " rows; give one per row");
        }
        double[] logits = scratchA(vocab);
        double[] dLogits = scratchB(vocab);
        double total = 0;
        for (int i = 0; i < n; i++) {                       // a chunk of one row: the [n × vocab] logits never exist
            int target = targets[i];
            if (target >= vocab) {
                throw new IllegalArgumentException("crossEntropy: target " + target + " of row " + i
                        + " is outside the vocabulary of " + vocab + "; targets are token ids, or negative to skip a row");
            }
            if (target < 0) {
                if (dx != null) {
                    for (int c = 0; c < dim; c++) {
                        dx.set(i, c, 0.0);
                    }
                }
                continue;
            }
            double max = Double.NEGATIVE_INFINITY;
            for (int r = 0; r < vocab; r++) {
                double s = 0;
                for (int c = 0; c < dim; c++) {
                    s += w.get(r, c) * x.get(i, c);
                }
                logits[r] = s;
                max = Math.max(max, s);
            }
            double sum = 0;
            for (int r = 0; r < vocab; r++) {
                sum += Math.exp(logits[r] - max);
            }
            double logSumExp = max + Math.log(sum);
            total += logSumExp - logits[target];
            if (dx == null) {
                continue;
            }
            // ∂(scale · loss_i)/∂logits[r] = scale · (softmax[r] - [r == target])
            for (int r = 0; r < vocab; r++) {
                dLogits[r] = scale * (Math.exp(logits[r] - logSumExp) - (r == target ? 1.0 : 0.0));
            }
            for (int c = 0; c < dim; c++) {
                double s = 0;
                for (int r = 0; r < vocab; r++) {
                    s += dLogits[r] * w.get(r, c);
                }
                dx.set(i, c, s);
            }
            if (dw != null) {
                for (int r = 0; r < vocab; r++) {
                    for (int c = 0; c < dim; c++) {
                        dw.add(r, c, dLogits[r] * x.get(i, c));
                    }
                }
            }
        }
        return total;
    }

    // ---- backward --------------------------------------------------------------------------

    @Override
    public void embedBackward(Buf dxb, int[] tokens, int n, Buf dTableb) {
        DoubleBuf dTable = own(dTableb, "embedBackward's dTable");
        DoubleBuf dx = rows(dxb, "embedBackward's dx", n, dTable.cols());
        checkTokens(tokens, n, dTable.rows(), "embedBackward");
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < dx.cols(); c++) {
                dTable.add(tokens[i], c, dx.get(i, c));
            }
        }
    }

    @Override
    public void rmsnormBackward(Buf doutb, Buf xb, Buf wb, Buf rstdb, int n, Buf dxb, Buf dwb) {
        DoubleBuf x = rows(xb, "rmsnormBackward's x", n, -1);
        int dim = x.cols();
        DoubleBuf dout = rows(doutb, "rmsnormBackward's dout", n, dim);
        DoubleBuf w = rows(wb, "rmsnormBackward's w", 1, dim);
        DoubleBuf rstd = rows(rstdb, "rmsnormBackward's rstd", n, 1);
        DoubleBuf dx = rows(dxb, "rmsnormBackward's dx", n, dim);
        DoubleBuf dw = rows(dwb, "rmsnormBackward's dw", 1, dim);
        notSame(dout, dx, "rmsnormBackward's dout and dx");
        for (int i = 0; i < n; i++) {
            // out[c] = x[c]·r·w[c] with r = (mean(x²) + eps)^(-1/2), so ∂r/∂x[c] = -r³·x[c]/dim and
            // ∂L/∂x[c] = dout[c]·w[c]·r - x[c]·r³/dim · Σ_k dout[k]·w[k]·x[k].
            double r = rstd.get(i, 0);
            double dot = 0;
            for (int c = 0; c < dim; c++) {
                dot += dout.get(i, c) * w.get(0, c) * x.get(i, c);
            }
            for (int c = 0; c < dim; c++) {
                dx.add(i, c, dout.get(i, c) * w.get(0, c) * r - x.get(i, c) * r * r * r / dim * dot);
                dw.add(0, c, dout.get(i, c) * x.get(i, c) * r);
            }
        }
    }

    @Override
    public void rmsnormHeadsBackward(Buf doutb, Buf xb, Buf wb, Buf rstdb, int headDim, int n, Buf dxb, Buf dwb) {
        DoubleBuf x = rows(xb, "rmsnormHeadsBackward's x", n, -1);
        int heads = heads(x, headDim, "rmsnormHeadsBackward");
        DoubleBuf dout = rows(doutb, "rmsnormHeadsBackward's dout", n, x.cols());
        DoubleBuf w = rows(wb, "rmsnormHeadsBackward's w", 1, headDim);
        DoubleBuf rstd = rows(rstdb, "rmsnormHeadsBackward's rstd", n * heads, 1);
        DoubleBuf dx = rows(dxb, "rmsnormHeadsBackward's dx", n, x.cols());
        DoubleBuf dw = rows(dwb, "rmsnormHeadsBackward's dw", 1, headDim);
        notSame(dout, dx, "rmsnormHeadsBackward's dout and dx");
        for (int i = 0; i < n; i++) {
            for (int h = 0; h < heads; h++) {
                // as rmsnormBackward, over the headDim values of one head
                int c0 = h * headDim;
                double r = rstd.get(i * heads + h, 0);
                double dot = 0;
                for (int c = 0; c < headDim; c++) {
                    dot += dout.get(i, c0 + c) * w.get(0, c) * x.get(i, c0 + c);
                }
                for (int c = 0; c < headDim; c++) {
                    dx.add(i, c0 + c, dout.get(i, c0 + c) * w.get(0, c) * r - x.get(i, c0 + c) * r * r * r / headDim * dot);
                    dw.add(0, c, dout.get(i, c0 + c) * x.get(i, c0 + c) * r);
                }
            }
        }
    }

    @Override
    public void matmulBackward(Buf doutb, Buf xb, Buf wb, int n, Buf dxb, boolean accumulateDx, Buf dwb) {
        DoubleBuf x = rows(xb, "matmulBackward's x", n, -1);
        DoubleBuf w = rows(wb, "matmulBackward's w", 1, x.cols());
        DoubleBuf dout = rows(doutb, "matmulBackward's dout", n, w.rows());
        if (dxb != null) {
            DoubleBuf dx = rows(dxb, "matmulBackward's dx", n, x.cols());
            notSame(dout, dx, "matmulBackward's dout and dx");
            for (int i = 0; i < n; i++) {
                for (int c = 0; c < x.cols(); c++) {
                    double s = 0;
                    for (int r = 0; r < w.rows(); r++) {
                        s += dout.get(i, r) * w.get(r, c);
                    }
                    dx.set(i, c, accumulateDx ? dx.get(i, c) + s : s);
                }
            }
        }
        if (dwb != null) {
            DoubleBuf dw = rows(dwb, "matmulBackward's dw", w.rows(), x.cols());
            for (int r = 0; r < w.rows(); r++) {
                for (int c = 0; c < x.cols(); c++) {
                    double s = 0;
                    for (int i = 0; i < n; i++) {
                        s += dout.get(i, r) * x.get(i, c);
                    }
                    dw.add(r, c, s);
                }
            }
        }
    }

    @Override
    public void attentionBackward(Buf doutb, Buf qb, Buf kb, Buf vb, Buf outb, Buf lseb, int seqs, int len, int heads,
                                  int kvHeads, int headDim, float dropP, long seed, Buf dqb, Buf dkb, Buf dvb) {
        int n = attentionRows(seqs, len, heads, kvHeads, headDim, dropP);
        DoubleBuf q = rows(qb, "attentionBackward's q", n, heads * headDim);
        DoubleBuf k = rows(kb, "attentionBackward's k", n, kvHeads * headDim);
        DoubleBuf v = rows(vb, "attentionBackward's v", n, kvHeads * headDim);
        rows(outb, "attentionBackward's out", n, heads * headDim);   // not needed here: see Σ P·dP below
        DoubleBuf lse = rows(lseb, "attentionBackward's lse", n, heads);
        DoubleBuf dout = rows(doutb, "attentionBackward's dout", n, heads * headDim);
        DoubleBuf dq = rows(dqb, "attentionBackward's dq", n, heads * headDim);
        DoubleBuf dk = rows(dkb, "attentionBackward's dk", n, kvHeads * headDim);
        DoubleBuf dv = rows(dvb, "attentionBackward's dv", n, kvHeads * headDim);
        notSame(dout, dq, "attentionBackward's dout and dq");
        double scale = 1.0 / Math.sqrt(headDim);
        // dq, dk and dv are written: clear them, then add each (row, head)'s contribution.
        for (DoubleBuf g : new DoubleBuf[] {dq, dk, dv}) {
            java.util.Arrays.fill(g.data, 0, n * g.cols(), 0.0);
        }
        double[] p = scratchA(len);    // softmax weights, before dropout
        double[] dp = scratchB(len);   // ∂L/∂p
        for (int i = 0; i < n; i++) {
            int first = (i / len) * len;
            int t = i % len;
            for (int h = 0; h < heads; h++) {
                int kh = h / (heads / kvHeads);
                scores(q, k, i, h, kh, headDim, first, t, p);
                for (int j = 0; j <= t; j++) {
                    p[j] = Math.exp(p[j] - lse.get(i, h));
                }
                // out[d] = Σ_j p[j]·drop[j]·v[j][d]: ∂L/∂v[j][d] += p[j]·drop[j]·dout[d], ∂L/∂p[j] = drop[j]·(dout·v[j])
                double pDotDp = 0;
                for (int j = 0; j <= t; j++) {
                    double drop = dropFactor(seed, i, h, j, heads, len, dropP);
                    double dotDv = 0;
                    for (int d = 0; d < headDim; d++) {
                        double g = dout.get(i, h * headDim + d);
                        dotDv += g * v.get(first + j, kh * headDim + d);
                        dv.add(first + j, kh * headDim + d, p[j] * drop * g);
                    }
                    dp[j] = drop * dotDv;
                    pDotDp += p[j] * dp[j];   // equals dout·out, which faster implementations use instead
                }
                // softmax: ∂L/∂s[j] = p[j]·(dp[j] - Σ_m p[m]·dp[m]); s[j] = scale·q·k[j]
                for (int j = 0; j <= t; j++) {
                    double ds = p[j] * (dp[j] - pDotDp) * scale;
                    for (int d = 0; d < headDim; d++) {
                        dq.add(i, h * headDim + d, ds * k.get(first + j, kh * headDim + d));
                        dk.add(first + j, kh * headDim + d, ds * q.get(i, h * headDim + d));
                    }
                }
            }
        }
    }

    @Override
    public void swigluBackward(Buf doutb, Buf gateb, Buf upb, int n, Buf dgateb, Buf dupb) {
        DoubleBuf gate = rows(gateb, "swigluBackward's gate", n, -1);
        int cols = gate.cols();
        DoubleBuf up = rows(upb, "swigluBackward's up", n, cols);
        DoubleBuf dout = rows(doutb, "swigluBackward's dout", n, cols);
        DoubleBuf dgate = rows(dgateb, "swigluBackward's dgate", n, cols);
        DoubleBuf dup = rows(dupb, "swigluBackward's dup", n, cols);
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < cols; c++) {
                double g = gate.get(i, c);
                double u = up.get(i, c);
                double d = dout.get(i, c);       // read all three first: dgate or dup may be dout
                double sig = sigmoid(g);
                double siluPrime = sig * (1.0 + g * (1.0 - sig));   // d/dg of g·σ(g)
                dgate.set(i, c, d * u * siluPrime);
                dup.set(i, c, d * g * sig);
            }
        }
    }

    // ---- optimizer -------------------------------------------------------------------------

    @Override
    public double sumSquares(Buf g) {
        double s = 0;
        for (double x : own(g, "sumSquares' g").data) {
            s += x * x;
        }
        return s;
    }

    @Override
    public void adamw(Buf pb, Buf gb, Buf mb, Buf vb, float gradScale, float lr, float beta1, float beta2, float eps,
                      float weightDecay, int step) {
        DoubleBuf p = own(pb, "adamw's p");
        DoubleBuf g = rows(gb, "adamw's g", p.rows(), p.cols());
        DoubleBuf m = rows(mb, "adamw's m", p.rows(), p.cols());
        DoubleBuf v = rows(vb, "adamw's v", p.rows(), p.cols());
        if (step < 1) {
            throw new IllegalArgumentException("adamw: step " + step + "; steps count from 1");
        }
        double bias1 = 1.0 - Math.pow(beta1, step);
        double bias2 = 1.0 - Math.pow(beta2, step);
        for (int e = 0; e < p.data.length; e++) {
            double grad = (double) gradScale * g.data[e];
            p.data[e] -= (double) lr * weightDecay * p.data[e];
            m.data[e] = beta1 * m.data[e] + (1.0 - beta1) * grad;
            v.data[e] = beta2 * v.data[e] + (1.0 - beta2) * grad * grad;
            double denom = Math.sqrt(v.data[e]) / Math.sqrt(bias2) + eps;
            p.data[e] -= (lr / bias1) * m.data[e] / denom;
        }
    }

    @Override
    public void close() {
        // Heap memory only: nothing to release.
    }

    // ---- helpers ---------------------------------------------------------------------------

    /** Scaled scores of (row i, head h) against keys of the window's positions 0..t, into s[0..t]. */
    private static void scores(DoubleBuf q, DoubleBuf k, int i, int h, int kh, int headDim, int first, int t, double[] s) {
        double scale = 1.0 / Math.sqrt(headDim);
        for (int j = 0; j <= t; j++) {
            double dot = 0;
            for (int d = 0; d < headDim; d++) {
                dot += q.get(i, h * headDim + d) * k.get(first + j, kh * headDim + d);
            }
            s[j] = scale * dot;
        }
    }

    /** What attention's dropout multiplies the weight of (row i, head h, key position j) by: 0 or 1/(1-p). */
    private static double dropFactor(long seed, int i, int h, int j, int heads, int len, float p) {
        if (p <= 0f) {
            return 1.0;
        }
        return TrainOps.keep(seed, ((long) i * heads + h) * len + j, p) ? 1.0 / (1.0 - p) : 0.0;
    }

    private static double sigmoid(double g) {
        return 1.0 / (1.0 + Math.exp(-g));
    }

    private static int attentionRows(int seqs, int len, int heads, int kvHeads, int headDim, float dropP) {
        if (seqs <= 0 || len <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("attention: seqs " + seqs + ", len " + len + ", heads " + heads + ", kvHeads "
                    + kvHeads + ", headDim " + headDim + "; need all positive and heads a multiple of kvHeads");
        }
        if ((long) seqs * len > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("attention: seqs × len = " + (long) seqs * len + " rows is too many");
        }
        checkDropP(dropP, "attention");
        return seqs * len;
    }

    private static void checkDropP(float p, String op) {
        if (!(p >= 0f && p < 1f)) {
            throw new IllegalArgumentException(op + ": dropout probability " + p + "; give 0 <= p < 1");
        }
    }

    private static void checkTokens(int[] tokens, int n, int vocab, String op) {
        if (tokens.length < n) {
            throw new IllegalArgumentException(op + ": " + tokens.length + " tokens for " + n + " rows; give one per row");
        }
        for (int i = 0; i < n; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocab) {
                throw new IllegalArgumentException(op + ": token " + tokens[i] + " of row " + i + " is outside the table of " + vocab + " rows");
            }
        }
    }

    private double[] inverseFrequencies(Rope rope) {
        if (rope != lastRope) {
            lastInverseFrequencies = rope.inverseFrequencies();
            lastRope = rope;
        }
        return lastInverseFrequencies;
    }

    private double[] scratchA(int n) {
        if (rowA.length < n) {
            rowA = new double[n];
        }
        return rowA;
    }

    private double[] scratchB(int n) {
        if (rowB.length < n) {
            rowB = new double[n];
        }
        return rowB;
    }

    /** b as this oracle's buffer, or a one-line IllegalArgumentException naming what it is. */
    private static DoubleBuf own(Buf b, String what) {
        if (b == null) {
            throw new IllegalArgumentException(what + " is null; pass a buffer allocated by this RefTrainOps");
        }
        if (!(b instanceof DoubleBuf d)) {
            throw new IllegalArgumentException(what + " " + b + " is a " + b.getClass().getSimpleName()
                    + ", not a buffer of the reference oracle; allocate it with RefTrainOps.allocate");
        }
        return d;
    }

    /** b as this oracle's buffer with at least {@code n} rows and exactly {@code cols} columns (any, when cols is -1). */
    private static DoubleBuf rows(Buf b, String what, int n, int cols) {
        DoubleBuf d = own(b, what);
        if (n < 0 || d.rows() < n || (cols >= 0 && d.cols() != cols)) {
            throw new IllegalArgumentException(what + " is " + b + "; it needs at least " + n + " rows"
                    + (cols >= 0 ? " of " + cols + " values" : "") + (n < 0 ? " (n must not be negative)" : ""));
        }
        return d;
    }

    private static void notSame(Buf a, Buf b, String what) {
        if (a == b) {
            throw new IllegalArgumentException(what + " are the same buffer " + a + "; give the output its own buffer");
        }
    }
}
