// The CPU ops' computations in pure Java (Vector API inner loops, the tensor codecs): the path when the native kernels are not there.
package cria.backend.cpu;

import cria.backend.Batch;
import cria.backend.HostBuf;
import cria.backend.HostKvCache;
import cria.backend.KvCache;
import cria.backend.Rope;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.tensor.Codec;
import cria.tensor.Codecs;
import cria.tensor.Half;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * What every op computes, in Java; the entry points, checks and row-wise tasks are
 * {@link CpuOps}'s. Matrix products split output rows over threads; each thread decodes a weight
 * row once into its own scratch and reuses it for every input row of the batch. Attention splits
 * (entry, head) pairs. {@link NativeCpuOps} also hands over to these the products and attention
 * geometries its kernels do not take.
 */
final class JavaCpuOps extends CpuOps {
    private final float[][] scoreScratch;

    JavaCpuOps(WorkerPool pool) {
        super(pool);
        this.scoreScratch = new float[pool.threads()][0];
    }

    @Override
    boolean runsNatively(GgmlType type, int cols) {
        return false;
    }

    /** Every op goes to the pool, even for one row: its threads split rows or elements, and Java has no cheaper call. */
    @Override
    void runRows(WorkerPool.Task body, int n) {
        pool.run(body);
    }

    private float[] scores(int t, int n) {
        if (scoreScratch[t].length < n) {
            scoreScratch[t] = new float[Math.max(n, 256)];
        }
        return scoreScratch[t];
    }

    @Override
    void rmsnormRows(Rmsnorm r, int th, int lo, int hi) {
        HostBuf x = r.x;
        HostBuf out = r.out;
        int d = x.cols();
        float[] gr = row(th, d);
        r.w.tensor().dequantizeRow(0, gr, 0);
        for (int i = lo; i < hi; i++) {
            long off = x.rowOffset(i);
            float scale = (float) (1.0 / Math.sqrt(Simd.sumSquares(x.segment(), off, d) / d + r.eps));
            long oo = out.rowOffset(i);
            for (int c = 0; c < d; c++) {
                out.segment().set(FLOAT, oo + 4L * c, x.segment().get(FLOAT, off + 4L * c) * scale * gr[c]);
            }
        }
    }

    @Override
    void headNormRows(HeadNorm h, int th, int lo, int hi) {
        int d = h.headDim;
        float[] gr = row(th, d);
        h.w.tensor().dequantizeRow(0, gr, 0);
        MemorySegment seg = h.x.segment();
        for (int j = lo; j < hi; j++) {
            long off = 4L * d * j;
            float scale = (float) (1.0 / Math.sqrt(Simd.sumSquares(seg, off, d) / d + h.eps));
            for (int c = 0; c < d; c++) {
                seg.set(FLOAT, off + 4L * c, seg.get(FLOAT, off + 4L * c) * scale * gr[c]);
            }
        }
    }

    /** All the weights' rows end to end, which the threads split into contiguous runs. */
    private int allRows;

    @Override
    void product(Matmul m) {
        int total = 0;
        for (Weight w : m.ws) {
            total += w.rows();
        }
        allRows = total;
        pool.run(m);
    }

    @Override
    void productShare(Matmul m, int th, int nt) {
        int from = WorkerPool.split(allRows, th, nt);
        int to = WorkerPool.split(allRows, th + 1, nt);
        int base = 0;
        for (int j = 0; j < m.ws.length && from < to; j++) {
            Tensor t = m.ws[j].tensor();
            int rows = Math.toIntExact(t.rows());
            int lo = Math.max(from, base) - base;
            int hi = Math.min(to, base + rows) - base;
            if (lo < hi) {
                rows(t, m.x, m.n, (HostBuf) m.outs[j], lo, hi, th);
            }
            base += rows;
        }
    }

    /** Output rows [lo, hi) of one weight for n inputs. */
    private void rows(Tensor t, HostBuf x, int n, HostBuf out, int lo, int hi, int th) {
        int in = t.rowLength();
        MemorySegment xs = x.segment();
        MemorySegment os = out.segment();
        if (t.type() == GgmlType.F32) {
            MemorySegment data = t.data();
            long rb = t.rowBytes();
            for (int o = lo; o < hi; o++) {
                for (int i = 0; i < n; i++) {
                    os.set(FLOAT, out.rowOffset(i) + 4L * o, Simd.dot(data, o * rb, xs, x.rowOffset(i), in));
                }
            }
            return;
        }
        Codec codec = Codecs.of(t.type());
        float[] r = row(th, in);
        long rb = t.rowBytes();
        for (int o = lo; o < hi; o++) {
            codec.dequantize(t.data(), o * rb, r, 0, in);
            for (int i = 0; i < n; i++) {
                os.set(FLOAT, out.rowOffset(i) + 4L * o, Simd.dot(r, xs, x.rowOffset(i), in));
            }
        }
    }

    /** Each row's cos/sin pairs are computed once, then turn every head of both q and k. */
    @Override
    void ropeRows(RopeRows r, int th, int lo, int hi) {
        int half = r.rope.dims() / 2;
        double[] inv = r.inv;
        float[] cs = row(th, 2 * half);
        for (int i = lo; i < hi; i++) {
            int pos = r.batch.position(i);
            for (int p = 0; p < half; p++) {
                double theta = pos * inv[p];
                cs[2 * p] = (float) Math.cos(theta);
                cs[2 * p + 1] = (float) Math.sin(theta);
            }
            rotate(r.q, i, r.headDim, r.rope, cs);
            rotate(r.k, i, r.headDim, r.rope, cs);
        }
    }

