// The CPU implementation of every op: work split over the pool by rows, Vector API inner loops.
package cria.backend.cpu;

import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.HostKvCache;
import cria.backend.KvCache;
import cria.backend.Ops;
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
 * Correct, parallel, allocation-free (after warm-up) CPU ops. Matrix products split output rows
 * over threads; each thread decodes a weight row once into its own scratch and reuses it for
 * every input row of the batch. Attention splits (entry, head) pairs.
 */
final class CpuOps implements Ops {
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;

    private final WorkerPool pool;
    private final NativeKernels nk;
    private final java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared();
    private final MemorySegment[] nativeScratch;
    private MemorySegment act = MemorySegment.NULL;
    private final float[][] rowScratch;
    private final float[][] scoreScratch;
    private double[] invFreq = new double[0];
    private Rope lastRope;

    CpuOps(WorkerPool pool, NativeKernels nk) {
        this.pool = pool;
        this.nk = nk;
        this.nativeScratch = new MemorySegment[pool.threads()];
        java.util.Arrays.fill(nativeScratch, MemorySegment.NULL);
        this.rowScratch = new float[pool.threads()][0];
        this.scoreScratch = new float[pool.threads()][0];
    }

    /**
     * Native kernels trust the sizes they are given: every op checks them against its buffers
     * first (a few integer comparisons per op), so that no inconsistent size, whatever its
     * origin, reaches C code as an out-of-bounds read or write.
     */
    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalArgumentException("op sizes do not fit their buffers: " + what);
        }
    }

    private static void checkRows(HostBuf b, int n) {
        check(n >= 0 && n <= b.rows(), n + " rows of " + b);
    }

    private float[] row(int t, int n) {
        if (rowScratch[t].length < n) {
            rowScratch[t] = new float[n];
        }
        return rowScratch[t];
    }

    private float[] scores(int t, int n) {
        if (scoreScratch[t].length < n) {
            scoreScratch[t] = new float[Math.max(n, 256)];
        }
        return scoreScratch[t];
    }

    @Override
    public void embed(Weight table, Batch batch, Buf x) {
        HostBuf out = (HostBuf) x;
        Tensor t = table.tensor();
        int n = batch.size();
        for (int i = 0; i < n; i++) {
            int tok = batch.token(i);
            if (tok < 0 || tok >= t.rows()) {
                throw new IllegalArgumentException("token id " + tok + " outside the vocabulary of " + t.rows());
            }
        }
        pool.run((th, nt) -> {
            float[] r = row(th, t.rowLength());
            for (int i = WorkerPool.split(n, th, nt); i < WorkerPool.split(n, th + 1, nt); i++) {
                t.dequantizeRow(batch.token(i), r, 0);
                MemorySegment.copy(r, 0, out.segment(), FLOAT, out.rowOffset(i), out.cols());
            }
        });
    }

    @Override
    public void rmsnorm(Buf xb, Weight w, float eps, int n, Buf outb) {
        HostBuf x = (HostBuf) xb;
        HostBuf out = (HostBuf) outb;
        checkRows(x, n);
        checkRows(out, n);
        check(w.tensor().rows() == 1 && w.cols() == x.cols() && out.cols() >= x.cols(), "rmsnorm of " + x + " by " + w + " into " + out);
        if (nk != null) {
            MemorySegment g = floats(w);
            rowsOf(n, (lo, hi) -> nk.rmsnorm(x.segment().asSlice(x.rowOffset(lo)), x.cols(), out.segment().asSlice(out.rowOffset(lo)),
                    out.cols(), hi - lo, x.cols(), g, eps));
            return;
        }
        Tensor g = w.tensor();
        int d = x.cols();
        pool.run((th, nt) -> {
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
        });
    }

    /** Work over rows: few rows run on the calling thread (no hand-off), more are split over the pool. */
    private void rowsOf(int n, java.util.function.BiConsumer<Integer, Integer> body) {
        if (n <= 2) {
            body.accept(0, n);
            return;
        }
        pool.run((th, nt) -> {
            int lo = WorkerPool.split(n, th, nt);
            int hi = WorkerPool.split(n, th + 1, nt);
            if (lo < hi) {
                body.accept(lo, hi);
            }
        });
    }

    private final java.util.Map<Weight, MemorySegment> floatVectors = new java.util.IdentityHashMap<>();

    /** A 1-D weight as floats: the mapped data itself for F32, else converted once. */
    private MemorySegment floats(Weight w) {
        Tensor t = w.tensor();
        if (t.type() == GgmlType.F32) {
            return t.data();
        }
        return floatVectors.computeIfAbsent(w, k -> {
            float[] v = t.dequantizeRow(0);
            MemorySegment seg = arena.allocate(4L * v.length, 64);
            MemorySegment.copy(v, 0, seg, FLOAT, 0, v.length);
            return seg;
        });
    }

    /** Frees the off-heap scratch (activation rows, per-thread buffers). */
    void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    /** Whether products with weights of this type and row length run in the native kernels (false: Java). */
    boolean nativeRuns(GgmlType type, int cols) {
        return nk != null && nk.supports(type.id()) && cols % groupOf(type) == 0;
    }

    private boolean nativeRuns(Weight[] ws) {
        if (nk == null) {
            return false;
        }
        for (Weight w : ws) {
            if (!nativeRuns(w.type(), w.cols())) {
                return false;
            }
        }
        return true;
    }

    private static int groupOf(GgmlType t) {
        return switch (t) {
            case F32, F16, BF16 -> 1;
            case Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL -> 64; // the kernels unpack pairs of 32-value blocks
            default -> 256; // super-blocks of 256 values
        };
    }

    private MemorySegment grow(MemorySegment seg, long bytes) {
        if (seg.byteSize() >= bytes) {
            return seg;
        }
        return arena.allocate(Math.max(bytes, seg.byteSize() * 2), 64);
    }

    /** The native path: activations quantized once (when a weight needs it), then row slices per thread. */
    private void matmulNative(HostBuf x, int n, Weight[] ws, Buf[] outs) {
        int k = ws[0].cols();
        checkRows(x, n);
        check(ws.length == outs.length && k <= x.cols(), "matmul of " + x + " by " + ws[0]);
        for (int j = 0; j < ws.length; j++) {
            HostBuf o = (HostBuf) outs[j];
            checkRows(o, n);
            check(ws[j].cols() == k && ws[j].rows() <= o.cols(), "matmul by " + ws[j] + " into " + o);
        }
        boolean quantized = false;
        for (Weight w : ws) {
            quantized |= w.type().isQuantized();
        }
        long actStride = nk.actRowBytes(k);
        if (quantized) {
            act = grow(act, actStride * n);
            MemorySegment a = act;
            rowsOf(n, (lo, hi) -> nk.quantizeAct(x.segment().asSlice(x.rowOffset(lo)), x.cols(), hi - lo, k, a.asSlice(actStride * lo), actStride));
        }
        long scratchBytes = nk.scratchBytes(k, n);
        for (int t = 0; t < nativeScratch.length; t++) {
            nativeScratch[t] = grow(nativeScratch[t], scratchBytes);
        }
        // Work is handed out in chunks of 64 rows from a shared counter: a thread the host slows
        // down takes fewer chunks instead of holding the others up at the end.
        int[] firstChunk = chunkStarts(ws);
        int chunks = firstChunk[ws.length];
        MemorySegment a = act;
        next.set(0);
        pool.run((th, nt) -> {
            int c;
            while ((c = next.getAndIncrement()) < chunks) {
                int j = 0;
                while (firstChunk[j + 1] <= c) {
                    j++;
                }
                Tensor t = ws[j].tensor();
                int rows = Math.toIntExact(t.rows());
                int lo = (c - firstChunk[j]) * CHUNK_ROWS;
                int hi = Math.min(rows, lo + CHUNK_ROWS);
                HostBuf out = (HostBuf) outs[j];
                boolean q = t.type().isQuantized();
                int rc = nk.matmul(t.type().id(), t.data(), t.rowBytes(), lo, hi, k, q ? a : x.segment(),
                        q ? actStride : x.cols(), n, out.segment(), out.cols(), nativeScratch[th]);
                if (rc != 0) {
                    throw new IllegalStateException("native matmul refused " + t);
                }
            }
        });
    }

    private static final int CHUNK_ROWS = 64;
    private final java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
    private final int[][] chunkStartsCache = new int[4][];

    /** Prefix sums of each weight's 64-row chunks (index ws.length holds the total), without allocating per call. */
    private int[] chunkStarts(Weight[] ws) {
        int[] out = ws.length < chunkStartsCache.length ? chunkStartsCache[ws.length] : null;
        if (out == null) {
            out = new int[ws.length + 1];
            if (ws.length < chunkStartsCache.length) {
                chunkStartsCache[ws.length] = out;
            }
        }
        for (int j = 0; j < ws.length; j++) {
            out[j + 1] = out[j] + (ws[j].rows() + CHUNK_ROWS - 1) / CHUNK_ROWS;
        }
        return out;
    }

    @Override
    public void matmul(Buf xb, int n, Weight[] ws, Buf[] outs) {
        HostBuf x = (HostBuf) xb;
        if (nativeRuns(ws)) {
            matmulNative(x, n, ws, outs);
            return;
        }
        int total = 0;
        for (Weight w : ws) {
            total += w.rows();
        }
        int allRows = total;
        pool.run((th, nt) -> {
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
        });
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
        if (rope != lastRope) {
            invFreq = rope.inverseFrequencies();
            lastRope = rope;
        }
        double[] inv = invFreq;
        HostBuf q = (HostBuf) qb;
        HostBuf k = (HostBuf) kb;
        int n = batch.size();
        int half = rope.dims() / 2;
        checkRows(q, n);
        checkRows(k, n);
        check(headDim > 0 && q.cols() % headDim == 0 && k.cols() % headDim == 0 && rope.dims() <= headDim
                && inv.length >= half, "rope of " + q + ", " + k + " with heads of " + headDim);
        if (nk != null) {
            MemorySegment invSeg = MemorySegment.ofArray(inv);
            MemorySegment pos = MemorySegment.ofArray(batch.positions());
            for (HostBuf x : new HostBuf[] {q, k}) {
                rowsOf(n, (lo, hi) -> nk.rope(x.segment().asSlice(x.rowOffset(lo)), x.cols(), hi - lo, x.cols() / headDim, headDim,
                        rope.dims(), rope.neox(), pos.asSlice(4L * lo), invSeg,
                        MemorySegment.ofArray(new float[2 * half])));
            }
            return;
        }
        pool.run((th, nt) -> {
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
        });
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
        boolean f16 = c.config().type() == KvCache.Type.F16;
        int d = c.kvDim();
        int n = batch.size();
        checkRows(k, n);
        checkRows(v, n);
        check(k.cols() >= d && v.cols() >= d && layer >= 0 && layer < c.config().layers(), "storeKv of " + k + " into layer " + layer);
        if (nk != null) {
            int eb = f16 ? 2 : 4;
            rowsOf(n, (lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    long at = c.positionIndex(layer, batch.sequence(i), batch.position(i)) * eb;
                    nk.storeRow(k.segment().asSlice(k.rowOffset(i)), c.keys().asSlice(at), d, f16);
                    nk.storeRow(v.segment().asSlice(v.rowOffset(i)), c.values().asSlice(at), d, f16);
                }
            });
            return;
        }
        pool.run((th, nt) -> {
            for (int i = WorkerPool.split(n, th, nt); i < WorkerPool.split(n, th + 1, nt); i++) {
                long at = c.positionIndex(layer, batch.sequence(i), batch.position(i));
                store(k.segment(), k.rowOffset(i), c.keys(), at, d, f16);
                store(v.segment(), v.rowOffset(i), c.values(), at, d, f16);
            }
        });
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

    private MemorySegment[] attendScratch = new MemorySegment[0];

    /** Attention in C: items are (entry, KV head) pairs, each attending with its whole group of query heads. */
    private void attentionNative(HostBuf q, HostKvCache c, int layer, int heads, int kvHeads, int headDim, Batch batch, HostBuf out) {
        boolean f16 = c.config().type() == KvCache.Type.F16;
        int eb = f16 ? 2 : 4;
        int group = heads / kvHeads;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        int n = batch.size();
        int items = n * kvHeads;
        int pageSize = c.pageSize();
        long slotBytes = (long) c.kvDim() * eb;
        long pageBytes = pageSize * slotBytes;
        long layerBase = c.index(layer, 0, 0) * eb;
        int perSeq = c.config().maxPagesPerSequence();
        MemorySegment table = MemorySegment.ofArray(c.pageTable());
        int maxLen = 1;
        for (int i = 0; i < n; i++) {
            maxLen = Math.max(maxLen, batch.position(i) + 1);
        }
        long need = nk.attendScratchBytes(maxLen, group, headDim);
        if (attendScratch.length < pool.threads()) {
            attendScratch = java.util.Arrays.copyOf(attendScratch, pool.threads());
        }
        for (int t = 0; t < pool.threads(); t++) {
            if (attendScratch[t] == null || attendScratch[t].byteSize() < need) {
                attendScratch[t] = arena.allocate(Math.max(need, attendScratch[t] == null ? 0 : 2 * attendScratch[t].byteSize()), 64);
            }
        }
        // short contexts are cheaper on the calling thread than handed over
        long work = (long) items * maxLen * group * headDim;
        WorkerPool.Task task = (th, nt) -> {
            MemorySegment scratch = attendScratch[th];
            for (int it = WorkerPool.split(items, th, nt); it < WorkerPool.split(items, th + 1, nt); it++) {
                int i = it / kvHeads;
                int kvh = it % kvHeads;
                long qOff = q.rowOffset(i) + 4L * kvh * group * headDim;
                long oOff = out.rowOffset(i) + 4L * kvh * group * headDim;
                long kvOff = layerBase + (long) kvh * headDim * eb;
                nk.attend(q.segment().asSlice(qOff), out.segment().asSlice(oOff), group, headDim, c.keys().asSlice(kvOff),
                        c.values().asSlice(kvOff), f16, table.asSlice(4L * batch.sequence(i) * perSeq), pageSize, pageBytes,
                        slotBytes, batch.position(i) + 1, scale, scratch);
            }
        };
        if (work < (1 << 16)) {
            task.run(0, 1);
        } else {
            pool.run(task);
        }
    }

    @Override
    public void attention(Buf qb, KvCache cache, int layer, int heads, int kvHeads, int headDim, Batch batch, Buf outb) {
        HostKvCache c = (HostKvCache) cache;
        HostBuf qh = (HostBuf) qb;
        HostBuf oh = (HostBuf) outb;
        int rows = batch.size();
        checkRows(qh, rows);
        checkRows(oh, rows);
        check(heads > 0 && kvHeads > 0 && headDim > 0 && heads % kvHeads == 0 && (long) heads * headDim <= qh.cols()
                && (long) heads * headDim <= oh.cols() && (long) kvHeads * headDim == c.kvDim() && layer >= 0 && layer < c.config().layers(),
                "attention of " + heads + "/" + kvHeads + " heads x " + headDim + " over " + qh + " and a cache of kvDim " + c.kvDim());
        // every entry's (sequence, position) was checked against its pages once for the step (Llama.step)
        if (nk != null && heads / kvHeads <= 64) {
            attentionNative((HostBuf) qb, c, layer, heads, kvHeads, headDim, batch, (HostBuf) outb);
            return;
        }
        HostBuf q = (HostBuf) qb;
        HostBuf out = (HostBuf) outb;
        boolean f16 = c.config().type() == KvCache.Type.F16;
        int group = heads / kvHeads;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        int items = batch.size() * heads;
        int pageSize = c.pageSize();
        pool.run((th, nt) -> {
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
        });
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
        int cols = a.cols();
        checkRows(a, n);
        checkRows(b, n);
        check(b.cols() == cols, "swiglu of " + a + " and " + b);
        if (nk != null) {
            rowsOf(n, (lo, hi) -> nk.swiglu(a.segment().asSlice(a.rowOffset(lo)), b.segment().asSlice(b.rowOffset(lo)), (long) (hi - lo) * cols));
            return;
        }
        pool.run((th, nt) -> {
            long total = (long) n * cols;
            long from = total * th / nt;
            long to = total * (th + 1) / nt;
            MemorySegment as = a.segment();
            MemorySegment bs = b.segment();
            for (long e = from; e < to; e++) {
                float g = as.getAtIndex(FLOAT, e);
                as.setAtIndex(FLOAT, e, g / (1f + (float) Math.exp(-g)) * bs.getAtIndex(FLOAT, e));
            }
        });
    }

    @Override
    public void add(Buf xb, Buf yb, int n) {
        HostBuf x = (HostBuf) xb;
        HostBuf y = (HostBuf) yb;
        checkRows(x, n);
        checkRows(y, n);
        check(x.cols() == y.cols(), "add of " + x + " and " + y);
        if (nk != null) {
            nk.add(x.segment(), y.segment(), (long) n * x.cols());
            return;
        }
        long total = (long) n * x.cols();
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        for (long e = 0; e < total; e++) {
            xs.setAtIndex(FLOAT, e, xs.getAtIndex(FLOAT, e) + ys.getAtIndex(FLOAT, e));
        }
    }

    @Override
    public void gather(Buf xb, int[] rows, int m, Buf outb) {
        HostBuf x = (HostBuf) xb;
        HostBuf out = (HostBuf) outb;
        for (int j = 0; j < m; j++) {
            MemorySegment.copy(x.segment(), x.rowOffset(rows[j]), out.segment(), out.rowOffset(j), 4L * x.cols());
        }
    }
}
