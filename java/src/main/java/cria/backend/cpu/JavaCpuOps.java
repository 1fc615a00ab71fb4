// The CPU ops in pure Java (Vector API inner loops, the tensor codecs): the path when the native kernels are not there.
package cria.backend.cpu;

import cria.backend.Batch;
import cria.backend.Buf;
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
 * Every op in Java. Matrix products split output rows over threads; each thread decodes a weight
 * row once into its own scratch and reuses it for every input row of the batch. Attention splits
 * (entry, head) pairs. {@link NativeCpuOps} also hands over to these the products and attention
 * geometries its kernels do not take.
 */
final class JavaCpuOps extends CpuOps {
    private final float[][] scoreScratch;
    private final Rmsnorm rmsnorm = new Rmsnorm();
    private final Matmul matmul = new Matmul();
    private final RopeTask rope = new RopeTask();
    private final StoreKv storeKv = new StoreKv();
    private final Attention attention = new Attention();
    private final Swiglu swiglu = new Swiglu();

    JavaCpuOps(WorkerPool pool) {
        super(pool);
        this.scoreScratch = new float[pool.threads()][0];
    }

    @Override
    boolean runsNatively(GgmlType type, int cols) {
        return false;
    }

    private float[] scores(int t, int n) {
        if (scoreScratch[t].length < n) {
            scoreScratch[t] = new float[Math.max(n, 256)];
        }
        return scoreScratch[t];
    }

    @Override
    public void rmsnorm(Buf xb, Weight w, float eps, int n, Buf outb) {
        HostBuf x = (HostBuf) xb;
        HostBuf out = (HostBuf) outb;
        checkRows(x, n);
        checkRows(out, n);
        if (!(w.tensor().rows() == 1 && w.cols() == x.cols() && out.cols() >= x.cols())) {
            throw sizes("rmsnorm of " + x + " by " + w + " into " + out);
        }
        Rmsnorm r = rmsnorm;
        r.x = x;
        r.out = out;
        r.g = w.tensor();
        r.eps = eps;
        r.n = n;
        pool.run(r);
    }

    private final class Rmsnorm implements WorkerPool.Task {
        HostBuf x;
        HostBuf out;
        Tensor g;
        float eps;
        int n;

        @Override
        public void run(int th, int nt) {
            int d = x.cols();
            float[] gr = row(th, d);
            g.dequantizeRow(0, gr, 0);
            for (int i = WorkerPool.split(n, th, nt); i < WorkerPool.split(n, th + 1, nt); i++) {
                long off = x.rowOffset(i);
                float scale = (float) (1.0 / Math.sqrt(Simd.sumSquares(x.segment(), off, d) / d + eps));
                long oo = out.rowOffset(i);
                for (int c = 0; c < d; c++) {
                    out.segment().set(FLOAT, oo + 4L * c, x.segment().get(FLOAT, off + 4L * c) * scale * gr[c]);
                }
            }
        }
    }

    @Override
    public void matmul(Buf xb, int n, Weight[] ws, Buf[] outs) {
        int total = 0;
        for (Weight w : ws) {
            total += w.rows();
        }
        Matmul m = matmul;
        m.x = (HostBuf) xb;
        m.n = n;
        m.ws = ws;
        m.outs = outs;
        m.allRows = total;
        pool.run(m);
    }

    /** The product's arguments; each thread takes a contiguous run of the weights' rows, all weights end to end. */
    private final class Matmul implements WorkerPool.Task {
        HostBuf x;
        int n;
        Weight[] ws;
        Buf[] outs;
        int allRows;

