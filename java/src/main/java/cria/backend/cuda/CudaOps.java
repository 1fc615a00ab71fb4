// The CUDA implementation of every op: checks shapes on the host, then queues the op's kernel (one fused kernel where it can).
package cria.backend.cuda;

import cria.backend.AttnSpec;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.KvCache;
import cria.backend.Ops;
import cria.backend.Rope;
import cria.backend.Weight;
import cria.gguf.GgmlType;
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
 * <p>Every op queues its kernels when it is called; nothing is held back for a later op. Fusion
 * is the fused ops of {@link Ops}, each one kernel where it applies ({@link CudaTuning#fuse} on,
 * and the shapes the kernels take; see {@link Products}):
 * <ul>
 *   <li>{@link #rmsnormMatmul}, {@link #rmsnormGateUpSwiglu}: the rmsnorm (f32 weights, not in
 *       place, one row) folded into the gemv that reads its output;</li>
 *   <li>{@link #rmsnormGateUpSwiglu}: gate and up products and SwiGLU in one gemv;</li>
 *   <li>{@link #matmulAdd}: a gemv that also adds its output into the residual;</li>
 *   <li>{@link #ropeStoreKv}: rope of q and k and the store of k and v in one kernel (ropekv).</li>
 * </ul>
 * Where a fusion does not apply, the fused op runs what it can fuse and the plain ops for the
 * rest (the interface's default body when nothing fuses). Every output of the separate ops is
 * still written, so the results are the same.
 */
public final class CudaOps implements Ops {
    private final CudaBackend backend;
    private final LaunchRecorder gpu;
    private final Kernels k;
    private final DecodeGraphs graphs;
    private final Map<Rope, Long> ropeTables = new IdentityHashMap<>();
    final CudaTuning tuning = new CudaTuning();
    private final Products products;

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
        this.products = new Products(kernels, tuning);
    }

    DecodeGraphs graphs() {
        return graphs;
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
        List<LaunchRecorder.Launch> step = gpu.stopRecording();
        if (step != null && !step.isEmpty()) {
            graphs.run(step);
        }
        current = null;
        stepActive = false;
        k.flash.forget();
    }

    private void upload(Batch b) {
        if (b.batchSize() > batchCap) {
            if (batchDev != 0) {
                batchStaging.awaitIdle();
                gpu.synchronize();
                gpu.free(batchDev);
            }
            batchCap = b.batchSize();
            batchDev = gpu.malloc(16L * batchCap, "the batch");
            batchStaging = gpu.staging(16L * batchCap);
        }
        batchStaging.awaitIdle();
        MemorySegment s = batchStaging.segment();
        long cap = 4L * batchCap;
        MemorySegment.copy(b.tokens(), 0, s, ValueLayout.JAVA_INT, 0, b.size());
        MemorySegment.copy(b.positions(), 0, s, ValueLayout.JAVA_INT, cap, b.size());
        MemorySegment.copy(b.sequences(), 0, s, ValueLayout.JAVA_INT, 2 * cap, b.size());
        MemorySegment.copy(b.logitRows(), 0, s, ValueLayout.JAVA_INT, 3 * cap, b.logitCount());
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
        CudaBuf x = buf(xb);
        CudaBuf out = buf(outb);
        CudaWeight g = weight(w);
        checkNorm(x, g, out, n);
        if (n > 0) {
            k.rmsnorm.rmsnorm(x.ptr(), x.cols(), g.type(), g.ptr(), eps, x.cols(), n, out.ptr(), out.cols());
        }
    }

    private static void checkNorm(CudaBuf x, CudaWeight g, CudaBuf out, int n) {
        check(RmsnormKernels.supports(g.type()), "rmsnorm weight " + g + ": expected F32, F16 or BF16");
        check(g.cols() == x.cols() && out.cols() == x.cols() && x.rows() >= n && out.rows() >= n,
                "rmsnorm of " + x + " into " + out + " with " + g);
    }

    /**
     * The rmsnorm of x into out as a norm to fold into the gemv that reads out, or null when it
     * must run as a kernel of its own (fusion off, more than one row, not {@link Products#foldable}).
     */
    private Products.Norm foldable(Buf xb, Weight w, float eps, int n, Buf outb) {
        CudaBuf x = buf(xb);
        CudaBuf out = buf(outb);
        CudaWeight g = weight(w);
        checkNorm(x, g, out, n);
        boolean fold = tuning.fuse && n > 0 && n <= GemvKernels.MAX_BATCH && Products.foldable(g, x, out);
        return fold ? new Products.Norm(x, g, eps, out, n) : null;
    }

    @Override
    public void matmul(Buf xb, int n, Weight[] ws, Buf[] outs) {
        CudaBuf x = buf(xb);
        CudaWeight[] w = weights(ws);
        products.run(x, n, w, outputs(x, n, w, outs));
    }

    private CudaWeight[] weights(Weight... ws) {
        CudaWeight[] w = new CudaWeight[ws.length];
        for (int j = 0; j < ws.length; j++) {
            w[j] = weight(ws[j]);
        }
        return w;
    }

    /** The outputs of {@code w[j] · x}, their shapes checked. */
    private static CudaBuf[] outputs(CudaBuf x, int n, CudaWeight[] w, Buf... outs) {
        check(w.length == outs.length, "matmul: " + w.length + " weights, " + outs.length + " outputs");
        CudaBuf[] o = new CudaBuf[outs.length];
        for (int j = 0; j < w.length; j++) {
            o[j] = buf(outs[j]);
            check(x.cols() >= w[j].cols() && x.rows() >= n && o[j].cols() >= w[j].rows() && o[j].rows() >= n,
                    "matmul of " + x + " by " + w[j] + " into " + o[j]);
        }
        return o;
    }

    /** Norm folded into the product where it can be (one gemv launch for q, k and v when they share a type). */
    @Override
    public void rmsnormMatmul(Buf x, Weight normWeight, float eps, int n, Buf xb, Weight[] ws, Buf[] outs) {
        Products.Norm norm = foldable(x, normWeight, eps, n, xb);
        if (norm == null) {
            Ops.super.rmsnormMatmul(x, normWeight, eps, n, xb, ws, outs);
            return;
        }
        CudaWeight[] w = weights(ws);
        products.run(norm.out(), n, w, outputs(norm.out(), n, w, outs), norm);
    }

    /** One gemv: the norm folded in (where it can be), gate and up, SwiGLU of the two. */
    @Override
    public void rmsnormGateUpSwiglu(Buf x, Weight normWeight, float eps, int n, Buf xb, Weight gate, Weight up, Buf hb, Buf hb2) {
        if (!tuning.fuse || n == 0) {
            Ops.super.rmsnormGateUpSwiglu(x, normWeight, eps, n, xb, gate, up, hb, hb2);
            return;
        }
        Products.Norm norm = foldable(x, normWeight, eps, n, xb);
        if (norm == null) {
            rmsnorm(x, normWeight, eps, n, xb);
        }
        CudaBuf in = buf(xb);
        CudaWeight[] w = weights(gate, up);
        CudaBuf[] o = outputs(in, n, w, hb, hb2);
        if (products.canSwiglu(in, n, w[0], w[1], o[0], o[1], norm)) {
            products.runSwiglu(in, n, w[0], w[1], o[0], o[1], norm);
        } else {
            products.run(in, n, w, o, norm);
            swiglu(hb, hb2, n);
        }
    }

    /** One gemv that also adds its output into the residual, where the kernel takes the shapes. */
    @Override
    public void matmulAdd(Buf xb, int n, Weight wb, Buf outb, Buf residual) {
        CudaBuf x = buf(xb);
        CudaBuf out = buf(outb);
        CudaBuf res = buf(residual);
        CudaWeight w = weight(wb);
        if (n > 0 && products.canAdd(x, n, w, out, res)) {
            outputs(x, n, new CudaWeight[] {w}, outb);
            checkAdd(res, out, n);
            products.runAdd(x, n, w, out, res);
            return;
        }
        Ops.super.matmulAdd(xb, n, wb, outb, residual);
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
        checkRope(q, kk, headDim, n, rope);
        if (n == 0 || rope.dims() == 0) {
            return;
        }
        need(batch);
        k.rope.rope(rope.neox(), q.ptr(), q.cols(), q.cols() / headDim, kk.ptr(), kk.cols(), kk.cols() / headDim, headDim,
                rope.dims(), positions(), invFreq(rope), n);
    }

    private static void checkRope(CudaBuf q, CudaBuf kk, int headDim, int n, Rope rope) {
        check(q.cols() % headDim == 0 && kk.cols() % headDim == 0 && rope.dims() <= headDim && rope.dims() % 2 == 0,
                "rope of " + q + " and " + kk + " with head size " + headDim + " and " + rope.dims() + " rotated dims");
        check(q.rows() >= n && kk.rows() >= n, "rope of " + n + " rows in " + q + ", " + kk);
    }

    @Override
    public void storeKv(KvCache cache, int layer, Buf kb, Buf vb, Batch batch) {
        CudaKvCache c = (CudaKvCache) cache;
        CudaBuf kk = buf(kb);
        CudaBuf v = buf(vb);
        int n = batch.size();
        checkStore(c, layer, kk, v, batch);
        if (n == 0) {
            return;
        }
        need(batch);
        c.syncTable();
        KvCache.Config g = c.config();
        k.storeKv.store(c.isF16(), c.keys(), c.values(), kk.ptr(), kk.cols(), v.ptr(), v.cols(), c.kvDim(), positions(),
                sequences(), c.table(), g.maxPagesPerSequence(), g.pageSize(), g.pages(), layer, n);
    }

    private static void checkStore(CudaKvCache c, int layer, CudaBuf kk, CudaBuf v, Batch batch) {
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
    }

    /** One kernel: rope of q and k, then the store of the rotated k and of v (k exactly kvDim wide). */
    @Override
    public void ropeStoreKv(Buf qb, Buf kb, Buf vb, int headDim, Batch batch, Rope rope, KvCache cache, int layer) {
        CudaKvCache c = (CudaKvCache) cache;
        CudaBuf q = buf(qb);
        CudaBuf kk = buf(kb);
        CudaBuf v = buf(vb);
        int n = batch.size();
        if (!tuning.fuse || n == 0 || rope.dims() == 0 || kk.cols() != c.kvDim()) {
            Ops.super.ropeStoreKv(qb, kb, vb, headDim, batch, rope, cache, layer);
            return;
        }
        checkRope(q, kk, headDim, n, rope);
        checkStore(c, layer, kk, v, batch);
        need(batch);
        c.syncTable();
        KvCache.Config g = c.config();
        k.ropeKv.ropeStore(new RopeKvKernels.Call(rope.neox(), q.ptr(), q.cols(), q.cols() / headDim, kk.ptr(), kk.cols(),
                kk.cols() / headDim, v.ptr(), v.cols(), headDim, rope.dims(), positions(), invFreq(rope), n, c.isF16(), c.keys(),
                c.values(), sequences(), c.table(), g.maxPagesPerSequence(), g.pageSize(), g.pages(), layer, c.kvDim()));
    }

    @Override
    public void attention(Buf qb, KvCache cache, int layer, int heads, int kvHeads, int headDim, AttnSpec spec, Batch batch,
            Buf outb) {
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
        int maxLen = 0;  // the most positions one entry attends (its window, when there is one)
        for (int i = 0; i < n; i++) {
            int pos = batch.position(i);
            if (pos < 0 || pos >= c.capacity(batch.sequence(i))) {
                throw new IllegalArgumentException("position " + pos + " of sequence " + batch.sequence(i) + " has no page");
            }
            maxLen = Math.max(maxLen, pos + 1 - spec.firstKey(pos));
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
                    out.ptr(), out.cols(), spec), stepActive && batch == current);
            return;
        }
        // while a step is recorded for a graph the launch must not depend on the lengths: fixed splits
        int longest = spec.window() > 0 ? Math.min(g.contextLength(), spec.window()) : g.contextLength();
        int fixed = gpu.isRecording() ? k.attention.stableSplits(n, heads, longest) : 0;
        k.attention.attention(new AttentionKernels.Call(q.ptr(), q.cols(), c.isF16(), c.keys(), c.values(), positions(),
                sequences(), c.table(), g.maxPagesPerSequence(), g.pageSize(), g.pages(), layer, c.kvDim(), heads, kvHeads,
                headDim, n, maxLen, out.ptr(), out.cols(), spec), fixed);
    }

    @Override
    public void swiglu(Buf ab, Buf bb, int n) {
        CudaBuf a = buf(ab);
        CudaBuf b = buf(bb);
        check(a.cols() == b.cols() && a.rows() >= n && b.rows() >= n, "swiglu of " + a + " and " + b);
        k.eltwise.swiglu(a.ptr(), b.ptr(), Math.multiplyExact(n, a.cols()));
    }

    @Override
    public void geglu(Buf ab, Buf bb, int n) {
        CudaBuf a = buf(ab);
        CudaBuf b = buf(bb);
        check(a.cols() == b.cols() && a.rows() >= n && b.rows() >= n, "geglu of " + a + " and " + b);
        k.eltwise.geglu(a.ptr(), b.ptr(), Math.multiplyExact(n, a.cols()));
    }

    @Override
    public void scale(Buf xb, float s, int n) {
        CudaBuf x = buf(xb);
        check(x.rows() >= n, "scale of " + n + " rows of " + x);
        k.eltwise.scale(x.ptr(), s, Math.multiplyExact(n, x.cols()));
    }

    @Override
    public void softcap(Buf xb, float cap, int n) {
        CudaBuf x = buf(xb);
        check(x.rows() >= n && cap > 0, "soft cap " + cap + " of " + n + " rows of " + x);
        k.eltwise.softcap(x.ptr(), cap, Math.multiplyExact(n, x.cols()));
    }

    @Override
    public void add(Buf xb, Buf yb, int n) {
        CudaBuf x = buf(xb);
        CudaBuf y = buf(yb);
        checkAdd(x, y, n);
        k.eltwise.add(x.ptr(), y.ptr(), Math.multiplyExact(n, x.cols()));
    }

    @Override
    public void addBias(Buf xb, Weight w, int n) {
        CudaBuf x = buf(xb);
        CudaWeight b = weight(w);
        check(b.type() == GgmlType.F32 && b.rows() == 1 && b.cols() == x.cols() && x.rows() >= n,
                "bias " + b + " added to " + x + " (an F32 vector of its width)");
        k.eltwise.addBias(x.ptr(), b.ptr(), x.cols(), Math.multiplyExact(n, x.cols()));
    }

    /** The heads of rows [0, n) are n * heads contiguous rows of headDim values to the rmsnorm kernel, in place. */
    @Override
    public void rmsnormHeads(Buf xb, Weight w, float eps, int headDim, int n) {
        CudaBuf x = buf(xb);
        CudaWeight g = weight(w);
        check(RmsnormKernels.supports(g.type()), "per-head rmsnorm weight " + g + ": expected F32, F16 or BF16");
        check(headDim > 0 && x.cols() % headDim == 0 && g.rows() == 1 && g.cols() == headDim && x.rows() >= n,
                "per-head rmsnorm of " + x + " with heads of " + headDim + " by " + g);
        int rows = Math.multiplyExact(n, x.cols() / headDim);
        if (rows > 0) {
            k.rmsnorm.rmsnorm(x.ptr(), headDim, g.type(), g.ptr(), eps, headDim, rows, x.ptr(), headDim);
        }
    }

    private static void checkAdd(CudaBuf x, CudaBuf y, int n) {
        check(x.cols() == y.cols() && x.rows() >= n && y.rows() >= n, "add of " + y + " to " + x);
    }

    @Override
    public void gather(Buf xb, int[] rows, int m, Buf outb) {
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
        if (current != null && m == current.logitCount() && Arrays.equals(rows, 0, m, current.logitRows(), 0, m)) {
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
