// Training's ops on the CPU: float32 off-heap buffers, every op checked here and computed by the native or the Java path over the worker pool.
package cria.backend.cpu;

import cria.CriaException;
import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.Rope;
import cria.backend.TrainOps;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * {@link TrainOps} on float32 {@link HostBuf}s (64-byte-aligned off-heap segments, row-major).
 * Each entry point casts and checks its buffers (so that no inconsistent size reaches native
 * code) and hands the computation to a path chosen once: {@link NativeTrainPath} (the C kernels
 * of native/train.c) when the library is there, {@link JavaTrainPath} (Vector API) otherwise.
 *
 * <p>Every op runs on all threads of the backend's pool and is deterministic: a result element
 * is summed by one thread in an order fixed by the shapes alone (reductions over rows are split
 * over output columns or taken in fixed blocks), so the same inputs give bit-identical results
 * run after run. Nothing is allocated per call once sizes have been seen: scratch grows once and
 * is kept. Ops are called by one thread at a time.
 */
public final class CpuTrainOps implements TrainOps {
    private final Arena arena = Arena.ofShared();
    private final JavaTrainPath path;
    private final java.util.IdentityHashMap<HostBuf, HostBuf> headViews = new java.util.IdentityHashMap<>();  // rmsnormHeads' views
    /** The checked buffers of a multi-product (at most {@link #MAX_PARTS}), kept so that a call allocates nothing. */
    private static final int MAX_PARTS = 4;
    private final HostBuf[] partW = new HostBuf[MAX_PARTS];
    private final HostBuf[] partOut = new HostBuf[MAX_PARTS];
    private final HostBuf[] partDw = new HostBuf[MAX_PARTS];

    /**
     * Training ops on {@code pool}'s threads: the native kernels when {@code nk} is not null, the
     * Vector API otherwise.
     */
    CpuTrainOps(WorkerPool pool, NativeKernels nk) {
        this(pool, nk, null);
    }

    /** With the inference ops of the same pool, a frozen quantized weight's forward products run in their kernels. */
    CpuTrainOps(WorkerPool pool, NativeKernels nk, CpuOps inference) {
        this.path = nk != null ? new NativeTrainPath(pool, nk) : new JavaTrainPath(pool);
        this.frozenProducts = new FrozenProducts(pool, path, inference);
    }

    /**
     * Exact: the forward products of frozen quantized weights on dequantized float panels (what
     * the oracle computes); otherwise (the default) in the inference kernels, with 8-bit
     * activations: faster, within inference's own error of the exact product.
     */
    @Override
    public void frozenForwardExact(boolean exact) {
        frozenProducts.int8Forward(!exact);
    }

    private final FrozenProducts frozenProducts;

    private static boolean isFrozen(Buf b) {
        return b instanceof FrozenProducts.Weight;
    }

    private static boolean anyFrozen(Buf[] w) {
        for (Buf b : w) {
            if (isFrozen(b)) {
                return true;
            }
        }
        return false;
    }

    private static FrozenProducts.Weight frozenWithoutGradient(Buf w, Buf dw) {
        if (dw != null) {
            throw new IllegalArgumentException("frozen weight " + w.name() + " has no gradient");
        }
        return (FrozenProducts.Weight) w;
    }

    /**
     * An F32 tensor is used in place (a float buffer over the mapped file: zero copy, the float
     * kernels read it directly); any other type streams through {@link FrozenProducts}.
     */
    @Override
    public Buf frozen(cria.tensor.Tensor t) {
        if (t.rows() > Integer.MAX_VALUE || t.rows() < 1) {
            throw new IllegalArgumentException("tensor " + t.name() + " has " + t.rows() + " rows");
        }
        if (t.type() == cria.gguf.GgmlType.F32) {
            return new HostBuf(t.name(), (int) t.rows(), t.rowLength(), t.data());
        }
        return new FrozenProducts.Weight(t);
    }

