// Training's ops on the C kernels of native/train.c; what they do not take runs on the Java path it extends.
package cria.backend.cpu;

import cria.backend.HostBuf;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The native training path: matrix products (and cross-entropy, made of them) run in the
 * register-blocked kernels of native/train.c. Work is split over the pool as on the Java path
 * (rows for out = x·wᵀ and dx = dout·w, weight rows for dw), and every C entry point takes whole
 * buffers with offsets in floats, so that no call makes a segment slice. Per-thread scratch
 * (the packed weight) is off-heap, grown when a larger weight first comes.
 */
final class NativeTrainPath extends JavaTrainPath {
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong J = ValueLayout.JAVA_LONG;
    private static final ValueLayout.OfFloat FF = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout A = ValueLayout.ADDRESS;
    /** Rows of one native cross-entropy block (fixed: dw adds up block by block). */
    static final int CE_ROWS_NATIVE = 512;

    private final MethodHandle mmScratch, mm, mmDx, mmDw, mmMulti, dxMulti, dwMulti, xentScratch, xentPack, xentRows, attScratch, att, attBwd, swiglu, swigluBwd;
    private final MethodHandle rms, rmsBwd, rmsBwdSum, ropeH, adamwH, dropoutH;
    /** Rows of a block of rmsnorm's fused backward (CRIA_RMS_BLOCK in native/train.h). */
    static final int RMS_BLOCK = 256;
    private MemorySegment rmsPartial = MemorySegment.NULL;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment[] pack;
    private final MemorySegment[] xentPacked;
    private final MemorySegment[] attScratchSeg;
    private MemorySegment ceBlock = MemorySegment.NULL;
    /** A multi-product's weights for the C kernels: per weight four longs (addresses and sizes); dw's apart from dx's. */
    private final MemorySegment parts = arena.allocate(8L * 4 * 4, 8);
    private final MemorySegment dwParts = arena.allocate(8L * 4 * 4, 8);
    private int partCount;
    private int partRows;
    // heap arrays the kernels read (critical downcalls), wrapped once per array
    private int[] targetsArray;
    private MemorySegment targetsSeg;
    private float[] cosArray;
    private float[] sinArray;
    private MemorySegment cosSeg;
    private MemorySegment sinSeg;
    private double[] lossArray;
    private MemorySegment lossSeg;

    private final WorkerPool.Task mmTask = (th, nt) -> mmRows(th, lo(n, th, nt), lo(n, th + 1, nt));
    private final WorkerPool.Task dxTask = (th, nt) -> dxRows(th, lo(n, th, nt), lo(n, th + 1, nt));
    private final WorkerPool.Task dwTask = (th, nt) -> dwRows(th, loUnits(c.rows(), 4, th, nt), loUnits(c.rows(), 4, th + 1, nt));
    private final WorkerPool.Task nativeAdamw = (th, nt) -> adamwRange(loUnits((int) count, 16, th, nt), loUnits((int) count, 16, th + 1, nt));
    private final WorkerPool.Task cePackTask = (th, nt) -> cePack(th);
    private final WorkerPool.Task ceTask = (th, nt) -> ceRows(th, block0 + lo(blockRows, th, nt), block0 + lo(blockRows, th + 1, nt));
    private final WorkerPool.Task mmMultiTask = (th, nt) -> mmMultiRows(th, lo(n, th, nt), lo(n, th + 1, nt));
    private final WorkerPool.Task dxMultiTask = (th, nt) -> dxMultiRows(th, lo(n, th, nt), lo(n, th + 1, nt));
    private final WorkerPool.Task dwMultiTask = (th, nt) -> dwMultiRows(th, loUnits(partRows, 4, th, nt), loUnits(partRows, 4, th + 1, nt));
    private final WorkerPool.Task attTask = (th, nt) -> attItems(th, lo(seqs * kvHeads, th, nt), lo(seqs * kvHeads, th + 1, nt));
    private final WorkerPool.Task attBwdTask = (th, nt) -> attBwdItems(th, lo(seqs * kvHeads, th, nt), lo(seqs * kvHeads, th + 1, nt));
    private final WorkerPool.Task swigluTask = (th, nt) -> swigluRange(count * th / nt / 16 * 16, th + 1 == nt ? count : count * (th + 1) / nt / 16 * 16);
    private final WorkerPool.Task swigluBwdTask = (th, nt) -> swigluBwdRange(count * th / nt / 16 * 16, th + 1 == nt ? count : count * (th + 1) / nt / 16 * 16);
    private final WorkerPool.Task rmsTask = (th, nt) -> rmsRows(lo(n, th, nt), lo(n, th + 1, nt));
    private final WorkerPool.Task rmsBwdTask = (th, nt) -> rmsBwdBlocks(lo(blockRows, th, nt), lo(blockRows, th + 1, nt));
    private final WorkerPool.Task ropeTask = (th, nt) -> ropeRows(lo(n, th, nt), lo(n, th + 1, nt));
    private final WorkerPool.Task dropoutTask = (th, nt) -> dropoutRange(loUnits((int) count, 16, th, nt), loUnits((int) count, 16, th + 1, nt));
    private final WorkerPool.Task ceDwTask = (th, nt) -> ceDw(th, loUnits(b.rows(), 4, th, nt), loUnits(b.rows(), 4, th + 1, nt));

