// The CPU ops on the C kernels of native/ (NativeKernels), with the Java ops for what the kernels do not take.
package cria.backend.cpu;

import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.HostKvCache;
import cria.backend.KvCache;
import cria.backend.Rope;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Every op through the native kernels. Two cases go to {@link JavaCpuOps} instead, decided by the
 * data and not by the path: products with a weight whose type or row length the kernels do not
 * take ({@link #runsNatively}), and attention with more than 64 query heads per KV head. The C
 * entry points take whole buffers plus the rows (or byte offsets) to work on, so that splitting
 * work over threads slices no segment.
 */
final class NativeCpuOps extends CpuOps {
    private static final int CHUNK_ROWS = 64;

    private final NativeKernels nk;
    private final JavaCpuOps javaOps;
    private final boolean[] supported = new boolean[GgmlType.values().length];
    private final Arena arena = Arena.ofShared();
    private final MemorySegment[] matmulScratch;
    private final MemorySegment[] attendScratch;
    private final MemorySegment[] ropeScratch;
    private MemorySegment act = MemorySegment.NULL;
    private final Map<Weight, MemorySegment> floatVectors = new IdentityHashMap<>();
    private int[] firstChunk = new int[8];
    private final AtomicInteger nextChunk = new AtomicInteger();
    // heap arrays the kernels read (critical downcalls), wrapped once per array rather than per call
    private double[] invArray;
    private MemorySegment invSeg;
    private int[] posArray;
    private MemorySegment posSeg;
    private int[] tableArray;
    private MemorySegment tableSeg;

    private final Rmsnorm rmsnorm = new Rmsnorm();
    private final QuantizeAct quantizeAct = new QuantizeAct();
    private final Matmul matmul = new Matmul();
    private final RopeRows rope = new RopeRows();
    private final StoreKv storeKv = new StoreKv();
    private final Attention attention = new Attention();
    private final Swiglu swiglu = new Swiglu();

    NativeCpuOps(WorkerPool pool, NativeKernels nk) {
        super(pool);
        this.nk = nk;
        this.javaOps = new JavaCpuOps(pool);
        for (GgmlType t : GgmlType.values()) {
            supported[t.ordinal()] = nk.supports(t.id());
        }
        this.matmulScratch = empty(pool.threads());
        this.attendScratch = empty(pool.threads());
        this.ropeScratch = empty(pool.threads());
    }

    private static MemorySegment[] empty(int n) {
        MemorySegment[] a = new MemorySegment[n];
        Arrays.fill(a, MemorySegment.NULL);
        return a;
    }

    @Override
    boolean runsNatively(GgmlType type, int cols) {
        return supported[type.ordinal()] && cols % groupOf(type) == 0;
    }

    private static int groupOf(GgmlType t) {
        return switch (t) {
            case F32, F16, BF16 -> 1;
            case Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL -> 64; // the kernels unpack pairs of 32-value blocks
            default -> 256; // super-blocks of 256 values
        };
    }

    @Override
    void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    /** seg, or a larger one (at least twice its size) when it holds fewer than bytes. */
    private MemorySegment grow(MemorySegment seg, long bytes) {
        if (seg.byteSize() >= bytes) {
            return seg;
        }
        return arena.allocate(Math.max(bytes, seg.byteSize() * 2), 64);
    }

    /**
     * A body over rows [lo, hi) that a call sets up through its fields: few rows run on the calling
     * thread (no hand-off), more are split over the pool.
     */
    private abstract static class Rows implements WorkerPool.Task {
        int n;

        abstract void rows(int th, int lo, int hi);

        @Override
        public final void run(int th, int nt) {
            int lo = WorkerPool.split(n, th, nt);
            int hi = WorkerPool.split(n, th + 1, nt);
            if (lo < hi) {
                rows(th, lo, hi);
            }
        }
    }

    private void rowsOf(Rows body, int n) {
        if (n <= 2) {
            body.rows(0, 0, n);
            return;
        }
        body.n = n;
        pool.run(body);
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
        r.g = floats(w);
        r.eps = eps;
        rowsOf(r, n);
    }

    private final class Rmsnorm extends Rows {
        HostBuf x;
        HostBuf out;
        MemorySegment g;
        float eps;

        @Override
        void rows(int th, int lo, int hi) {
            nk.rmsnorm(x.segment(), x.cols(), out.segment(), out.cols(), lo, hi, x.cols(), g, eps);
        }
    }

    /** A 1-D weight as floats: the mapped data itself for F32, else converted once. */
    private MemorySegment floats(Weight w) {
        Tensor t = w.tensor();
        if (t.type() == GgmlType.F32) {
            return t.data();
        }
        MemorySegment seg = floatVectors.get(w);
        if (seg == null) {
            float[] v = t.dequantizeRow(0);
            seg = arena.allocate(4L * v.length, 64);
            MemorySegment.copy(v, 0, seg, FLOAT, 0, v.length);
            floatVectors.put(w, seg);
        }
        return seg;
    }

    @Override
    public void matmul(Buf xb, int n, Weight[] ws, Buf[] outs) {
        for (Weight w : ws) {
            if (!runsNatively(w.type(), w.cols())) {
                javaOps.matmul(xb, n, ws, outs);
                return;
            }
        }
        HostBuf x = (HostBuf) xb;
        int k = ws[0].cols();
        checkRows(x, n);
        if (!(ws.length == outs.length && k <= x.cols())) {
            throw sizes("matmul of " + x + " by " + ws[0]);
        }
        boolean quantized = false;
        for (int j = 0; j < ws.length; j++) {
            HostBuf o = (HostBuf) outs[j];
            checkRows(o, n);
            if (!(ws[j].cols() == k && ws[j].rows() <= o.cols())) {
                throw sizes("matmul by " + ws[j] + " into " + o);
            }
            quantized |= ws[j].type().isQuantized();
        }
        // activations quantized once (when a weight needs it), then row slices per thread
        long actStride = nk.actRowBytes(k);
        if (quantized) {
            act = grow(act, actStride * n);
            QuantizeAct qa = quantizeAct;
            qa.x = x;
            qa.k = k;
            qa.act = act;
            qa.actStride = actStride;
            rowsOf(qa, n);
        }
        long scratchBytes = nk.scratchBytes(k, n);
        for (int t = 0; t < matmulScratch.length; t++) {
            matmulScratch[t] = grow(matmulScratch[t], scratchBytes);
        }
        // Work is handed out in chunks of 64 rows from a shared counter: a thread the host slows
        // down takes fewer chunks instead of holding the others up at the end.
        if (firstChunk.length < ws.length + 1) {
            firstChunk = new int[Math.max(ws.length + 1, 2 * firstChunk.length)];
        }
        for (int j = 0; j < ws.length; j++) {
            firstChunk[j + 1] = firstChunk[j] + (ws[j].rows() + CHUNK_ROWS - 1) / CHUNK_ROWS;
        }
        Matmul m = matmul;
        m.x = x;
        m.n = n;
        m.k = k;
        m.ws = ws;
        m.outs = outs;
        m.act = act;
        m.actStride = actStride;
        m.chunks = firstChunk[ws.length];
        nextChunk.set(0);
        pool.run(m);
    }

    private final class QuantizeAct extends Rows {
        HostBuf x;
        int k;
        MemorySegment act;
        long actStride;

        @Override
        void rows(int th, int lo, int hi) {
            nk.quantizeAct(x.segment(), x.cols(), lo, hi, k, act, actStride);
        }
    }

    /** The product's arguments; each thread takes 64-row chunks of the weights until none is left. */
    private final class Matmul implements WorkerPool.Task {
        HostBuf x;
        int n;
        int k;
        Weight[] ws;
        Buf[] outs;
        MemorySegment act;
        long actStride;
        int chunks;

        @Override
        public void run(int th, int nt) {
            int[] first = firstChunk;
            int c;
            while ((c = nextChunk.getAndIncrement()) < chunks) {
                int j = 0;
                while (first[j + 1] <= c) {
                    j++;
                }
                Tensor t = ws[j].tensor();
                int rows = Math.toIntExact(t.rows());
                int lo = (c - first[j]) * CHUNK_ROWS;
                int hi = Math.min(rows, lo + CHUNK_ROWS);
                HostBuf out = (HostBuf) outs[j];
                boolean q = t.type().isQuantized();
                int rc = nk.matmul(t.type().id(), t.data(), t.rowBytes(), lo, hi, k, q ? act : x.segment(),
                        q ? actStride : x.cols(), n, out.segment(), out.cols(), matmulScratch[th]);
                if (rc != 0) {
                    throw new IllegalStateException("native matmul refused " + t);
                }
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
        if (inv != invArray) {
            invArray = inv;
            invSeg = MemorySegment.ofArray(inv);
        }
        for (int t = 0; t < ropeScratch.length; t++) {
            ropeScratch[t] = grow(ropeScratch[t], 8L * half);
        }
        RopeRows r = this.rope;
        r.headDim = headDim;
        r.dims = rope.dims();
        r.neox = rope.neox();
        r.pos = positions(batch);
        r.inv = invSeg;
        r.x = q;
        rowsOf(r, n);
        r.x = k;
        rowsOf(r, n);
    }

    private MemorySegment positions(Batch batch) {
        int[] p = batch.positions();
        if (p != posArray) {
            posArray = p;
            posSeg = MemorySegment.ofArray(p);
        }
        return posSeg;
    }

    private final class RopeRows extends Rows {
        HostBuf x;
        int headDim;
        int dims;
        boolean neox;
        MemorySegment pos;
        MemorySegment inv;

        @Override
        void rows(int th, int lo, int hi) {
            nk.rope(x.segment(), x.cols(), lo, hi, x.cols() / headDim, headDim, dims, neox, pos, inv, ropeScratch[th]);
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
        s.f16 = c.config().type() == KvCache.Type.F16;
        rowsOf(s, n);
    }

    private final class StoreKv extends Rows {
        HostKvCache c;
        int layer;
        HostBuf k;
        HostBuf v;
        Batch batch;
        boolean f16;

        @Override
        void rows(int th, int lo, int hi) {
            int eb = f16 ? 2 : 4;
            int d = c.kvDim();
            for (int i = lo; i < hi; i++) {
                long at = c.positionIndex(layer, batch.sequence(i), batch.position(i)) * eb;
                nk.storeRow(k.segment(), k.rowOffset(i), c.keys(), at, d, f16);
                nk.storeRow(v.segment(), v.rowOffset(i), c.values(), at, d, f16);
            }
        }
    }

    @Override
    public void attention(Buf qb, KvCache cache, int layer, int heads, int kvHeads, int headDim, Batch batch, Buf outb) {
        HostKvCache c = (HostKvCache) cache;
        HostBuf q = (HostBuf) qb;
        HostBuf out = (HostBuf) outb;
        int n = batch.size();
        checkRows(q, n);
        checkRows(out, n);
        if (!(heads > 0 && kvHeads > 0 && headDim > 0 && heads % kvHeads == 0 && (long) heads * headDim <= q.cols()
                && (long) heads * headDim <= out.cols() && (long) kvHeads * headDim == c.kvDim() && layer >= 0 && layer < c.config().layers())) {
            throw sizes("attention of " + heads + "/" + kvHeads + " heads x " + headDim + " over " + q + " and a cache of kvDim " + c.kvDim());
        }
        // every entry's (sequence, position) was checked against its pages once for the step (Llama.step)
        int group = heads / kvHeads;
        if (group > 64) {
            javaOps.attention(qb, cache, layer, heads, kvHeads, headDim, batch, outb);
            return;
        }
        boolean f16 = c.config().type() == KvCache.Type.F16;
        int eb = f16 ? 2 : 4;
        int maxLen = 1;
        for (int i = 0; i < n; i++) {
            maxLen = Math.max(maxLen, batch.position(i) + 1);
        }
        long need = nk.attendScratchBytes(maxLen, group, headDim);
        for (int t = 0; t < attendScratch.length; t++) {
            attendScratch[t] = grow(attendScratch[t], need);
        }
        int[] table = c.pageTable();
        if (table != tableArray) {
            tableArray = table;
            tableSeg = MemorySegment.ofArray(table);
        }
        Attention a = attention;
        a.q = q;
        a.out = out;
        a.c = c;
        a.batch = batch;
        a.kvHeads = kvHeads;
        a.group = group;
        a.headDim = headDim;
        a.f16 = f16;
        a.eb = eb;
        a.scale = (float) (1.0 / Math.sqrt(headDim));
        a.items = n * kvHeads;
        a.slotBytes = (long) c.kvDim() * eb;
        a.layerBase = c.index(layer, 0, 0) * eb;
        a.table = tableSeg;
        // short contexts are cheaper on the calling thread than handed over
        long work = (long) a.items * maxLen * group * headDim;
        if (work < (1 << 16)) {
            a.run(0, 1);
        } else {
            pool.run(a);
        }
    }

    /** Attention in C: items are (entry, KV head) pairs, each attending with its whole group of query heads. */
    private final class Attention implements WorkerPool.Task {
        HostBuf q;
        HostBuf out;
        HostKvCache c;
        Batch batch;
        int kvHeads;
        int group;
        int headDim;
        boolean f16;
        int eb;
        float scale;
        int items;
        long slotBytes;
        long layerBase;
        MemorySegment table;

        @Override
        public void run(int th, int nt) {
            MemorySegment scratch = attendScratch[th];
            int pageSize = c.pageSize();
            long pageBytes = pageSize * slotBytes;
            int perSeq = c.config().maxPagesPerSequence();
            for (int it = WorkerPool.split(items, th, nt); it < WorkerPool.split(items, th + 1, nt); it++) {
                int i = it / kvHeads;
                int kvh = it % kvHeads;
                long qOff = q.rowOffset(i) + 4L * kvh * group * headDim;
                long oOff = out.rowOffset(i) + 4L * kvh * group * headDim;
                long kvOff = layerBase + (long) kvh * headDim * eb;
                nk.attend(q.segment(), qOff, out.segment(), oOff, group, headDim, c.keys(), c.values(), kvOff, f16, table,
                        (long) batch.sequence(i) * perSeq, pageSize, pageBytes, slotBytes, batch.position(i) + 1, scale, scratch);
            }
        }
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
        rowsOf(s, n);
    }

    private final class Swiglu extends Rows {
        HostBuf a;
        HostBuf b;

        @Override
        void rows(int th, int lo, int hi) {
            long cols = a.cols();
            nk.swiglu(a.segment(), b.segment(), lo * cols, hi * cols);
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
        nk.add(x.segment(), y.segment(), (long) n * x.cols());
    }
}