    @Override
    public void scale(Buf x, int n, float s) {
        HostBuf xs = rows(x, n);
        MemorySegment seg = xs.segment();
        long count = (long) n * xs.cols();
        for (long i = 0; i < count; i++) {
            seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, seg.getAtIndex(ValueLayout.JAVA_FLOAT, i) * s);
        }
    }

    /** The path computing these ops (for this package's tests). */
    JavaTrainPath path() {
        return path;
    }

    /** True when the C kernels compute these ops. */
    public boolean usesNativeKernels() {
        return path instanceof NativeTrainPath;
    }

    // ---- checks ------------------------------------------------------------------------------

    private static IllegalArgumentException bad(String what) {
        return new IllegalArgumentException("train op sizes do not fit their buffers: " + what);
    }

    private static HostBuf host(Buf b) {
        if (b instanceof HostBuf h) {
            return h;
        }
        throw new IllegalArgumentException("buffer " + b + " is not CPU training memory (allocate it through these ops)");
    }

    private static HostBuf rows(Buf b, int n) {
        HostBuf h = host(b);
        if (n < 0 || n > h.rows()) {
            throw bad(n + " rows of " + h);
        }
        return h;
    }

    private static HostBuf shaped(Buf b, int n, int cols) {
        HostBuf h = rows(b, n);
        if (h.cols() != cols) {
            throw bad(h + " should have " + cols + " columns");
        }
        return h;
    }

    // ---- memory ------------------------------------------------------------------------------

    @Override
    public Buf allocate(String name, int rows, int cols) {
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException("buffer " + name + " needs positive rows and columns, got " + rows + " x " + cols);
        }
        long bytes = (long) rows * cols * Float.BYTES;
        try {
            return new HostBuf(name, rows, cols, arena.allocate(bytes, 64));
        } catch (OutOfMemoryError e) {
            throw new CriaException("cannot allocate " + (bytes >> 20) + " MiB for training buffer " + name + ": out of memory");
        }
    }

    @Override
    public void write(Buf dst, float[] src) {
        HostBuf d = host(dst);
        if (src.length % d.cols() != 0 || src.length > (long) d.rows() * d.cols()) {
            throw bad(src.length + " values into " + d);
        }
        MemorySegment.copy(src, 0, d.segment(), ValueLayout.JAVA_FLOAT, 0, src.length);
    }

    @Override
    public void read(Buf src, float[] dst) {
        HostBuf s = host(src);
        if (dst.length % s.cols() != 0 || dst.length > (long) s.rows() * s.cols()) {
            throw bad(dst.length + " values out of " + s + " (whole rows only)");
        }
        MemorySegment.copy(s.segment(), ValueLayout.JAVA_FLOAT, 0, dst, 0, dst.length);
    }

    @Override
    public void zero(Buf b) {
        HostBuf h = host(b);
        path.zero(h.segment(), (long) h.rows() * h.cols());
    }

    @Override
    public void copy(Buf src, int n, Buf dst) {
        HostBuf s = rows(src, n);
        HostBuf d = shaped(dst, n, s.cols());
        path.copy(s.segment(), d.segment(), (long) n * s.cols());
    }

    // ---- forward -----------------------------------------------------------------------------

    @Override
    public void embed(Buf table, int[] tokens, int n, Buf x) {
        if (table instanceof FrozenProducts.Weight f) {
            HostBuf xs = shaped(x, n, f.cols());
            checkTokens(tokens, n, f.rows());
            frozenProducts.embed(f, tokens, n, xs);
            return;
        }
        HostBuf t = host(table);
        HostBuf xs = shaped(x, n, t.cols());
        checkTokens(tokens, n, t.rows());
        path.embed(t, tokens, n, xs);
    }

    private static void checkTokens(int[] tokens, int n, int vocab) {
        if (tokens.length < n) {
            throw bad(tokens.length + " tokens for " + n + " rows");
        }
        for (int i = 0; i < n; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocab) {
                throw new IllegalArgumentException("token id " + tokens[i] + " at row " + i + " outside the vocabulary of " + vocab);
            }
        }
    }

    @Override
    public void rmsnorm(Buf x, Buf w, float eps, int n, Buf out, Buf rstd) {
        HostBuf xs = rows(x, n);
        HostBuf ws = shaped(w, 1, xs.cols());
        HostBuf o = shaped(out, n, xs.cols());
        HostBuf r = rows(rstd, n);
        path.rmsnorm(xs, ws, eps, n, o, r);
    }

    @Override
    public void rmsnormHeads(Buf x, Buf w, float eps, int headDim, int n, Buf out, Buf rstd) {
        HostBuf xs = rows(x, n);
        int heads = heads(xs, headDim);
        HostBuf o = shaped(out, n, xs.cols());
        if (o == xs) {
            throw bad("rmsnormHeads' out is its input " + xs);
        }
        path.rmsnorm(asHeads(xs, headDim), shaped(w, 1, headDim), eps, n * heads, asHeads(o, headDim), shaped(rstd, n * heads, 1));
    }

    @Override
    public void addBias(Buf x, Buf b, int n) {
        HostBuf xs = rows(x, n);
        HostBuf bs = shaped(b, 1, xs.cols());
        MemorySegment xseg = xs.segment(), bseg = bs.segment();
        int cols = xs.cols();
        for (int i = 0; i < n; i++) {
            long base = (long) i * cols;
            for (int c = 0; c < cols; c++) {
                xseg.setAtIndex(ValueLayout.JAVA_FLOAT, base + c,
                        xseg.getAtIndex(ValueLayout.JAVA_FLOAT, base + c) + bseg.getAtIndex(ValueLayout.JAVA_FLOAT, c));
            }
        }
    }

    private static int heads(HostBuf x, int headDim) {
        if (headDim <= 0 || x.cols() % headDim != 0) {
            throw bad(x + " is not whole heads of " + headDim + " values");
        }
        return x.cols() / headDim;
    }

    /** The same memory seen as one row per head: [rows · heads, headDim]; made once per buffer, so that a step allocates nothing. */
    private HostBuf asHeads(HostBuf b, int headDim) {
        HostBuf v = headViews.get(b);
        if (v == null || v.cols() != headDim) {
            v = new HostBuf(b.name(), b.rows() * (b.cols() / headDim), headDim, b.segment());
            headViews.put(b, v);
        }
        return v;
    }

    @Override
    public void matmul(Buf x, Buf w, int n, Buf out) {
        if (w instanceof FrozenProducts.Weight f) {
            frozenProducts.matmul(shaped(x, n, f.cols()), f, n, shaped(out, n, f.rows()));
            return;
        }
        HostBuf ws = host(w);
        HostBuf xs = shaped(x, n, ws.cols());
        HostBuf o = shaped(out, n, ws.rows());
        path.matmul(xs, ws, n, o);
    }

    @Override
    public void matmuls(Buf x, Buf[] w, int n, Buf[] out) {
        int count = w.length;
        if (out.length != count) {
            throw bad(count + " weights for " + out.length + " outputs");
        }
        if (count == 0) {
            return;
        }
        if (count > MAX_PARTS || anyFrozen(w)) {
            TrainOps.super.matmuls(x, w, n, out);
            return;
        }
        HostBuf xs = null;
        for (int j = 0; j < count; j++) {
            HostBuf ws = host(w[j]);
            xs = shaped(x, n, ws.cols());
            partW[j] = ws;
            partOut[j] = shaped(out[j], n, ws.rows());
        }
        path.matmuls(xs, partW, partOut, count, n);
    }

    @Override
    public void rope(Buf x, int heads, int headDim, int n, int len, Rope rope, boolean inverse) {
        HostBuf xs = shaped(x, n, heads * headDim);
        if (heads <= 0 || headDim <= 0 || len <= 0 || rope.dims() > headDim || rope.dims() % 2 != 0) {
            throw bad("rope of " + heads + " heads of " + headDim + " (rotating " + rope.dims() + ") in windows of " + len);
        }
        path.rope(xs, heads, headDim, n, len, rope, inverse);
    }

    private static void checkAttention(int seqs, int len, int heads, int kvHeads, int headDim) {
        if (seqs < 0 || len <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0 || heads % kvHeads != 0) {
            throw bad("attention of " + seqs + " windows of " + len + ", " + heads + " heads over " + kvHeads + " of " + headDim);
        }
    }

    @Override
    public void attention(Buf q, Buf k, Buf v, int seqs, int len, int heads, int kvHeads, int headDim, Buf out, Buf lse,
                          float dropP, long seed) {
        checkAttention(seqs, len, heads, kvHeads, headDim);
        int n = Math.multiplyExact(seqs, len);
        HostBuf qs = shaped(q, n, heads * headDim);
        HostBuf ks = shaped(k, n, kvHeads * headDim);
        HostBuf vs = shaped(v, n, kvHeads * headDim);
        HostBuf o = shaped(out, n, heads * headDim);
        HostBuf l = shaped(lse, n, heads);
        checkDrop(dropP);
        path.attention(qs, ks, vs, seqs, len, heads, kvHeads, headDim, o, l, dropP, seed);
    }

    private static void checkDrop(float p) {
        if (!(p >= 0f && p < 1f)) {
            throw new IllegalArgumentException("dropout probability must be in [0, 1), got " + p);
        }
    }

    @Override
    public void swiglu(Buf gate, Buf up, int n, Buf out) {
        HostBuf g = rows(gate, n);
        path.swiglu(g, shaped(up, n, g.cols()), n, shaped(out, n, g.cols()));
    }

    @Override
    public void add(Buf x, Buf y, int n) {
        HostBuf xs = rows(x, n);
        path.add(xs, shaped(y, n, xs.cols()), n);
    }

    @Override
    public void dropout(Buf x, int n, float p, long seed) {
        HostBuf xs = rows(x, n);
        checkDrop(p);
        if (p > 0f) {
            path.dropout(xs, n, p, seed);
        }
    }

    @Override
    public double crossEntropy(Buf x, Buf w, int[] targets, int n, float scale, Buf dx, Buf dw) {
        if (isFrozen(w)) {
            FrozenProducts.Weight f = frozenWithoutGradient(w, dw);
            HostBuf xs = shaped(x, n, f.cols());
            checkTargets(targets, n, f.rows());
            return frozenProducts.crossEntropy(xs, f, targets, n, scale, dx == null ? null : shaped(dx, n, f.cols()));
        }
        HostBuf ws = host(w);
        HostBuf xs = shaped(x, n, ws.cols());
        checkTargets(targets, n, ws.rows());
        HostBuf d = dx == null ? null : shaped(dx, n, ws.cols());
        HostBuf g = dw == null || dx == null ? null : shaped(dw, ws.rows(), ws.cols());
        return path.crossEntropy(xs, ws, targets, n, scale, d, g);
    }

    private static void checkTargets(int[] targets, int n, int vocab) {
        if (targets.length < n) {
            throw bad(targets.length + " targets for " + n + " rows");
        }
        for (int i = 0; i < n; i++) {
            if (targets[i] >= vocab) {
                throw new IllegalArgumentException("target " + targets[i] + " at row " + i + " outside the vocabulary of " + vocab);
            }
        }
    }

    // ---- backward ----------------------------------------------------------------------------

    @Override
    public void embedBackward(Buf dx, int[] tokens, int n, Buf dTable) {
        HostBuf t = host(dTable);
        HostBuf d = shaped(dx, n, t.cols());
        checkTokens(tokens, n, t.rows());
        path.embedBackward(d, tokens, n, t);
    }

    @Override
    public void rmsnormBackward(Buf dout, Buf x, Buf w, Buf rstd, int n, Buf dx, Buf dw) {
        HostBuf xs = rows(x, n);
        int d = xs.cols();
        path.rmsnormBackward(shaped(dout, n, d), xs, shaped(w, 1, d), rows(rstd, n), n, shaped(dx, n, d), shaped(dw, 1, d));
    }

    @Override
    public void rmsnormHeadsBackward(Buf dout, Buf x, Buf w, Buf rstd, int headDim, int n, Buf dx, Buf dw) {
        HostBuf xs = rows(x, n);
        int heads = heads(xs, headDim);
        int d = xs.cols();
        path.rmsnormBackward(asHeads(shaped(dout, n, d), headDim), asHeads(xs, headDim), shaped(w, 1, headDim),
                shaped(rstd, n * heads, 1), n * heads, asHeads(shaped(dx, n, d), headDim), shaped(dw, 1, headDim));
    }

    @Override
    public void matmulBackward(Buf dout, Buf x, Buf w, int n, Buf dx, boolean accumulateDx, Buf dw) {
        if (isFrozen(w)) {
            FrozenProducts.Weight f = frozenWithoutGradient(w, dw);
            HostBuf d = shaped(dout, n, f.rows());
            HostBuf xs = shaped(x, n, f.cols());
            if (dx != null) {
                frozenProducts.matmulDx(d, xs, f, n, shaped(dx, n, f.cols()), accumulateDx);
            }
            return;
        }
        HostBuf ws = host(w);
        HostBuf d = shaped(dout, n, ws.rows());
        HostBuf xs = shaped(x, n, ws.cols());
        HostBuf dxs = dx == null ? null : shaped(dx, n, ws.cols());
        HostBuf dws = dw == null ? null : shaped(dw, ws.rows(), ws.cols());
        path.matmulBackward(d, xs, ws, n, dxs, accumulateDx, dws);
    }

    @Override
    public void matmulsBackward(Buf[] dout, Buf x, Buf[] w, int n, Buf dx, boolean accumulateDx, Buf[] dw) {
        int count = w.length;
        if (dout.length != count || (dw != null && dw.length != count)) {
            throw bad(count + " weights for " + dout.length + " output gradients" + (dw != null ? " and " + dw.length + " weight gradients" : ""));
        }
        if (count == 0) {
            return;
        }
        if (count > MAX_PARTS || anyFrozen(w)) {
            TrainOps.super.matmulsBackward(dout, x, w, n, dx, accumulateDx, dw);
            return;
        }
        HostBuf xs = null;
        for (int j = 0; j < count; j++) {
            HostBuf ws = host(w[j]);
            xs = shaped(x, n, ws.cols());
            partW[j] = ws;
            partOut[j] = shaped(dout[j], n, ws.rows());
            partDw[j] = dw == null || dw[j] == null ? null : shaped(dw[j], ws.rows(), ws.cols());
        }
        HostBuf dxs = dx == null ? null : shaped(dx, n, xs.cols());
        path.matmulsBackward(partOut, xs, partW, count, n, dxs, accumulateDx, partDw);
    }

    @Override
    public void attentionBackward(Buf dout, Buf q, Buf k, Buf v, Buf out, Buf lse, int seqs, int len, int heads, int kvHeads,
                                  int headDim, float dropP, long seed, Buf dq, Buf dk, Buf dv) {
        checkAttention(seqs, len, heads, kvHeads, headDim);
        checkDrop(dropP);
        int n = Math.multiplyExact(seqs, len);
        int qd = heads * headDim;
        int kd = kvHeads * headDim;
        path.attentionBackward(shaped(dout, n, qd), shaped(q, n, qd), shaped(k, n, kd), shaped(v, n, kd), shaped(out, n, qd),
                shaped(lse, n, heads), seqs, len, heads, kvHeads, headDim, dropP, seed, shaped(dq, n, qd), shaped(dk, n, kd),
                shaped(dv, n, kd));
    }

    @Override
    public void swigluBackward(Buf dout, Buf gate, Buf up, int n, Buf dgate, Buf dup) {
        HostBuf g = rows(gate, n);
        int c = g.cols();
        path.swigluBackward(shaped(dout, n, c), g, shaped(up, n, c), n, shaped(dgate, n, c), shaped(dup, n, c));
    }

    // ---- optimizer ---------------------------------------------------------------------------

    @Override
    public double sumSquares(Buf g) {
        HostBuf h = host(g);
        return path.sumSquares(h.segment(), (long) h.rows() * h.cols());
    }

    @Override
    public void adamw(Buf p, Buf g, Buf m, Buf v, float gradScale, float lr, float beta1, float beta2, float eps,
                      float weightDecay, int step) {
        HostBuf ps = host(p);
        int r = ps.rows();
        int c = ps.cols();
        if (step < 1) {
            throw new IllegalArgumentException("AdamW step counts from 1, got " + step);
        }
        path.adamw(ps, shaped(g, r, c), shaped(m, r, c), shaped(v, r, c), gradScale, lr, beta1, beta2, eps, weightDecay, step);
    }

    @Override
    public void close() {
        frozenProducts.close();
        path.close();
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