    NativeTrainPath(WorkerPool pool, NativeKernels nk) {
        super(pool);
        Linker linker = Linker.nativeLinker();
        Linker.Option critical = Linker.Option.critical(false);
        var lib = nk.lib;
        mmScratch = linker.downcallHandle(NativeKernels.find(lib, "cria_train_matmul_scratch"), FunctionDescriptor.of(J, I, I), critical);
        mm = linker.downcallHandle(NativeKernels.find(lib, "cria_train_matmul"),
                FunctionDescriptor.ofVoid(A, J, J, I, I, I, A, I, A, J, J, A), critical);
        mmDx = linker.downcallHandle(NativeKernels.find(lib, "cria_train_matmul_dx"),
                FunctionDescriptor.ofVoid(A, J, J, I, I, I, A, I, A, J, J, I, A), critical);
        mmDw = linker.downcallHandle(NativeKernels.find(lib, "cria_train_matmul_dw"),
                FunctionDescriptor.ofVoid(A, J, J, A, J, J, I, I, I, I, A, J, A), critical);
        mmMulti = linker.downcallHandle(NativeKernels.find(lib, "cria_train_matmul_multi"),
                FunctionDescriptor.ofVoid(A, J, J, I, I, I, I, A, A), critical);
        dxMulti = linker.downcallHandle(NativeKernels.find(lib, "cria_train_matmul_dx_multi"),
                FunctionDescriptor.ofVoid(I, I, I, I, A, A, J, J, I, A), critical);
        dwMulti = linker.downcallHandle(NativeKernels.find(lib, "cria_train_matmul_dw_multi"),
                FunctionDescriptor.ofVoid(A, J, J, I, I, I, A, I, I, A), critical);
        xentScratch = linker.downcallHandle(NativeKernels.find(lib, "cria_train_xent_scratch"), FunctionDescriptor.of(J, I, I), critical);
        xentPack = linker.downcallHandle(NativeKernels.find(lib, "cria_train_xent_pack"), FunctionDescriptor.ofVoid(A, I, I, A), critical);
        // heap access allowed: the targets and losses are Java arrays
        xentRows = linker.downcallHandle(NativeKernels.find(lib, "cria_train_xent_rows"),
                FunctionDescriptor.ofVoid(A, J, I, I, I, A, I, A, A, J, J, A, FF, A, J, A), Linker.Option.critical(true));
        attScratch = linker.downcallHandle(NativeKernels.find(lib, "cria_train_attention_scratch"), FunctionDescriptor.of(J, I, I), critical);
        att = linker.downcallHandle(NativeKernels.find(lib, "cria_train_attention"),
                FunctionDescriptor.ofVoid(A, A, A, A, A, I, I, I, I, I, I, FF, J, A), critical);
        attBwd = linker.downcallHandle(NativeKernels.find(lib, "cria_train_attention_backward"),
                FunctionDescriptor.ofVoid(A, A, A, A, A, A, A, A, A, I, I, I, I, I, I, FF, J, A), critical);
        swiglu = linker.downcallHandle(NativeKernels.find(lib, "cria_train_swiglu"), FunctionDescriptor.ofVoid(A, A, A, J, J), critical);
        swigluBwd = linker.downcallHandle(NativeKernels.find(lib, "cria_train_swiglu_backward"),
                FunctionDescriptor.ofVoid(A, A, A, A, A, J, J), critical);
        rms = linker.downcallHandle(NativeKernels.find(lib, "cria_train_rmsnorm"), FunctionDescriptor.ofVoid(A, A, A, A, I, FF, I, I), critical);
        rmsBwd = linker.downcallHandle(NativeKernels.find(lib, "cria_train_rmsnorm_backward"),
                FunctionDescriptor.ofVoid(A, A, A, A, A, A, I, I, I, I), critical);
        rmsBwdSum = linker.downcallHandle(NativeKernels.find(lib, "cria_train_rmsnorm_backward_dw_sum"),
                FunctionDescriptor.ofVoid(A, I, I, A), critical);
        // heap access allowed: the angle tables are Java arrays
        ropeH = linker.downcallHandle(NativeKernels.find(lib, "cria_train_rope"),
                FunctionDescriptor.ofVoid(A, I, I, I, I, I, I, I, A, A, FF), Linker.Option.critical(true));
        adamwH = linker.downcallHandle(NativeKernels.find(lib, "cria_train_adamw"),
                FunctionDescriptor.ofVoid(A, A, A, A, J, J, FF, FF, FF, FF, FF, FF, FF), critical);
        dropoutH = linker.downcallHandle(NativeKernels.find(lib, "cria_train_dropout"), FunctionDescriptor.ofVoid(A, J, J, FF, J), critical);
        pack = new MemorySegment[threads];
        java.util.Arrays.fill(pack, MemorySegment.NULL);
        xentPacked = new MemorySegment[threads];
        java.util.Arrays.fill(xentPacked, MemorySegment.NULL);
        attScratchSeg = new MemorySegment[threads];
        java.util.Arrays.fill(attScratchSeg, MemorySegment.NULL);
    }

