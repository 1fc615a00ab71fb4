// The CUDA implementation of every op: checks shapes on the host, then queues one kernel (or two) per op.
package cria.backend.cuda;

import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.KvCache;
import cria.backend.Ops;
import cria.backend.Rope;
import cria.backend.Weight;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Ops on device buffers. Work is queued on the backend's stream and never waited for here; data
 * reaches the host only through {@link CudaBackend#download}. The batch (tokens, positions,
 * sequences, logit rows) crosses once per step: {@link #beginStep} copies it through pinned
 * memory into one device array, and every op of the step reads it there. An op given a batch
 * other than the current step's uploads it first, so ops also work without beginStep (tests);
 * {@link #endStep} forgets the batch, so a reused Batch object is uploaded afresh next step.
 * Semantics are {@code cria.backend.ref.RefOps}'s, within float rounding.
 * <p>Fusion: a product and a rope are held back one op ({@link #flush} launches them). When the
 * next op consumes exactly their output, one kernel does both: rope then storeKv of the same k
 * (ropekv), a one-weight product then add into another buffer (gemv with the add), a gate/up
 * product then swiglu of its two outputs (gemv with SwiGLU). An rmsnorm (f32 weights, not in
 * place) is held back too and folded into the gemv that reads its output. Every output of the separate ops is
 * still written, so the results are the same; anything else (another op, a download, endStep)
 * launches what is held first.
 */
public final class CudaOps implements Ops {
    private final CudaBackend backend;
    private final LaunchRecorder gpu;
    private final Kernels k;
    private final DecodeGraphs graphs;
    private final Map<Rope, Long> ropeTables = new IdentityHashMap<>();
    final CudaTuning tuning = new CudaTuning();
    private final Products products;
    // at most one op held back for fusion with the next
    private PendingRope pendingRope;
    private PendingMatmul pendingMatmul;
    private Products.Norm pendingNorm;

    private record PendingRope(CudaBuf q, CudaBuf k, int headDim, Batch batch, Rope rope) {}

    /** A product of x (with norm: x is the norm's output, computed on the way in). */
    private record PendingMatmul(CudaBuf x, int n, CudaWeight[] ws, CudaBuf[] outs, Products.Norm norm) {}

    // the current step's batch on the device: tokens, positions, sequences, logit rows; cap ints each
    private Batch current;
    private boolean stepActive;  // between beginStep and endStep: the batch does not change
    private int batchCap;
    private long batchDev;
    private Gpu.Staging batchStaging;
    // rows given to gather() that are not the current step's logit rows
    private int gatherCap;
    private long gatherDev;
    private Gpu.Staging gatherStaging;

    CudaOps(CudaBackend backend, LaunchRecorder gpu, Kernels kernels) {
        this.backend = backend;
        this.gpu = gpu;
        this.k = kernels;
        this.graphs = new DecodeGraphs(gpu.device(), tuning);
        gpu.beforeQueue(this::flush);  // a copy, download or free never overtakes an op held back for fusion
        this.products = new Products(kernels, tuning);
    }

    DecodeGraphs graphs() {
        return graphs;
    }

    /** Launches the op held back for fusion, if any (before anything reads its output). */
    void flush() {
        if (pendingRope != null) {
            PendingRope p = pendingRope;
            pendingRope = null;
            need(p.batch());
            k.rope.rope(p.rope().neox(), p.q().ptr(), p.q().cols(), p.q().cols() / p.headDim(), p.k().ptr(), p.k().cols(),
                    p.k().cols() / p.headDim(), p.headDim(), p.rope().dims(), positions(), invFreq(p.rope()), p.batch().size());
        }
        if (pendingNorm != null) {
            Products.Norm m = pendingNorm;
            pendingNorm = null;
            products.runNorm(m);
        }
        if (pendingMatmul != null) {
            PendingMatmul p = pendingMatmul;
            pendingMatmul = null;
            products.run(p.x(), p.n(), p.ws(), p.outs(), p.norm());
        }
    }

    private static CudaBuf buf(Buf b) {
        return (CudaBuf) b;
    }

    private CudaWeight weight(Weight w) {
        CudaWeight cw = (CudaWeight) w;
        if (!cw.isResident()) {
            backend.commitWeights();
        }
        return cw;
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalArgumentException(what);
        }
    }

    // ---- the batch on the device -------------------------------------------------------------

    @Override
    public void beginStep(Batch batch, KvCache cache) {
        flush();
        upload(batch);
        stepActive = true;
        if (cache != null) {
            ((CudaKvCache) cache).syncTable();
        }
        if (tuning.graphs && batch.size() <= tuning.graphMaxBatch) {
            gpu.startRecording();  // the step's launches become (or replay) a CUDA graph at endStep
        }
    }

    @Override
    public void endStep() {
        flush();
        List<LaunchRecorder.Launch> step = gpu.stopRecording();
        if (step != null && !step.isEmpty()) {
            graphs.run(step);
        }
        current = null;
        stepActive = false;
        k.flash.forget();
    }

    private void upload(Batch b) {
        if (b.capacity() > batchCap) {
            if (batchDev != 0) {
                batchStaging.awaitIdle();
                gpu.synchronize();
                gpu.free(batchDev);
            }
            batchCap = b.capacity();
            batchDev = gpu.malloc(16L * batchCap, "the batch");
            batchStaging = gpu.staging(16L * batchCap);
        }
        batchStaging.awaitIdle();
        MemorySegment s = batchStaging.segment();
        long cap = 4L * batchCap;
        MemorySegment.copy(b.tokens(), 0, s, ValueLayout.JAVA_INT, 0, b.size());
        MemorySegment.copy(b.positions(), 0, s, ValueLayout.JAVA_INT, cap, b.size());
        MemorySegment.copy(b.sequences(), 0, s, ValueLayout.JAVA_INT, 2 * cap, b.size());
        MemorySegment.copy(b.logitEntries(), 0, s, ValueLayout.JAVA_INT, 3 * cap, b.logitCount());
        gpu.uploadAsync(batchDev, batchStaging, 0, 4 * cap);
        current = b;
        k.flash.forget();  // its tiles described another batch
    }

    private void need(Batch b) {
        if (b != current) {
            upload(b);
        }
    }

    private long tokens() {
        return batchDev;
    }

    public long positions() {
        return batchDev + 4L * batchCap;
    }

    public long sequences() {
        return batchDev + 8L * batchCap;
    }

    private long logitRows() {
        return batchDev + 12L * batchCap;
    }

    // ---- ops ---------------------------------------------------------------------------------

    @Override
    public void embed(Weight table, Batch batch, Buf x) {
        flush();
        CudaWeight t = weight(table);
        CudaBuf out = buf(x);
        int n = batch.size();
        for (int i = 0; i < n; i++) {
            int tok = batch.token(i);
            if (tok < 0 || tok >= t.rows()) {
                throw new IllegalArgumentException("token id " + tok + " outside the vocabulary of " + t.rows());
            }
        }
        check(out.cols() == t.cols() && out.rows() >= n, "embed into " + out + " from " + t);
        if (n == 0) {
            return;
        }
        need(batch);
        k.embed.embed(t.type(), t.ptr(), t.cols(), tokens(), n, out.ptr(), out.cols());
    }

    @Override
    public void rmsnorm(Buf xb, Weight w, float eps, int n, Buf outb) {
        flush();
        CudaBuf x = buf(xb);
        CudaBuf out = buf(outb);
        CudaWeight g = weight(w);
        check(RmsnormKernels.supports(g.type()), "rmsnorm weight " + g + ": expected F32, F16 or BF16");
        check(g.cols() == x.cols() && out.cols() == x.cols() && x.rows() >= n && out.rows() >= n,
                "rmsnorm of " + x + " into " + out + " with " + g);
        if (n > 0 && tuning.fuse && n <= GemvKernels.MAX_BATCH && Products.foldable(g, x, out)) {
            pendingNorm = new Products.Norm(x, g, eps, out, n);  // the next product may read x through it
            return;
        }
        if (n > 0) {
            k.rmsnorm.rmsnorm(x.ptr(), x.cols(), g.type(), g.ptr(), eps, x.cols(), n, out.ptr(), out.cols());
        }
    }

    @Override
    public void matmul(Buf xb, int n, Weight[] ws, Buf[] outs) {
        CudaBuf x = buf(xb);
        Products.Norm norm = null;
        if (pendingNorm != null && pendingNorm.out() == x && pendingNorm.n() == n) {
            norm = pendingNorm;  // x = rmsnorm(...): the product computes it on the way in
            pendingNorm = null;
        }
        flush();
        check(ws.length == outs.length, "matmul: " + ws.length + " weights, " + outs.length + " outputs");
        CudaWeight[] w = new CudaWeight[ws.length];
        CudaBuf[] o = new CudaBuf[outs.length];
        for (int j = 0; j < ws.length; j++) {
            w[j] = weight(ws[j]);
            o[j] = buf(outs[j]);
            check(x.cols() >= w[j].cols() && x.rows() >= n && o[j].cols() >= w[j].rows() && o[j].rows() >= n,
                    "matmul of " + x + " by " + w[j] + " into " + o[j]);
        }
        if (n == 0) {
            if (norm != null) {
                products.runNorm(norm);
            }
            return;
        }
        if (tuning.fuse && (ws.length == 1 || ws.length == 2)) {
            pendingMatmul = new PendingMatmul(x, n, w, o, norm);  // the next op may be its add or swiglu
        } else {
            products.run(x, n, w, o, norm);
        }
    }

    /** The rope's inverse frequencies on the device, uploaded once per Rope object. */
    private long invFreq(Rope rope) {
        Long p = ropeTables.get(rope);
        if (p == null) {
            double[] f = rope.inverseFrequencies();
            p = backend.persistent(8L * Math.max(1, f.length), "the rope frequencies");
            gpu.upload(p, MemorySegment.ofArray(f), 8L * f.length);
            ropeTables.put(rope, p);
        }
        return p;
    }

    @Override
    public void rope(Buf qb, Buf kb, int headDim, Batch batch, Rope rope) {
        CudaBuf q = buf(qb);
        CudaBuf kk = buf(kb);
        int n = batch.size();
        check(q.cols() % headDim == 0 && kk.cols() % headDim == 0 && rope.dims() <= headDim && rope.dims() % 2 == 0,
                "rope of " + q + " and " + kk + " with head size " + headDim + " and " + rope.dims() + " rotated dims");
        check(q.rows() >= n && kk.rows() >= n, "rope of " + n + " rows in " + q + ", " + kk);
        flush();
        if (n == 0 || rope.dims() == 0) {
            return;
        }
        pendingRope = new PendingRope(q, kk, headDim, batch, rope);
        if (!tuning.fuse) {
            flush();
        }
    }

    @Override
    public void storeKv(KvCache cache, int layer, Buf kb, Buf vb, Batch batch) {
        CudaKvCache c = (CudaKvCache) cache;
        CudaBuf kk = buf(kb);
        CudaBuf v = buf(vb);
        int n = batch.size();
        check(kk.cols() >= c.kvDim() && v.cols() >= c.kvDim() && kk.rows() >= n && v.rows() >= n,
                "storeKv of " + kk + ", " + v + " into a cache of kvDim " + c.kvDim());
        check(layer >= 0 && layer < c.config().layers(), "storeKv into layer " + layer);
        for (int i = 0; i < n; i++) {
            int pos = batch.position(i);
            if (pos < 0 || pos >= c.capacity(batch.sequence(i))) {
                throw new IllegalArgumentException("position " + pos + " of sequence " + batch.sequence(i)
                        + " has no page; reserve it in the cache first");
            }
        }
        PendingRope pr = pendingRope;
        if (pr != null && pr.k() == kk && pr.batch() == batch && kk.cols() == c.kvDim() && n > 0) {
            pendingRope = null;  // one kernel: rope q and k, then store k and v
            need(batch);
            c.syncTable();
            KvCache.Config g = c.config();
            k.ropeKv.ropeStore(new RopeKvKernels.Call(pr.rope().neox(), pr.q().ptr(), pr.q().cols(), pr.q().cols() / pr.headDim(),
                    kk.ptr(), kk.cols(), kk.cols() / pr.headDim(), v.ptr(), v.cols(), pr.headDim(), pr.rope().dims(), positions(),
                    invFreq(pr.rope()), n, c.isF16(), c.keys(), c.values(), sequences(), c.table(), g.maxPagesPerSequence(),
                    g.pageSize(), g.pages(), layer, c.kvDim()));
            return;
        }
        flush();
        if (n == 0) {
            return;
        }
        need(batch);
        c.syncTable();
        KvCache.Config g = c.config();
        k.storeKv.store(c.isF16(), c.keys(), c.values(), kk.ptr(), kk.cols(), v.ptr(), v.cols(), c.kvDim(), positions(),
                sequences(), c.table(), g.maxPagesPerSequence(), g.pageSize(), g.pages(), layer, n);
    }

    @Override
    public void attention(Buf qb, KvCache cache, int layer, int heads, int kvHeads, int headDim, Batch batch, Buf outb) {
        flush();
        CudaKvCache c = (CudaKvCache) cache;
        CudaBuf q = buf(qb);
        CudaBuf out = buf(outb);
        int n = batch.size();
        check(kvHeads > 0 && heads % kvHeads == 0, heads + " query heads cannot share " + kvHeads + " KV heads");
        check(headDim > 0 && headDim <= AttentionKernels.MAX_HEAD_DIM, "head size " + headDim
                + " is beyond the CUDA attention kernel's " + AttentionKernels.MAX_HEAD_DIM);
        check(c.kvDim() == kvHeads * headDim, "cache kvDim " + c.kvDim() + " != " + kvHeads + " x " + headDim);
        check(q.cols() >= heads * headDim && out.cols() >= heads * headDim && q.rows() >= n && out.rows() >= n,
                "attention of " + q + " into " + out);
        int maxLen = 0;
        for (int i = 0; i < n; i++) {
            int pos = batch.position(i);
            if (pos < 0 || pos >= c.capacity(batch.sequence(i))) {
                throw new IllegalArgumentException("position " + pos + " of sequence " + batch.sequence(i) + " has no page");
            }
            maxLen = Math.max(maxLen, pos + 1);
        }
        if (n == 0) {
            return;
        }
        need(batch);
        c.syncTable();
        KvCache.Config g = c.config();
        if (tuning.flash && n >= tuning.flashMinBatch
                && FlashKernels.supports(c.isF16(), heads, kvHeads, headDim, q.cols(), out.cols())) {
            k.flash.attention(new FlashKernels.Call(q.ptr(), q.cols(), c.keys(), c.values(), positions(), sequences(), c.table(),
                    g.maxPagesPerSequence(), g.pageSize(), g.pages(), layer, c.kvDim(), heads, kvHeads, headDim, batch, n,
                    out.ptr(), out.cols()), stepActive && batch == current);
            return;
        }
        // while a step is recorded for a graph the launch must not depend on the lengths: fixed splits
        int fixed = gpu.isRecording() ? k.attention.stableSplits(n, heads, g.maxPositions()) : 0;
        k.attention.attention(new AttentionKernels.Call(q.ptr(), q.cols(), c.isF16(), c.keys(), c.values(), positions(),
                sequences(), c.table(), g.maxPagesPerSequence(), g.pageSize(), g.pages(), layer, c.kvDim(), heads, kvHeads,
                headDim, n, maxLen, out.ptr(), out.cols()), fixed);
    }

    @Override
    public void swiglu(Buf ab, Buf bb, int n) {
        CudaBuf a = buf(ab);
        CudaBuf b = buf(bb);
        check(a.cols() == b.cols() && a.rows() >= n && b.rows() >= n, "swiglu of " + a + " and " + b);
        PendingMatmul pm = pendingMatmul;
        if (pm != null && pm.ws().length == 2 && pm.outs()[0] == a && pm.outs()[1] == b && pm.n() == n
                && products.canSwiglu(pm.x(), n, pm.ws()[0], pm.ws()[1], a, b, pm.norm())) {
            pendingMatmul = null;
            products.runSwiglu(pm.x(), n, pm.ws()[0], pm.ws()[1], a, b, pm.norm());
            return;
        }
        flush();
        k.eltwise.swiglu(a.ptr(), b.ptr(), Math.multiplyExact(n, a.cols()));
    }

    @Override
    public void add(Buf xb, Buf yb, int n) {
        CudaBuf x = buf(xb);
        CudaBuf y = buf(yb);
        check(x.cols() == y.cols() && x.rows() >= n && y.rows() >= n, "add of " + y + " to " + x);
        PendingMatmul pm = pendingMatmul;
        if (pm != null && pm.ws().length == 1 && pm.outs()[0] == y && pm.n() == n && products.canAdd(pm.x(), n, pm.ws()[0], y, x, pm.norm())) {
            pendingMatmul = null;
            products.runAdd(pm.x(), n, pm.ws()[0], y, x, pm.norm());
            return;
        }
        flush();
        k.eltwise.add(x.ptr(), y.ptr(), Math.multiplyExact(n, x.cols()));
    }

    @Override
    public void gather(Buf xb, int[] rows, int m, Buf outb) {
        flush();
        CudaBuf x = buf(xb);
        CudaBuf out = buf(outb);
        check(out.cols() == x.cols() && out.rows() >= m, "gather from " + x + " into " + out);
        for (int j = 0; j < m; j++) {
            check(rows[j] >= 0 && rows[j] < x.rows(), "gather of row " + rows[j] + " from " + x);
        }
        if (m == 0) {
            return;
        }
        long dev;
        if (current != null && m == current.logitCount() && Arrays.equals(rows, 0, m, current.logitEntries(), 0, m)) {
            dev = logitRows();  // the forward pass gathers exactly the step's logit rows: already there
        } else {
            if (m > gatherCap) {
                if (gatherDev != 0) {
                    gatherStaging.awaitIdle();
                    gpu.synchronize();
                    gpu.free(gatherDev);
                }
                gatherCap = Math.max(m, 64);
                gatherDev = gpu.malloc(4L * gatherCap, "gather rows");
                gatherStaging = gpu.staging(4L * gatherCap);
            }
            gatherStaging.awaitIdle();
            MemorySegment.copy(rows, 0, gatherStaging.segment(), ValueLayout.JAVA_INT, 0, m);
            gpu.uploadAsync(gatherDev, gatherStaging, 0, 4L * m);
            dev = gatherDev;
        }
        k.eltwise.gather(x.ptr(), x.cols(), dev, m, x.cols(), out.ptr(), out.cols());
    }
}