        @Override
        public void run(int th, int nt) {
            int from = WorkerPool.split(allRows, th, nt);
            int to = WorkerPool.split(allRows, th + 1, nt);
            int base = 0;
            for (int j = 0; j < ws.length && from < to; j++) {
                Tensor t = ws[j].tensor();
                int rows = Math.toIntExact(t.rows());
                int lo = Math.max(from, base) - base;
                int hi = Math.min(to, base + rows) - base;
                if (lo < hi) {
                    rows(t, x, n, (HostBuf) outs[j], lo, hi, th);
                }
                base += rows;
            }
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

    @Override
    public void rope(Buf qb, Buf kb, int headDim, Batch batch, Rope rope) {
        double[] inv = inverseFrequencies(rope);
        HostBuf q = (HostBuf) qb;
        HostBuf k = (HostBuf) kb;
        int n = batch.size();
        int half = rope.dims() / 2;
        checkRows(q, n);
        checkRows(k, n);
        if (!(headDim > 0 && q.cols() % headDim == 0 && k.cols() % headDim == 0 && rope.dims() <= headDim
                && inv.length >= half)) {
            throw sizes("rope of " + q + ", " + k + " with heads of " + headDim);
        }
        RopeTask r = this.rope;
        r.q = q;
        r.k = k;
        r.headDim = headDim;
        r.batch = batch;
        r.rope = rope;
        r.inv = inv;
        pool.run(r);
    }

    private final class RopeTask implements WorkerPool.Task {
        HostBuf q;
        HostBuf k;
        int headDim;
        Batch batch;
        Rope rope;
        double[] inv;

        @Override
        public void run(int th, int nt) {
            int n = batch.size();
            int half = rope.dims() / 2;
            float[] cs = row(th, 2 * half);
            for (int i = WorkerPool.split(n, th, nt); i < WorkerPool.split(n, th + 1, nt); i++) {
                int pos = batch.position(i);
                for (int p = 0; p < half; p++) {
                    double theta = pos * inv[p];
                    cs[2 * p] = (float) Math.cos(theta);
                    cs[2 * p + 1] = (float) Math.sin(theta);
                }
                rotate(q, i, headDim, rope, cs);
                rotate(k, i, headDim, rope, cs);
            }
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
    public void storeKv(KvCache cache, int layer, Buf kb, Buf vb, Batch batch) {
        HostKvCache c = (HostKvCache) cache;
        HostBuf k = (HostBuf) kb;
        HostBuf v = (HostBuf) vb;
        int d = c.kvDim();
        int n = batch.size();
        checkRows(k, n);
        checkRows(v, n);
        if (!(k.cols() >= d && v.cols() >= d && layer >= 0 && layer < c.config().layers())) {
            throw sizes("storeKv of " + k + " into layer " + layer);
        }
        StoreKv s = storeKv;
        s.c = c;
        s.layer = layer;
        s.k = k;
        s.v = v;
        s.batch = batch;
        pool.run(s);
    }

    private final class StoreKv implements WorkerPool.Task {
        HostKvCache c;
        int layer;
        HostBuf k;
        HostBuf v;
        Batch batch;

        @Override
        public void run(int th, int nt) {
            boolean f16 = c.config().type() == KvCache.Type.F16;
            int d = c.kvDim();
            int n = batch.size();
            for (int i = WorkerPool.split(n, th, nt); i < WorkerPool.split(n, th + 1, nt); i++) {
                long at = c.positionIndex(layer, batch.sequence(i), batch.position(i));
                store(k.segment(), k.rowOffset(i), c.keys(), at, d, f16);
                store(v.segment(), v.rowOffset(i), c.values(), at, d, f16);
            }
        }
    }

    private static void store(MemorySegment src, long off, MemorySegment dst, long idx, int d, boolean f16) {
        if (f16) {
            for (int j = 0; j < d; j++) {
                dst.setAtIndex(ValueLayout.JAVA_SHORT, idx + j, Half.floatToF16(src.get(FLOAT, off + 4L * j)));
            }
        } else {
            MemorySegment.copy(src, off, dst, idx * 4, 4L * d);
        }
    }

    @Override
    public void attention(Buf qb, KvCache cache, int layer, int heads, int kvHeads, int headDim, Batch batch, Buf outb) {
        HostKvCache c = (HostKvCache) cache;
        HostBuf q = (HostBuf) qb;
        HostBuf out = (HostBuf) outb;
        int rows = batch.size();
        checkRows(q, rows);
        checkRows(out, rows);
        if (!(heads > 0 && kvHeads > 0 && headDim > 0 && heads % kvHeads == 0 && (long) heads * headDim <= q.cols()
                && (long) heads * headDim <= out.cols() && (long) kvHeads * headDim == c.kvDim() && layer >= 0 && layer < c.config().layers())) {
            throw sizes("attention of " + heads + "/" + kvHeads + " heads x " + headDim + " over " + q + " and a cache of kvDim " + c.kvDim());
        }
        // every entry's (sequence, position) was checked against its pages once for the step (Llama.step)
        Attention a = attention;
        a.q = q;
        a.c = c;
        a.layer = layer;
        a.heads = heads;
        a.headDim = headDim;
        a.group = heads / kvHeads;
        a.batch = batch;
        a.out = out;
        pool.run(a);
    }

    /** Attention's arguments; the threads split the (entry, query head) pairs. */
    private final class Attention implements WorkerPool.Task {
        HostBuf q;
        HostKvCache c;
        int layer;
        int heads;
        int headDim;
        int group;
        Batch batch;
        HostBuf out;

        @Override
        public void run(int th, int nt) {
            boolean f16 = c.config().type() == KvCache.Type.F16;
            float scale = (float) (1.0 / Math.sqrt(headDim));
            int items = batch.size() * heads;
            int pageSize = c.pageSize();
            float[] qv = row(th, headDim * 2);
            for (int it = WorkerPool.split(items, th, nt); it < WorkerPool.split(items, th + 1, nt); it++) {
                int i = it / heads;
                int h = it % heads;
                int seq = batch.sequence(i);
                int len = batch.position(i) + 1;
                float[] sc = scores(th, len);
                MemorySegment.copy(q.segment(), FLOAT, q.rowOffset(i) + 4L * h * headDim, qv, 0, headDim);
                int kvOff = (h / group) * headDim;
                float max = Float.NEGATIVE_INFINITY;
                for (int t = 0; t < len; t++) {
                    long at = c.index(layer, c.page(seq, t), t % pageSize) + kvOff;
                    float dot = f16 ? dotF16(qv, c.keys(), at, headDim) : Simd.dot(qv, c.keys(), at * 4, headDim);
                    sc[t] = dot * scale;
                    max = Math.max(max, sc[t]);
                }
                float sum = 0;
                for (int t = 0; t < len; t++) {
                    sc[t] = (float) Math.exp(sc[t] - max);
                    sum += sc[t];
                }
                float inv = 1f / sum;
                float[] acc = qv;
                java.util.Arrays.fill(acc, headDim, 2 * headDim, 0f);
                for (int t = 0; t < len; t++) {
                    long at = c.index(layer, c.page(seq, t), t % pageSize) + kvOff;
                    float p = sc[t] * inv;
                    for (int d = 0; d < headDim; d++) {
                        float val = f16 ? Half.f16ToFloat(c.values().getAtIndex(ValueLayout.JAVA_SHORT, at + d))
                                : c.values().getAtIndex(FLOAT, at + d);
                        acc[headDim + d] += p * val;
                    }
                }
                MemorySegment.copy(acc, headDim, out.segment(), FLOAT, out.rowOffset(i) + 4L * h * headDim, headDim);
            }
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
    public void swiglu(Buf ab, Buf bb, int n) {
        HostBuf a = (HostBuf) ab;
        HostBuf b = (HostBuf) bb;
        checkRows(a, n);
        checkRows(b, n);
        if (b.cols() != a.cols()) {
            throw sizes("swiglu of " + a + " and " + b);
        }
        Swiglu s = swiglu;
        s.a = a;
        s.b = b;
        s.total = (long) n * a.cols();
        pool.run(s);
    }

    private static final class Swiglu implements WorkerPool.Task {
        HostBuf a;
        HostBuf b;
        long total;

        @Override
        public void run(int th, int nt) {
            long from = total * th / nt;
            long to = total * (th + 1) / nt;
            MemorySegment as = a.segment();
            MemorySegment bs = b.segment();
            for (long e = from; e < to; e++) {
                float g = as.getAtIndex(FLOAT, e);
                as.setAtIndex(FLOAT, e, g / (1f + (float) Math.exp(-g)) * bs.getAtIndex(FLOAT, e));
            }
        }
    }

    @Override
    public void add(Buf xb, Buf yb, int n) {
        HostBuf x = (HostBuf) xb;
        HostBuf y = (HostBuf) yb;
        checkRows(x, n);
        checkRows(y, n);
        if (x.cols() != y.cols()) {
            throw sizes("add of " + x + " and " + y);
        }
        long total = (long) n * x.cols();
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        for (long e = 0; e < total; e++) {
            xs.setAtIndex(FLOAT, e, xs.getAtIndex(FLOAT, e) + ys.getAtIndex(FLOAT, e));
        }
    }
}
