// The CPU ops on the C kernels of native/ (NativeKernels), with the Java ops for what the kernels do not take.
package cria.backend.cpu;

import cria.backend.Batch;
import cria.backend.HostBuf;
import cria.backend.HostKvCache;
import cria.backend.KvCache;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * What every op computes, through the native kernels; the entry points, checks and row-wise
 * tasks are {@link CpuOps}'s. Two cases go to {@link JavaCpuOps} instead, decided by the
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
    // the current product's activations, quantized once for its quantized weights, and their row stride
    private MemorySegment act = MemorySegment.NULL;
    private long actStride;
    private final Map<Weight, MemorySegment> floatVectors = new IdentityHashMap<>();
    // quantized weights in the kernels' panel layout (MemorySegment.NULL: not packed), made on first use
    private final Map<Weight, MemorySegment> packed = new IdentityHashMap<>();
    private final boolean packing = !"false".equals(System.getProperty("cria.pack"));
    private long packedTotal;
    private final Pack packTask = new Pack();
    private int[] firstChunk = new int[8];
    // per thread, the chunks of its own run still to do: first (high 32 bits) and end (low 32 bits)
    private final AtomicLongArray runs;
    // heap arrays the kernels read (critical downcalls), wrapped once per array rather than per call
    private double[] invArray;
    private MemorySegment invSeg;
    private int[] posArray;
    private MemorySegment posSeg;
    private int[] tableArray;
    private MemorySegment tableSeg;

    // rmsnorm's weight as floats, set on the calling thread before the rows run
    private MemorySegment gains;

    private final QuantizeAct quantizeAct = new QuantizeAct();

    NativeCpuOps(WorkerPool pool, NativeKernels nk) {
        super(pool);
        this.nk = nk;
        this.javaOps = new JavaCpuOps(pool);
        for (GgmlType t : GgmlType.values()) {
            supported[t.ordinal()] = nk.supports(t.id());
        }
        this.matmulScratch = empty(pool.threads());
        this.runs = new AtomicLongArray(pool.threads());
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

    /** A few rows run on the calling thread: one C call there costs less than handing the work over. */
    @Override
    void runRows(WorkerPool.Task body, int n) {
        if (n <= 2) {
            body.run(0, 1);
        } else {
            pool.run(body);
        }
    }

    @Override
    void prepare(Rmsnorm r) {
        gains = floats(r.w);
    }

    @Override
    void rmsnormRows(Rmsnorm r, int th, int lo, int hi) {
        HostBuf x = r.x;
        nk.rmsnorm(x.segment(), x.cols(), r.out.segment(), r.out.cols(), lo, hi, x.cols(), gains, r.eps);
    }

    @Override
    void prepare(HeadNorm h) {
        gains = floats(h.w);
    }

    /** The heads are rows of headDim values to the C rmsnorm (x's rows are contiguous). */
    @Override
    void headNormRows(HeadNorm h, int th, int lo, int hi) {
        MemorySegment seg = h.x.segment();
        nk.rmsnorm(seg, h.headDim, seg, h.headDim, lo, hi, h.headDim, gains, h.eps);
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
    void product(Matmul m) {
        Weight[] ws = m.ws;
        int n = m.n;
        boolean quantized = false;
        for (Weight w : ws) {
            if (!runsNatively(w.type(), w.cols())) {
                javaOps.matmul(m.x, n, ws, m.outs);
                return;
            }
            quantized |= w.type().isQuantized();
        }
        int k = ws[0].cols();
        if (packs.length < ws.length) {
            packs = new MemorySegment[Math.max(ws.length, 2 * packs.length)];
        }
        for (int j = 0; j < ws.length; j++) {
            packs[j] = packedOf(ws[j]);
        }
        // activations quantized once (when a weight needs it), then row slices per thread
        actStride = nk.actRowBytes(k);
        if (quantized) {
            act = grow(act, actStride * n);
            quantizeAct.x = m.x;
            quantizeAct.k = k;
            quantizeAct.n = n;
            runRows(quantizeAct, n);
        }
        long scratchBytes = nk.scratchBytes(k, n);
        for (int t = 0; t < matmulScratch.length; t++) {
            matmulScratch[t] = grow(matmulScratch[t], scratchBytes);
        }
        // The products' rows, in chunks of 64, are cut into one contiguous run per thread, so that
        // each thread streams its weights front to back (the prefetchers follow one stream; taking
        // every other chunk broke it at each chunk). A thread done with its run takes chunks from
        // the back of another's: one the host slows down does fewer instead of holding the others up.
        if (firstChunk.length < ws.length + 1) {
            firstChunk = new int[Math.max(ws.length + 1, 2 * firstChunk.length)];
        }
        for (int j = 0; j < ws.length; j++) {
            firstChunk[j + 1] = firstChunk[j] + (ws[j].rows() + CHUNK_ROWS - 1) / CHUNK_ROWS;
        }
        int chunks = firstChunk[ws.length], nt = runs.length();
        for (int t = 0; t < nt; t++) {
            runs.set(t, run(WorkerPool.split(chunks, t, nt), WorkerPool.split(chunks, t + 1, nt)));
        }
        pool.run(m);
    }

    // the current product's packed weights (index as m.ws), set on the calling thread before the chunks run
    private MemorySegment[] packs = new MemorySegment[8];

    /**
     * The weight in the kernels' panel layout, packed on first use (in parallel), or
     * MemorySegment.NULL when it stays as it is: a type the kernels cannot pack, a weight that may
     * change (only read-only mapped data is packed: training writes its weights), packing turned
     * off ({@code -Dcria.pack=false}), or no room. Decode reads every weight once per token, and
     * building the panels from 16 scattered rows was most of its time; packed, a product reads one
     * stream. The results are the same, bit for bit. The copy costs as much memory as the weight.
     */
    private MemorySegment packedOf(Weight w) {
        MemorySegment seg = packed.get(w);
        if (seg != null) {
            return seg;
        }
        seg = MemorySegment.NULL;
        Tensor t = w.tensor();
        if (packing && t.type().isQuantized() && t.data().isReadOnly()) {
            long bytes = nk.packedBytes(t.type().id(), w.rows(), w.cols());
            if (bytes > 0 && roomFor(bytes)) {
                try {
                    seg = packedSpace(bytes); // huge pages: the product streams it once per token
                    if (seg == null) {
                        throw new OutOfMemoryError();
                    }
                    packTask.t = t;
                    packTask.into = seg;
                    packTask.n = w.rows() / 16;
                    pool.run(packTask);
                    packedTotal += bytes;
                    if (t.data().isMapped()) {
                        t.data().unload(); // the file's pages of this weight are not read again: resident memory counts the copy once
                    }
                } catch (OutOfMemoryError e) {
                    seg = MemorySegment.NULL; // no room after all: the weight is read as it is
                } finally {
                    packTask.t = null;
                    packTask.into = null;
                }
            }
        }
        packed.put(w, seg);
        return seg;
    }

    // Packed copies go one after another into large mappings that start on a 2 MiB boundary, so
    // that they sit on huge pages: a mapping of its own per weight was mostly 4 KiB pages (a
    // layer's matrices are a few MiB, and a mapping's unaligned ends never get a huge page), and a
    // product's stream then crossed a page, and needed a TLB entry, every 4 KiB. The rest of a
    // region is only reserved: pages never written take no memory.
    private static final long HUGE = 2L << 20;
    private static final long REGION = 1L << 30;
    private MemorySegment region;
    private long regionUsed;

    /** bytes of fresh memory for a packed copy, 64-byte aligned, in the current region or a new one; null when there is none. */
    private MemorySegment packedSpace(long bytes) {
        long need = (bytes + 63) & ~63L;
        if (region == null || regionUsed + need > region.byteSize()) {
            long size = Math.max(REGION, (need + HUGE - 1) / HUGE * HUGE) + HUGE;
            MemorySegment raw = nk.mapHuge(size, arena);
            if (raw == null) {
                size = (need + HUGE - 1) / HUGE * HUGE + HUGE; // no room to reserve a whole region: just this copy
                raw = nk.mapHuge(size, arena);
                if (raw == null) {
                    return null;
                }
            }
            long skip = (HUGE - raw.address() % HUGE) % HUGE;
            region = raw.asSlice(skip, size - HUGE);
            regionUsed = 0;
        }
        MemorySegment seg = region.asSlice(regionUsed, bytes);
        regionUsed += need;
        return seg;
    }

    /** Bytes of packed weights held. */
    long packedBytes() {
        return packedTotal;
    }

    /** Whether another packed copy of this many bytes leaves the system at least 1 GiB of available memory. */
    private boolean roomFor(long bytes) {
        long available = MemInfo.availableBytes();
        return available < 0 || bytes + (1L << 30) <= available;
    }

    /** Packs panels [lo, hi) of one weight. */
    private final class Pack extends Rows {
        Tensor t;
        MemorySegment into;

        @Override
        void rows(int th, int lo, int hi) {
            if (nk.pack(t.type().id(), t.data(), t.rowBytes(), lo, hi, t.rowLength(), into) != 0) {
                throw new IllegalStateException("native pack refused " + t);
            }
        }
    }

    /** Rows [lo, hi) of x quantized into act, for the products' quantized weights. */
    private final class QuantizeAct extends Rows {
        HostBuf x;
        int k;

        @Override
        void rows(int th, int lo, int hi) {
            nk.quantizeAct(x.segment(), x.cols(), lo, hi, k, act, actStride);
        }
    }

    private static long run(int first, int end) {
        return (long) first << 32 | (end & 0xFFFF_FFFFL);
    }

    /** The next chunk for thread th: the front of its own run, else the back of another's; -1 when none is left. */
    private int claim(int th) {
        for (;;) {
            long v = runs.get(th);
            int first = (int) (v >>> 32), end = (int) v;
            if (first >= end) {
                break;
            }
            if (runs.compareAndSet(th, v, run(first + 1, end))) {
                return first;
            }
        }
        int nt = runs.length();
        for (int i = 1; i < nt; i++) {
            int o = (th + i) % nt;
            for (;;) {
                long v = runs.get(o);
                int first = (int) (v >>> 32), end = (int) v;
                if (first >= end) {
                    break;
                }
                if (runs.compareAndSet(o, v, run(first, end - 1))) {
                    return end - 1;
                }
            }
        }
        return -1;
    }

    /** Each thread takes 64-row chunks of the weights, its own run first, until none is left. */
    @Override
    void productShare(Matmul m, int th, int nt) {
        int[] first = firstChunk;
        int k = m.ws[0].cols();
        HostBuf x = m.x;
        int c;
        while ((c = claim(th)) >= 0) {
            int j = 0;
            while (first[j + 1] <= c) {
                j++;
            }
            Tensor t = m.ws[j].tensor();
            int rows = Math.toIntExact(t.rows());
            int lo = (c - first[j]) * CHUNK_ROWS;
            int hi = Math.min(rows, lo + CHUNK_ROWS);
            HostBuf out = (HostBuf) m.outs[j];
            boolean q = t.type().isQuantized();
            MemorySegment pk = packs[j];
            int rc = pk != MemorySegment.NULL
                    ? nk.matmulPacked(t.type().id(), t.data(), t.rowBytes(), pk, lo, hi, k, act, actStride, m.n, out.segment(),
                            out.cols(), matmulScratch[th])
                    : nk.matmul(t.type().id(), t.data(), t.rowBytes(), lo, hi, k, q ? act : x.segment(),
                            q ? actStride : x.cols(), m.n, out.segment(), out.cols(), matmulScratch[th]);
            if (rc != 0) {
                throw new IllegalStateException("native matmul refused " + t);
            }
        }
    }

    @Override
    void prepare(RopeRows r) {
        if (r.inv != invArray) {
            invArray = r.inv;
            invSeg = MemorySegment.ofArray(r.inv);
        }
        for (int t = 0; t < ropeScratch.length; t++) {
            ropeScratch[t] = grow(ropeScratch[t], 8L * (r.rope.dims() / 2));
        }
        int[] p = r.batch.positions();
        if (p != posArray) {
            posArray = p;
            posSeg = MemorySegment.ofArray(p);
        }
    }

    /** Both q and k over the same rows, in one hand-over. */
    @Override
    void ropeRows(RopeRows r, int th, int lo, int hi) {
        rope(r.q, r, th, lo, hi);
        rope(r.k, r, th, lo, hi);
    }

    private void rope(HostBuf x, RopeRows r, int th, int lo, int hi) {
        int headDim = r.headDim;
        nk.rope(x.segment(), x.cols(), lo, hi, x.cols() / headDim, headDim, r.rope.dims(), r.rope.neox(), posSeg, invSeg,
                ropeScratch[th]);
    }

    /** One row of k or v into the cache (idx counts elements; the kernel takes bytes). */
    @Override
    void storeRow(MemorySegment src, long off, MemorySegment dst, long idx, int d, boolean f16) {
        nk.storeRow(src, off, dst, idx * (f16 ? 2 : 4), d, f16);
    }

    @Override
    void attend(Attention a) {
        HostKvCache c = a.c;
        Batch batch = a.batch;
        int n = batch.size();
        int group = a.group();
        if (group > 64) {
            javaOps.attention(a.q, c, a.layer, a.heads, a.kvHeads, a.headDim, a.spec, batch, a.out);
            return;
        }
        int maxLen = 1;  // the most positions one entry attends (its window, when there is one)
        for (int i = 0; i < n; i++) {
            maxLen = Math.max(maxLen, batch.position(i) + 1 - a.spec.firstKey(batch.position(i)));
        }
        long need = nk.attendScratchBytes(maxLen, group, a.headDim);
        for (int t = 0; t < attendScratch.length; t++) {
            attendScratch[t] = grow(attendScratch[t], need);
        }
        int[] table = c.pageTable();
        if (table != tableArray) {
            tableArray = table;
            tableSeg = MemorySegment.ofArray(table);
        }
        // short contexts are cheaper on the calling thread than handed over
        long work = (long) n * a.kvHeads * maxLen * group * a.headDim;
        if (work < (1 << 16)) {
            a.run(0, 1);
        } else {
            pool.run(a);
        }
    }

    /** Attention in C: items are (entry, KV head) pairs, each attending with its whole group of query heads. */
    @Override
    void attentionShare(Attention a, int th, int nt) {
        HostKvCache c = a.c;
        int kvHeads = a.kvHeads;
        int group = a.group();
        int headDim = a.headDim;
        boolean f16 = a.f16();
        int eb = f16 ? 2 : 4;
        float scale = a.scale();
        float softcap = a.spec.softcap();
        int items = a.batch.size() * kvHeads;
        long slotBytes = (long) c.kvDim() * eb;
        long layerBase = c.index(a.layer, 0, 0) * eb;
        MemorySegment scratch = attendScratch[th];
        int pageSize = c.pageSize();
        long pageBytes = pageSize * slotBytes;
        int perSeq = c.config().maxPagesPerSequence();
        for (int it = WorkerPool.split(items, th, nt); it < WorkerPool.split(items, th + 1, nt); it++) {
            int i = it / kvHeads;
            int kvh = it % kvHeads;
            long qOff = a.q.rowOffset(i) + 4L * kvh * group * headDim;
            long oOff = a.out.rowOffset(i) + 4L * kvh * group * headDim;
            long kvOff = layerBase + (long) kvh * headDim * eb;
            int pos = a.batch.position(i);
            nk.attend(a.q.segment(), qOff, a.out.segment(), oOff, group, headDim, c.keys(), c.values(), kvOff, f16, tableSeg,
                    (long) a.batch.sequence(i) * perSeq, pageSize, pageBytes, slotBytes, a.spec.firstKey(pos), pos + 1, scale, softcap,
                    scratch);
        }
    }

    @Override
    void swigluElements(MemorySegment a, MemorySegment b, long from, long to) {
        nk.swiglu(a, b, from, to);
    }

    @Override
    void gegluElements(MemorySegment a, MemorySegment b, long from, long to) {
        nk.geglu(a, b, from, to);
    }

    @Override
    void addElements(MemorySegment x, MemorySegment y, long count) {
        nk.add(x, y, count);
    }
}
