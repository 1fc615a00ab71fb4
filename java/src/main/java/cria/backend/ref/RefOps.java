// Scalar reference implementations of every op: each written as the formula reads, accumulating in double.
package cria.backend.ref;

import cria.backend.AttnSpec;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.HostKvCache;
import cria.backend.KvCache;
import cria.backend.Ops;
import cria.backend.Rope;
import cria.backend.Weight;
import cria.tensor.Half;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The oracle. Weights are dequantized exactly (as ggml does) and every sum is taken in double;
 * activations are stored as float, the KV cache in its own type. Slow on purpose: clarity first.
 */
final class RefOps implements Ops {
    private float[] row = new float[0];

    private float[] rowScratch(int n) {
        if (row.length < n) {
            row = new float[n];
        }
        return row;
    }

    @Override
    public void embed(Weight table, Batch batch, Buf x) {
        HostBuf out = (HostBuf) x;
        Tensor t = table.tensor();
        float[] r = rowScratch(t.rowLength());
        for (int i = 0; i < batch.size(); i++) {
            int tok = batch.token(i);
            if (tok < 0 || tok >= t.rows()) {
                throw new IllegalArgumentException("token id " + tok + " outside the vocabulary of " + t.rows());
            }
            t.dequantizeRow(tok, r, 0);
            for (int c = 0; c < out.cols(); c++) {
                out.set(i, c, r[c]);
            }
        }
    }

    @Override
    public void rmsnorm(Buf xb, Weight w, float eps, int n, Buf outb) {
        HostBuf x = (HostBuf) xb;
        HostBuf out = (HostBuf) outb;
        float[] g = w.tensor().dequantizeRow(0);
        int d = x.cols();
        for (int i = 0; i < n; i++) {
            double ss = 0;
            for (int c = 0; c < d; c++) {
                double v = x.get(i, c);
                ss += v * v;
            }
            double scale = 1.0 / Math.sqrt(ss / d + eps);
            for (int c = 0; c < d; c++) {
                out.set(i, c, (float) (x.get(i, c) * scale * g[c]));
            }
        }
    }

    @Override
    public void matmul(Buf xb, int n, Weight[] ws, Buf[] outs) {
        HostBuf x = (HostBuf) xb;
        for (int j = 0; j < ws.length; j++) {
            Tensor t = ws[j].tensor();
            HostBuf out = (HostBuf) outs[j];
            int in = t.rowLength();
            float[] r = rowScratch(in);
            for (int o = 0; o < t.rows(); o++) {
                t.dequantizeRow(o, r, 0);
                for (int i = 0; i < n; i++) {
                    double acc = 0;
                    for (int c = 0; c < in; c++) {
                        acc += (double) r[c] * x.get(i, c);
                    }
                    out.set(i, o, (float) acc);
                }
            }
        }
    }

    @Override
    public void rope(Buf qb, Buf kb, int headDim, Batch batch, Rope rope) {
        double[] inv = rope.inverseFrequencies();
        for (Buf b : new Buf[] {qb, kb}) {
            HostBuf x = (HostBuf) b;
            int heads = x.cols() / headDim;
            for (int i = 0; i < batch.size(); i++) {
                int pos = batch.position(i);
                for (int h = 0; h < heads; h++) {
                    int base = h * headDim;
                    for (int p = 0; p < rope.dims() / 2; p++) {
                        double theta = pos * inv[p];
                        double cos = Math.cos(theta);
                        double sin = Math.sin(theta);
                        int a = rope.neox() ? base + p : base + 2 * p;
                        int bIdx = rope.neox() ? base + p + rope.dims() / 2 : base + 2 * p + 1;
                        double x0 = x.get(i, a);
                        double x1 = x.get(i, bIdx);
                        x.set(i, a, (float) (x0 * cos - x1 * sin));
                        x.set(i, bIdx, (float) (x0 * sin + x1 * cos));
                    }
                }
            }
        }
    }

    @Override
    public void storeKv(KvCache cache, int layer, Buf kb, Buf vb, Batch batch) {
        HostKvCache c = (HostKvCache) cache;
        HostBuf k = (HostBuf) kb;
        HostBuf v = (HostBuf) vb;
        boolean f16 = c.config().type() == KvCache.Type.F16;
        for (int i = 0; i < batch.size(); i++) {
            long at = c.positionIndex(layer, batch.sequence(i), batch.position(i));
            for (int d = 0; d < c.kvDim(); d++) {
                put(c.keys(), at + d, k.get(i, d), f16);
                put(c.values(), at + d, v.get(i, d), f16);
            }
        }
    }