    @Override
    void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    private MemorySegment grow(MemorySegment seg, long bytes) {
        return seg.byteSize() >= bytes ? seg : arena.allocate(Math.max(bytes, seg.byteSize() * 2), 64);
    }

    /** Every thread's packing scratch holds a weight of o rows of k. */
    @Override
    void preparePanels(int k, int o) {
        packFor(k, o);
    }

    @Override
    void matmulPanel(int th, HostBuf x, int n, HostBuf w, int wRows, HostBuf out, int oOff) {
        matmulCall(x.segment(), 0, x.cols(), 0, n, x.cols(), w.segment(), wRows, out.segment(), oOff, out.cols(), pack[th]);
    }

    @Override
    void dxPanel(int th, HostBuf g, int gOff, int n, HostBuf w, int wRows, HostBuf dx, boolean accumulate) {
        dxCall(g.segment(), gOff, g.cols(), 0, n, wRows, w.segment(), w.cols(), dx.segment(), 0, dx.cols(), accumulate, pack[th]);
    }

    private void packFor(int k, int o) {
        long bytes;
        try {
            bytes = 4 * (long) mmScratch.invokeExact(k, o);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
        for (int t = 0; t < threads; t++) {
            pack[t] = grow(pack[t], bytes);
        }
    }

    // ---- matrix products ---------------------------------------------------------------------

    @Override
    void matmul(HostBuf x, HostBuf w, int n, HostBuf out) {
        packFor(w.cols(), w.rows());
        a = x;
        b = w;
        this.n = n;
        c = out;
        pool.run(mmTask);
    }

    private void mmRows(int th, int lo, int hi) {
        if (lo < hi) {
            matmulCall(a.segment(), 0, a.cols(), lo, hi, a.cols(), b.segment(), b.rows(), c.segment(), 0, c.cols(), pack[th]);
        }
    }

    private void matmulCall(MemorySegment x, long xo, long xs, int i0, int i1, int k, MemorySegment w, int o, MemorySegment out,
                            long oo, long os, MemorySegment scratch) {
        try {
            mm.invokeExact(x, xo, xs, i0, i1, k, w, o, out, oo, os, scratch);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    void matmulBackward(HostBuf dout, HostBuf x, HostBuf w, int n, HostBuf dx, boolean accumulateDx, HostBuf dw) {
        packFor(w.cols(), w.rows());
        a = dout;
        b = x;
        this.n = n;
        if (dx != null) {
            c = w;
            d = dx;
            flag = accumulateDx;
            pool.run(dxTask);
        }
        if (dw != null) {
            c = dw;
            pool.run(dwTask);
        }
    }

    private void dxRows(int th, int lo, int hi) {
        if (lo < hi) {
            dxCall(a.segment(), 0, a.cols(), lo, hi, c.rows(), c.segment(), c.cols(), d.segment(), 0, d.cols(), flag, pack[th]);
        }
    }

    private void dxCall(MemorySegment g, long go, long gs, int i0, int i1, int o, MemorySegment w, int k, MemorySegment dx, long dxo,
                        long dxs, boolean acc, MemorySegment scratch) {
        try {
            mmDx.invokeExact(g, go, gs, i0, i1, o, w, k, dx, dxo, dxs, acc ? 1 : 0, scratch);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    private void dwRows(int th, int r0, int r1) {
        if (r0 < r1) {
            dwCall(a.segment(), 0, a.cols(), b.segment(), 0, b.cols(), n, r0, r1, c.cols(), c.segment(), c.cols(), pack[th]);
        }
    }

    private void dwCall(MemorySegment g, long go, long gs, MemorySegment x, long xo, long xs, int rows, int r0, int r1, int k,
                        MemorySegment dw, long dws, MemorySegment scratch) {
        try {
            mmDw.invokeExact(g, go, gs, x, xo, xs, rows, r0, r1, k, dw, dws, scratch);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    // ---- several products of one input ------------------------------------------------------

    private static int roundUp32(int v) {
        return (v + 31) / 32 * 32;
    }

    @Override
    void matmuls(HostBuf x, HostBuf[] w, HostBuf[] out, int count, int n) {
        int rows = 0;
        for (int j = 0; j < count; j++) {
            parts.setAtIndex(J, 4L * j, w[j].segment().address());
            parts.setAtIndex(J, 4L * j + 1, out[j].segment().address());
            parts.setAtIndex(J, 4L * j + 2, w[j].rows());
            parts.setAtIndex(J, 4L * j + 3, out[j].cols());
            rows += roundUp32(w[j].rows());
        }
        packFor(x.cols(), rows);
        a = x;
        this.n = n;
        partCount = count;
        pool.run(mmMultiTask);
    }

    private void mmMultiRows(int th, int lo, int hi) {
        if (lo < hi) {
            try {
                mmMulti.invokeExact(a.segment(), 0L, (long) a.cols(), lo, hi, a.cols(), partCount, parts, pack[th]);
            } catch (Throwable e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @Override
    void matmulsBackward(HostBuf[] dout, HostBuf x, HostBuf[] w, int count, int n, HostBuf dx, boolean accumulateDx, HostBuf[] dw) {
        int rows = 0;
        int dws = 0;
        for (int j = 0; j < count; j++) {
            parts.setAtIndex(J, 4L * j, dout[j].segment().address());
            parts.setAtIndex(J, 4L * j + 1, dout[j].cols());
            parts.setAtIndex(J, 4L * j + 2, w[j].segment().address());
            parts.setAtIndex(J, 4L * j + 3, w[j].rows());
            rows += roundUp32(w[j].rows());
            if (dw[j] != null) {
                dwParts.setAtIndex(J, 4L * dws, dout[j].segment().address());
                dwParts.setAtIndex(J, 4L * dws + 1, dout[j].cols());
                dwParts.setAtIndex(J, 4L * dws + 2, dw[j].segment().address());
                dwParts.setAtIndex(J, 4L * dws + 3, dw[j].rows());
                dws++;
            }
        }
        packFor(x.cols(), rows);
        a = x;
        this.n = n;
        if (dx != null) {
            partCount = count;
            d = dx;
            flag = accumulateDx;
            pool.run(dxMultiTask);
        }
        if (dws > 0) {
            partCount = dws;
            partRows = 0;
            for (int j = 0; j < count; j++) {
                if (dw[j] != null) {
                    partRows += dw[j].rows();
                }
            }
            pool.run(dwMultiTask);
        }
    }

    private void dxMultiRows(int th, int lo, int hi) {
        if (lo < hi) {
            try {
                dxMulti.invokeExact(lo, hi, a.cols(), partCount, parts, d.segment(), 0L, (long) d.cols(), flag ? 1 : 0, pack[th]);
            } catch (Throwable e) {
                throw new IllegalStateException(e);
            }
        }
    }

    private void dwMultiRows(int th, int r0, int r1) {
        if (r0 < r1) {
            try {
                dwMulti.invokeExact(a.segment(), 0L, (long) a.cols(), n, a.cols(), partCount, dwParts, r0, r1, pack[th]);
            } catch (Throwable e) {
                throw new IllegalStateException(e);
            }
        }
    }

    // ---- cross-entropy -----------------------------------------------------------------------

    @Override
    double crossEntropy(HostBuf x, HostBuf w, int[] targets, int n, float scale, HostBuf dx, HostBuf dw) {
        int vocab = w.rows();
        packFor(w.cols(), vocab);
        ceBlock = grow(ceBlock, 4L * CE_ROWS_NATIVE * vocab);
        if (rowLoss.length < n) {
            rowLoss = new double[n];
        }
        if (lossArray != rowLoss) {
            lossArray = rowLoss;
            lossSeg = MemorySegment.ofArray(rowLoss);
        }
        if (targetsArray != targets) {
            targetsArray = targets;
            targetsSeg = MemorySegment.ofArray(targets);
        }
        long bytes;
        try {
            bytes = 4 * (long) xentScratch.invokeExact(w.cols(), vocab);
        } catch (Throwable ex) {
            throw new IllegalStateException(ex);
        }
        for (int t = 0; t < threads; t++) {
            xentPacked[t] = grow(xentPacked[t], bytes);
        }
        a = x;
        b = w;
        p1 = scale;
        c = dw;
        e = dx;
        pool.run(cePackTask);
        for (int r0 = 0; r0 < n; r0 += CE_ROWS_NATIVE) {
            block0 = r0;
            blockRows = Math.min(CE_ROWS_NATIVE, n - r0);
            pool.run(ceTask);
            if (dx != null && dw != null) {
                pool.run(ceDwTask);
            }
        }
        double sum = 0;
        for (int r = 0; r < n; r++) {
            sum += rowLoss[r];
        }
        return sum;
    }

    /** Each thread's copy of the output weight, packed once per call for the logits and for dx. */
    private void cePack(int th) {
        try {
            xentPack.invokeExact(b.segment(), b.rows(), b.cols(), xentPacked[th]);
        } catch (Throwable ex) {
            throw new IllegalStateException(ex);
        }
    }

    /** Global rows [lo, hi) of the current block: logits, loss and (with dx) their gradient and dx, a few rows at a time. */
    private void ceRows(int th, int lo, int hi) {
        if (lo >= hi) {
            return;
        }
        int vocab = b.rows();
        int dim = a.cols();
        long shift = -(long) block0 * vocab; // block row r - block0 holds global row r
        try {
            xentRows.invokeExact(a.segment(), (long) dim, lo, hi, dim, b.segment(), vocab, xentPacked[th], ceBlock, shift, (long) vocab,
                    targetsSeg, p1, (MemorySegment) (e != null ? e.segment() : MemorySegment.NULL), (long) dim, lossSeg);
        } catch (Throwable ex) {
            throw new IllegalStateException(ex);
        }
    }

    /** dw rows [r0, r1) += the block's logit gradients ᵀ · its rows of x. */
    private void ceDw(int th, int r0, int r1) {
        if (r0 < r1) {
            int dim = a.cols();
            dwCall(ceBlock, 0, b.rows(), a.segment(), (long) block0 * dim, dim, blockRows, r0, r1, dim, c.segment(), dim, pack[th]);
        }
    }

    // ---- attention ---------------------------------------------------------------------------

    private void attentionScratch(int len, int headDim) {
        long bytes;
        try {
            bytes = 4 * (long) attScratch.invokeExact(len, headDim);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
        for (int t = 0; t < threads; t++) {
            attScratchSeg[t] = grow(attScratchSeg[t], bytes);
        }
    }

    @Override
    void attention(HostBuf q, HostBuf k, HostBuf v, int seqs, int len, int heads, int kvHeads, int headDim, HostBuf out,
                   HostBuf lse, float dropP, long seed) {
        attentionScratch(len, headDim);
        setAttention(q, k, v, seqs, len, heads, kvHeads, headDim, out, lse, dropP, seed);
        pool.run(attTask);
    }

    /** (window, KV head) items [lo, hi). */
    private void attItems(int th, int lo, int hi) {
        if (lo < hi) {
            try {
                att.invokeExact(a.segment(), b.segment(), c.segment(), d.segment(), e.segment(), len, heads, kvHeads, headDim, lo, hi,
                        p1, seed, attScratchSeg[th]);
            } catch (Throwable ex) {
                throw new IllegalStateException(ex);
            }
        }
    }

    @Override
    void attentionBackward(HostBuf dout, HostBuf q, HostBuf k, HostBuf v, HostBuf out, HostBuf lse, int seqs, int len, int heads,
                           int kvHeads, int headDim, float dropP, long seed, HostBuf dq, HostBuf dk, HostBuf dv) {
        attentionScratch(len, headDim);
        setAttention(q, k, v, seqs, len, heads, kvHeads, headDim, out, lse, dropP, seed);
        f = dout;
        g = dq;
        h = dk;
        i = dv;
        pool.run(attBwdTask);
    }

    private void attBwdItems(int th, int lo, int hi) {
        if (lo < hi) {
            try {
                attBwd.invokeExact(f.segment(), a.segment(), b.segment(), c.segment(), d.segment(), e.segment(), g.segment(), h.segment(),
                        i.segment(), len, heads, kvHeads, headDim, lo, hi, p1, seed, attScratchSeg[th]);
            } catch (Throwable ex) {
                throw new IllegalStateException(ex);
            }
        }
    }

    // ---- element-wise ------------------------------------------------------------------------

    @Override
    void swiglu(HostBuf gate, HostBuf up, int n, HostBuf out) {
        a = gate;
        b = up;
        c = out;
        count = (long) n * gate.cols();
        pool.run(swigluTask);
    }

    private void swigluRange(long from, long to) {
        if (from < to) {
            try {
                swiglu.invokeExact(a.segment(), b.segment(), c.segment(), from, to);
            } catch (Throwable ex) {
                throw new IllegalStateException(ex);
            }
        }
    }

    @Override
    void swigluBackward(HostBuf dout, HostBuf gate, HostBuf up, int n, HostBuf dgate, HostBuf dup) {
        a = gate;
        b = up;
        c = dout;
        d = dgate;
        e = dup;
        count = (long) n * gate.cols();
        pool.run(swigluBwdTask);
    }

    private void swigluBwdRange(long from, long to) {
        if (from < to) {
            try {
                swigluBwd.invokeExact(c.segment(), a.segment(), b.segment(), d.segment(), e.segment(), from, to);
            } catch (Throwable ex) {
                throw new IllegalStateException(ex);
            }
        }
    }

    // ---- row-wise ------------------------------------------------------------------------------

    @Override
    void rmsnorm(HostBuf x, HostBuf w, float eps, int n, HostBuf out, HostBuf rstd) {
        a = x;
        b = w;
        p1 = eps;
        this.n = n;
        c = out;
        d = rstd;
        runRows(rmsTask, (long) n * x.cols());
    }

    private void rmsRows(int lo, int hi) {
        if (lo < hi) {
            try {
                rms.invokeExact(a.segment(), b.segment(), c.segment(), d.segment(), a.cols(), p1, lo, hi);
            } catch (Throwable ex) {
                throw new IllegalStateException(ex);
            }
        }
    }

    @Override
    void rmsnormBackward(HostBuf dout, HostBuf x, HostBuf w, HostBuf rstd, int n, HostBuf dx, HostBuf dw) {
        setRmsnormBackward(dout, x, w, rstd, n, dx, dw);
        // one pass: dx row by row, dw's sums per fixed block of rows (then added in block order here)
        blockRows = (n + RMS_BLOCK - 1) / RMS_BLOCK;
        rmsPartial = grow(rmsPartial, 4L * blockRows * cols);
        runRows(rmsBwdTask, (long) n * cols);
        try {
            rmsBwdSum.invokeExact(rmsPartial, blockRows, cols, f.segment());
        } catch (Throwable ex) {
            throw new IllegalStateException(ex);
        }
    }

    private void rmsBwdBlocks(int b0, int b1) {
        if (b0 < b1) {
            try {
                rmsBwd.invokeExact(a.segment(), b.segment(), c.segment(), d.segment(), e.segment(), rmsPartial, n, cols, b0, b1);
            } catch (Throwable ex) {
                throw new IllegalStateException(ex);
            }
        }
    }

    @Override
    void rope(HostBuf x, int heads, int headDim, int n, int len, cria.backend.Rope rope, boolean inverse) {
        angles(rope, len);
        if (cosArray != cosTable()) {
            cosArray = cosTable();
            cosSeg = MemorySegment.ofArray(cosArray);
        }
        if (sinArray != sinTable()) {
            sinArray = sinTable();
            sinSeg = MemorySegment.ofArray(sinArray);
        }
        setRope(x, heads, headDim, n, len, rope, inverse);
        runRows(ropeTask, (long) n * x.cols());
    }

    private void ropeRows(int lo, int hi) {
        if (lo < hi) {
            try {
                ropeH.invokeExact(a.segment(), lo, hi, len, heads, headDim, cols, flag ? 1 : 0, cosSeg, sinSeg, p1);
            } catch (Throwable ex) {
                throw new IllegalStateException(ex);
            }
        }
    }

    @Override
    WorkerPool.Task adamwTask() {
        return nativeAdamw;
    }

    private void adamwRange(long from, long to) {
        if (from < to) {
            try {
                adamwH.invokeExact(a.segment(), b.segment(), c.segment(), d.segment(), from, to, p1, p2, p3, p4, p5, p6, p7);
            } catch (Throwable ex) {
                throw new IllegalStateException(ex);
            }
        }
    }

    @Override
    void dropout(HostBuf x, int n, float p, long seed) {
        a = x;
        p1 = p;
        this.seed = seed;
        count = (long) n * x.cols();
        runRows(dropoutTask, count);
    }

    private void dropoutRange(long from, long to) {
        if (from < to) {
            try {
                dropoutH.invokeExact(a.segment(), from, to, p1, seed);
            } catch (Throwable ex) {
                throw new IllegalStateException(ex);
            }
        }
    }
}