    private static void rotate(HostBuf x, int i, int headDim, Rope rope, float[] cs) {
        MemorySegment s = x.segment();
        long row = x.rowOffset(i);
        int heads = x.cols() / headDim;
        int half = rope.dims() / 2;
        for (int h = 0; h < heads; h++) {
            long base = row + 4L * h * headDim;
            for (int p = 0; p < half; p++) {
                long a = base + 4L * (rope.neox() ? p : 2 * p);
                long b = base + 4L * (rope.neox() ? p + half : 2 * p + 1);
                float x0 = s.get(FLOAT, a);
                float x1 = s.get(FLOAT, b);
                float c = cs[2 * p];
                float sn = cs[2 * p + 1];
                s.set(FLOAT, a, x0 * c - x1 * sn);
                s.set(FLOAT, b, x0 * sn + x1 * c);
            }
        }
    }

    @Override
    void storeRow(MemorySegment src, long off, MemorySegment dst, long idx, int d, boolean f16) {
        if (f16) {
            for (int j = 0; j < d; j++) {
                dst.setAtIndex(ValueLayout.JAVA_SHORT, idx + j, Half.floatToF16(src.get(FLOAT, off + 4L * j)));
            }
        } else {
            MemorySegment.copy(src, off, dst, idx * 4, 4L * d);
        }
    }

    @Override
    void attend(Attention a) {
        pool.run(a);
    }

    /** The threads split the (entry, query head) pairs. */
    @Override
    void attentionShare(Attention a, int th, int nt) {
        HostKvCache c = a.c;
        int heads = a.heads;
        int headDim = a.headDim;
        int group = a.group();
        boolean f16 = a.f16();
        float scale = a.scale();
        float cap = a.spec.softcap();
        int items = a.batch.size() * heads;
        int pageSize = c.pageSize();
        float[] qv = row(th, headDim * 2);
        for (int it = WorkerPool.split(items, th, nt); it < WorkerPool.split(items, th + 1, nt); it++) {
            int i = it / heads;
            int h = it % heads;
            int seq = a.batch.sequence(i);
            int len = a.batch.position(i) + 1;
            int first = a.spec.firstKey(len - 1);  // keys before the window are skipped, not masked
            float[] sc = scores(th, len - first);
            MemorySegment.copy(a.q.segment(), FLOAT, a.q.rowOffset(i) + 4L * h * headDim, qv, 0, headDim);
            int kvOff = (h / group) * headDim;
            float max = Float.NEGATIVE_INFINITY;
            for (int t = first; t < len; t++) {
                long at = c.index(a.layer, c.page(seq, t), t % pageSize) + kvOff;
                float dot = f16 ? dotF16(qv, c.keys(), at, headDim) : Simd.dot(qv, c.keys(), at * 4, headDim);
                float s = dot * scale;
                if (cap > 0) {
                    s = cap * (float) Math.tanh(s / cap);
                }
                sc[t - first] = s;
                max = Math.max(max, s);
            }
            float sum = 0;
            for (int t = 0; t < len - first; t++) {
                sc[t] = (float) Math.exp(sc[t] - max);
                sum += sc[t];
            }
            float inv = 1f / sum;
            float[] acc = qv;
            java.util.Arrays.fill(acc, headDim, 2 * headDim, 0f);
            for (int t = first; t < len; t++) {
                long at = c.index(a.layer, c.page(seq, t), t % pageSize) + kvOff;
                float p = sc[t - first] * inv;
                for (int d = 0; d < headDim; d++) {
                    float val = f16 ? Half.f16ToFloat(c.values().getAtIndex(ValueLayout.JAVA_SHORT, at + d))
                            : c.values().getAtIndex(FLOAT, at + d);
                    acc[headDim + d] += p * val;
                }
            }
            MemorySegment.copy(acc, headDim, a.out.segment(), FLOAT, a.out.rowOffset(i) + 4L * h * headDim, headDim);
        }
    }

    private static float dotF16(float[] q, MemorySegment k, long idx, int n) {
        float s = 0;
        for (int d = 0; d < n; d++) {
            s += q[d] * Half.f16ToFloat(k.getAtIndex(ValueLayout.JAVA_SHORT, idx + d));
        }
        return s;
    }

    @Override
    void swigluElements(MemorySegment a, MemorySegment b, long from, long to) {
        for (long e = from; e < to; e++) {
            float g = a.getAtIndex(FLOAT, e);
            a.setAtIndex(FLOAT, e, g / (1f + (float) Math.exp(-g)) * b.getAtIndex(FLOAT, e));
        }
    }

    @Override
    void gegluElements(MemorySegment a, MemorySegment b, long from, long to) {
        for (long e = from; e < to; e++) {
            a.setAtIndex(FLOAT, e, gelu(a.getAtIndex(FLOAT, e)) * b.getAtIndex(FLOAT, e));
        }
    }

    @Override
    void addElements(MemorySegment x, MemorySegment y, long count) {
        for (long e = 0; e < count; e++) {
            x.setAtIndex(FLOAT, e, x.getAtIndex(FLOAT, e) + y.getAtIndex(FLOAT, e));
        }
    }
}