    private static void put(MemorySegment s, long idx, float v, boolean f16) {
        if (f16) {
            s.setAtIndex(ValueLayout.JAVA_SHORT, idx, Half.floatToF16(v));
        } else {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, idx, v);
        }
    }

    private static double get(MemorySegment s, long idx, boolean f16) {
        return f16 ? Half.f16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT, idx)) : s.getAtIndex(ValueLayout.JAVA_FLOAT, idx);
    }

    @Override
    public void attention(Buf qb, KvCache cache, int layer, int heads, int kvHeads, int headDim, AttnSpec spec, Batch batch, Buf outb) {
        HostKvCache c = (HostKvCache) cache;
        HostBuf q = (HostBuf) qb;
        HostBuf out = (HostBuf) outb;
        boolean f16 = c.config().type() == KvCache.Type.F16;
        int group = heads / kvHeads;
        // the plain scale in float64 (as before specs existed); any other as given
        double scale = spec.scale() == AttnSpec.plain(headDim).scale() ? 1.0 / Math.sqrt(headDim) : spec.scale();
        double cap = spec.softcap();
        int window = spec.window();
        for (int i = 0; i < batch.size(); i++) {
            int seq = batch.sequence(i);
            int pos = batch.position(i);
            int len = pos + 1;
            double[] scores = new double[len];
            for (int h = 0; h < heads; h++) {
                int kvOff = (h / group) * headDim;
                double max = Double.NEGATIVE_INFINITY;
                for (int t = 0; t < len; t++) {
                    if (window > 0 && pos - t >= window) {  // outside the window: exp gives weight 0
                        scores[t] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    long at = c.positionIndex(layer, seq, t) + kvOff;
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) {
                        dot += q.get(i, h * headDim + d) * get(c.keys(), at + d, f16);
                    }
                    scores[t] = dot * scale;
                    if (cap > 0) {
                        scores[t] = cap * Math.tanh(scores[t] / cap);
                    }
                    max = Math.max(max, scores[t]);
                }
                double sum = 0;
                for (int t = 0; t < len; t++) {
                    scores[t] = Math.exp(scores[t] - max);
                    sum += scores[t];
                }
                for (int d = 0; d < headDim; d++) {
                    double acc = 0;
                    for (int t = 0; t < len; t++) {
                        if (window == 0 || pos - t < window) {
                            acc += scores[t] * get(c.values(), c.positionIndex(layer, seq, t) + kvOff + d, f16);
                        }
                    }
                    out.set(i, h * headDim + d, (float) (acc / sum));
                }
            }
        }
    }

    @Override
    public void swiglu(Buf ab, Buf bb, int n) {
        HostBuf a = (HostBuf) ab;
        HostBuf b = (HostBuf) bb;
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < a.cols(); c++) {
                double g = a.get(i, c);
                a.set(i, c, (float) (g / (1 + Math.exp(-g)) * b.get(i, c)));
            }
        }
    }

    /** GELU, tanh form, in double. */
    static double gelu(double g) {
        return 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)));
    }

    @Override
    public void geglu(Buf ab, Buf bb, int n) {
        HostBuf a = (HostBuf) ab;
        HostBuf b = (HostBuf) bb;
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < a.cols(); c++) {
                a.set(i, c, (float) (gelu(a.get(i, c)) * b.get(i, c)));
            }
        }
    }

    @Override
    public void scale(Buf xb, float s, int n) {
        HostBuf x = (HostBuf) xb;
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < x.cols(); c++) {
                x.set(i, c, (float) ((double) x.get(i, c) * s));
            }
        }
    }

    @Override
    public void softcap(Buf xb, float cap, int n) {
        HostBuf x = (HostBuf) xb;
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < x.cols(); c++) {
                x.set(i, c, (float) (cap * Math.tanh(x.get(i, c) / (double) cap)));
            }
        }
    }

    @Override
    public void add(Buf xb, Buf yb, int n) {
        HostBuf x = (HostBuf) xb;
        HostBuf y = (HostBuf) yb;
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < x.cols(); c++) {
                x.set(i, c, x.get(i, c) + y.get(i, c));
            }
        }
    }

    @Override
    public void addBias(Buf xb, Weight bias, int n) {
        HostBuf x = (HostBuf) xb;
        float[] b = bias.tensor().dequantizeRow(0);
        if (bias.tensor().rows() != 1 || b.length != x.cols()) {
            throw new IllegalArgumentException("bias " + bias + " does not fit the rows of " + x);
        }
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < x.cols(); c++) {
                x.set(i, c, (float) ((double) x.get(i, c) + b[c]));
            }
        }
    }

    @Override
    public void rmsnormHeads(Buf xb, Weight w, float eps, int headDim, int n) {
        HostBuf x = (HostBuf) xb;
        float[] g = w.tensor().dequantizeRow(0);
        if (w.tensor().rows() != 1 || g.length != headDim || x.cols() % headDim != 0) {
            throw new IllegalArgumentException("per-head norm of " + x + " with heads of " + headDim + " by " + w);
        }
        for (int i = 0; i < n; i++) {
            for (int base = 0; base < x.cols(); base += headDim) {
                double ss = 0;
                for (int c = 0; c < headDim; c++) {
                    double v = x.get(i, base + c);
                    ss += v * v;
                }
                double scale = 1.0 / Math.sqrt(ss / headDim + eps);
                for (int c = 0; c < headDim; c++) {
                    x.set(i, base + c, (float) (x.get(i, base + c) * scale * g[c]));
                }
            }
        }
    }

    @Override
    public void gather(Buf xb, int[] rows, int m, Buf outb) {
        HostBuf x = (HostBuf) xb;
        HostBuf out = (HostBuf) outb;
        for (int j = 0; j < m; j++) {
            MemorySegment.copy(x.segment(), x.rowOffset(rows[j]), out.segment(), out.rowOffset(j), (long) x.cols() * Float.BYTES);
        }
    }
}
