// The CPU backend's ops, written once for both paths: entry points with their casts and size checks, task setup, pool, scratch.
package cria.backend.cpu;

import cria.backend.AttnSpec;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.HostKvCache;
import cria.backend.KvCache;
import cria.backend.Ops;
import cria.backend.Rope;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Correct, parallel CPU ops in two implementations, chosen once by {@link CpuBackend}:
 * {@link NativeCpuOps} (the C kernels of native/) and {@link JavaCpuOps} (Vector API and the
 * tensor codecs). No op tests which path it is on. Every {@link Ops} method is here, once: it
 * casts its buffers, checks their sizes, fills this instance's task object for the op and runs it;
 * the task calls back an abstract method (rmsnorm's rows, one KV row's store, a thread's share of
 * the products...) that each path implements. Row-wise ops run through {@link #runRows}, the
 * path's choice of thread; matmul and attention, which the paths split too differently for one
 * rule, through a per-path {@code product} and {@code attend}.
 *
 * <p>Nothing is allocated per call once sizes have been seen (ARCHITECTURE.md rule 2): a parallel
 * op writes its arguments into a task object made once per instance and hands that to the pool
 * (whose volatile hand-off publishes the fields to the workers, and whose completion publishes
 * their results back), and scratch is per thread, grown only when a larger size first comes.
 * Ops are called by one thread at a time, as the pool itself requires.
 */
abstract sealed class CpuOps implements Ops permits JavaCpuOps, NativeCpuOps {
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;

    final WorkerPool pool;
    private final float[][] rowScratch;
    private double[] invFreq = new double[0];
    private Rope lastRope;
    private final Embed embed = new Embed();
    private final Rmsnorm rmsnorm = new Rmsnorm();
    private final RopeRows rope = new RopeRows();
    private final StoreKv storeKv = new StoreKv();
    private final Matmul matmul = new Matmul();
    private final Attention attention = new Attention();
    private final Swiglu swiglu = new Swiglu();
    private final Bias bias = new Bias();
    private final HeadNorm headNorm = new HeadNorm();

    CpuOps(WorkerPool pool) {
        this.pool = pool;
        this.rowScratch = new float[pool.threads()][0];
    }

    /**
     * Native kernels trust the sizes they are given: every op checks them against its buffers
     * first (a few integer comparisons per op), so that no inconsistent size, whatever its
     * origin, reaches C code as an out-of-bounds read or write. The message is built only when a
     * check fails ({@code if (!ok) throw sizes(...)}): built on every call it would be most of a
     * small op's cost, and garbage per token.
     */
    static IllegalArgumentException sizes(String what) {
        return new IllegalArgumentException("op sizes do not fit their buffers: " + what);
    }

    static void checkRows(HostBuf b, int n) {
        if (n < 0 || n > b.rows()) {
            throw sizes(n + " rows of " + b);
        }
    }

    /** Both buffers hold at least n rows. */
    static void checkRows(HostBuf a, HostBuf b, int n) {
        checkRows(a, n);
        checkRows(b, n);
    }

    /** Thread t's float scratch of at least n values (grown, never shrunk). */
    final float[] row(int t, int n) {
        if (rowScratch[t].length < n) {
            rowScratch[t] = new float[n];
        }
        return rowScratch[t];
    }

    /** The rope's inverse frequencies, computed again only when the rope changes. */
    final double[] inverseFrequencies(Rope rope) {
        if (rope != lastRope) {
            invFreq = rope.inverseFrequencies();
            lastRope = rope;
        }
        return invFreq;
    }

    /**
     * Whether matrix products with weights of this type and row length run in the native kernels
     * (false: in Java).
     */
    abstract boolean runsNatively(GgmlType type, int cols);

    /** Frees what these ops hold off-heap (scratch); the pool belongs to the backend. */
    void close() {}

    /**
     * A body over rows [lo, hi) of n that a call sets up through its fields; each thread of the
     * pool takes a contiguous share and an empty share does nothing.
     */
    abstract static class Rows implements WorkerPool.Task {
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

    /**
     * Runs a row-wise op's task over n rows, the path's way: the Java path always hands it to the
     * pool, the native one runs a few rows on the calling thread, where a C call costs less than
     * the hand-over.
     */
    abstract void runRows(WorkerPool.Task body, int n);

    @Override
    public final void embed(Weight table, Batch batch, Buf x) {
        Tensor t = table.tensor();
        int n = batch.size();
        for (int i = 0; i < n; i++) {
            int tok = batch.token(i);
            if (tok < 0 || tok >= t.rows()) {
                throw new IllegalArgumentException("token id " + tok + " outside the vocabulary of " + t.rows());
            }
        }
        embed.table = t;
        embed.batch = batch;
        embed.out = (HostBuf) x;
        embed.n = n;
        pool.run(embed);
    }

    /** embed's arguments and its share of the rows per thread. */
    private final class Embed extends Rows {
        Tensor table;
        Batch batch;
        HostBuf out;

        @Override
        void rows(int th, int lo, int hi) {
            float[] r = row(th, table.rowLength());
            for (int i = lo; i < hi; i++) {
                table.dequantizeRow(batch.token(i), r, 0);
                MemorySegment.copy(r, 0, out.segment(), FLOAT, out.rowOffset(i), out.cols());
            }
        }
    }

    @Override
    public final void rmsnorm(Buf xb, Weight w, float eps, int n, Buf outb) {
        HostBuf x = (HostBuf) xb;
        HostBuf out = (HostBuf) outb;
        checkRows(x, out, n);
        if (!(w.tensor().rows() == 1 && w.cols() == x.cols() && out.cols() >= x.cols())) {
            throw sizes("rmsnorm of " + x + " by " + w + " into " + out);
        }
        Rmsnorm r = rmsnorm;
        r.x = x;
        r.out = out;
        r.w = w;
        r.eps = eps;
        r.n = n;
        prepare(r);
        runRows(r, n);
    }

    /** rmsnorm's arguments: out = x / rms(x) * w, row by row. */
    final class Rmsnorm extends Rows {
        HostBuf x;
        HostBuf out;
        Weight w;
        float eps;

        @Override
        void rows(int th, int lo, int hi) {
            rmsnormRows(this, th, lo, hi);
        }
    }

    /** What a path sets up on the calling thread before rmsnorm's rows run (nothing by default). */
    void prepare(Rmsnorm r) {}

    /** rmsnorm of rows [lo, hi), on thread th. */
    abstract void rmsnormRows(Rmsnorm r, int th, int lo, int hi);

    @Override
    public final void rmsnormHeads(Buf xb, Weight w, float eps, int headDim, int n) {
        HostBuf x = (HostBuf) xb;
        checkRows(x, n);
        if (!(headDim > 0 && x.cols() % headDim == 0 && w.tensor().rows() == 1 && w.cols() == headDim)) {
            throw sizes("per-head rmsnorm of " + x + " with heads of " + headDim + " by " + w);
        }
        HeadNorm h = headNorm;
        h.x = x;
        h.w = w;
        h.eps = eps;
        h.headDim = headDim;
        h.n = Math.multiplyExact(n, x.cols() / headDim);  // the heads of rows [0, n), end to end
        prepare(h);
        runRows(h, h.n);
    }

    /**
     * rmsnormHeads' arguments: x's rows [0, n) seen as {@code n} runs of headDim values (its rows
     * are contiguous), each normalized in place on its own.
     */
    final class HeadNorm extends Rows {
        HostBuf x;
        Weight w;
        float eps;
        int headDim;

        @Override
        void rows(int th, int lo, int hi) {
            headNormRows(this, th, lo, hi);
        }
    }

    /** What a path sets up on the calling thread before rmsnormHeads' heads run (nothing by default). */
    void prepare(HeadNorm h) {}

    /** rmsnormHeads of heads [lo, hi) (head j at float offset j * headDim of x), on thread th. */
    abstract void headNormRows(HeadNorm h, int th, int lo, int hi);

    @Override
    public final void addBias(Buf xb, Weight w, int n) {
        HostBuf x = (HostBuf) xb;
        checkRows(x, n);
        if (!(w.tensor().rows() == 1 && w.cols() == x.cols())) {
            throw sizes("bias " + w + " added to " + x);
        }
        Bias b = bias;
        b.x = x;
        b.w = w;
        b.n = n;
        runRows(b, n);
    }

    /** addBias' arguments: the bias vector added to each of rows [0, n) of x. */
    private final class Bias extends Rows {
        HostBuf x;
        Weight w;

        @Override
        void rows(int th, int lo, int hi) {
            int d = x.cols();
            float[] b = row(th, d);
            w.tensor().dequantizeRow(0, b, 0);
            MemorySegment seg = x.segment();
            for (int i = lo; i < hi; i++) {
                long off = x.rowOffset(i);
                for (int c = 0; c < d; c++) {
                    long at = off + 4L * c;
                    seg.set(FLOAT, at, seg.get(FLOAT, at) + b[c]);
                }
            }
        }
    }

    // The fused steps run as their plain ops (Ops' default bodies) on the CPU, with the argument
    // arrays of their products kept here instead of made per call (nothing allocated per token).
    private final Weight[] oneWeight = new Weight[1];
    private final Weight[] twoWeights = new Weight[2];
    private final Buf[] oneOut = new Buf[1];
    private final Buf[] twoOuts = new Buf[2];

    @Override
    public final void rmsnormGateUpSwiglu(Buf x, Weight norm, float eps, int n, Buf xb, Weight gate, Weight up, Buf hb, Buf hb2) {
        rmsnorm(x, norm, eps, n, xb);
        twoWeights[0] = gate;
        twoWeights[1] = up;
        twoOuts[0] = hb;
        twoOuts[1] = hb2;
        matmul(xb, n, twoWeights, twoOuts);
        swiglu(hb, hb2, n);
    }

    @Override
    public final void matmulAdd(Buf x, int n, Weight w, Buf out, Buf residual) {
        oneWeight[0] = w;
        oneOut[0] = out;
        matmul(x, n, oneWeight, oneOut);
        add(residual, out, n);
    }

    @Override
    public final void matmul(Buf xb, int n, Weight[] ws, Buf[] outs) {
        HostBuf x = (HostBuf) xb;
        int k = ws[0].cols();
        checkRows(x, n);
        if (!(ws.length == outs.length && k <= x.cols())) {
            throw sizes("matmul of " + x + " by " + ws[0]);
        }
        for (int j = 0; j < ws.length; j++) {
            HostBuf o = (HostBuf) outs[j];
            checkRows(o, n);
            if (!(ws[j].cols() == k && ws[j].rows() <= o.cols())) {
                throw sizes("matmul by " + ws[j] + " into " + o);
            }
        }
        Matmul m = matmul;
        m.x = x;
        m.n = n;
        m.ws = ws;
        m.outs = outs;
        product(m);
    }

    /**
     * matmul's checked arguments: every weight has the same row length, at most x's row, and every
     * output holds n rows of its weight's rows. Each path splits this work its own way.
     */
    final class Matmul implements WorkerPool.Task {
        HostBuf x;
        int n;
        Weight[] ws;
        Buf[] outs;

        @Override
        public void run(int th, int nt) {
            productShare(this, th, nt);
        }
    }

    /** Runs the products: what the path prepares on the calling thread, then the pool. */
    abstract void product(Matmul m);

    /** Thread th of nt's share of the products. */
    abstract void productShare(Matmul m, int th, int nt);

    @Override
    public final void rope(Buf qb, Buf kb, int headDim, Batch batch, Rope rope) {
        double[] inv = inverseFrequencies(rope);
        HostBuf q = (HostBuf) qb;
        HostBuf k = (HostBuf) kb;
        int n = batch.size();
        checkRows(q, k, n);
        if (!(headDim > 0 && q.cols() % headDim == 0 && k.cols() % headDim == 0 && rope.dims() <= headDim
                && inv.length >= rope.dims() / 2)) {
            throw sizes("rope of " + q + ", " + k + " with heads of " + headDim);
        }
        RopeRows r = this.rope;
        r.q = q;
        r.k = k;
        r.headDim = headDim;
        r.batch = batch;
        r.rope = rope;
        r.inv = inv;
        r.n = n;
        prepare(r);
        runRows(r, n);
    }

    /** rope's arguments: q and k rotated in place, row by row, at the batch's positions. */
    final class RopeRows extends Rows {
        HostBuf q;
        HostBuf k;
        int headDim;
        Batch batch;
        Rope rope;
        double[] inv;

        @Override
        void rows(int th, int lo, int hi) {
            ropeRows(this, th, lo, hi);
        }
    }

    /** What a path sets up on the calling thread before rope's rows run (nothing by default). */
    void prepare(RopeRows r) {}

    /** rope of rows [lo, hi) of both q and k, on thread th. */
    abstract void ropeRows(RopeRows r, int th, int lo, int hi);

    @Override
    public final void storeKv(KvCache cache, int layer, Buf kb, Buf vb, Batch batch) {
        HostKvCache c = (HostKvCache) cache;
        HostBuf k = (HostBuf) kb;
        HostBuf v = (HostBuf) vb;
        int d = c.kvDim();
        int n = batch.size();
        checkRows(k, v, n);
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
        s.n = n;
        runRows(s, n);
    }

    /** storeKv's arguments: each entry's k and v rows into its cache slot. */
    private final class StoreKv extends Rows {
        HostKvCache c;
        int layer;
        HostBuf k;
        HostBuf v;
        Batch batch;
        boolean f16;

        @Override
        void rows(int th, int lo, int hi) {
            int d = c.kvDim();
            for (int i = lo; i < hi; i++) {
                long at = c.positionIndex(layer, batch.sequence(i), batch.position(i));
                storeRow(k.segment(), k.rowOffset(i), c.keys(), at, d, f16);
                storeRow(v.segment(), v.rowOffset(i), c.values(), at, d, f16);
            }
        }
    }

    /** d floats of src at byte offset off into dst from element index idx on, as F16 or F32. */
    abstract void storeRow(MemorySegment src, long off, MemorySegment dst, long idx, int d, boolean f16);

    @Override
    public final void attention(Buf qb, KvCache cache, int layer, int heads, int kvHeads, int headDim, AttnSpec spec, Batch batch,
            Buf outb) {
        HostKvCache c = (HostKvCache) cache;
        HostBuf q = (HostBuf) qb;
        HostBuf out = (HostBuf) outb;
        checkRows(q, out, batch.size());
        if (!(heads > 0 && kvHeads > 0 && headDim > 0 && heads % kvHeads == 0 && (long) heads * headDim <= q.cols()
                && (long) heads * headDim <= out.cols() && (long) kvHeads * headDim == c.kvDim() && layer >= 0 && layer < c.config().layers())) {
            throw sizes("attention of " + heads + "/" + kvHeads + " heads x " + headDim + " over " + q + " and a cache of kvDim " + c.kvDim());
        }
        // every entry's (sequence, position) was checked against its pages once for the step (Llama.step)
        Attention a = attention;
        a.q = q;
        a.out = out;
        a.c = c;
        a.layer = layer;
        a.heads = heads;
        a.kvHeads = kvHeads;
        a.headDim = headDim;
        a.spec = spec;
        a.batch = batch;
        attend(a);
    }

    /**
     * attention's checked arguments: heads a multiple of kvHeads, q and out holding the batch's
     * rows of heads * headDim, the cache's rows kvHeads * headDim. Each path splits this work its
     * own way.
     */
    final class Attention implements WorkerPool.Task {
        HostBuf q;
        HostBuf out;
        HostKvCache c;
        int layer;
        int heads;
        int kvHeads;
        int headDim;
        AttnSpec spec;
        Batch batch;

        /** Query heads per KV head. */
        int group() {
            return heads / kvHeads;
        }

        /** Whether the cache holds F16 (else F32). */
        boolean f16() {
            return c.config().type() == KvCache.Type.F16;
        }

        /** The scores' scale (1 / sqrt(headDim) for the plain spec). */
        float scale() {
            return spec.scale();
        }

        @Override
        public void run(int th, int nt) {
            attentionShare(this, th, nt);
        }
    }

    /** Runs attention: what the path prepares on the calling thread, then the pool (or not). */
    abstract void attend(Attention a);

    /** Thread th of nt's share of attention. */
    abstract void attentionShare(Attention a, int th, int nt);

    @Override
    public final void swiglu(Buf ab, Buf bb, int n) {
        HostBuf a = (HostBuf) ab;
        HostBuf b = (HostBuf) bb;
        checkSameShape(a, b, n, "swiglu");
        Swiglu s = swiglu;
        s.a = a.segment();
        s.b = b.segment();
        s.total = (long) n * a.cols();
        runRows(s, n);
    }

    /** swiglu's arguments; it is element-wise, so the threads split the elements, not the rows. */
    private final class Swiglu implements WorkerPool.Task {
        MemorySegment a;
        MemorySegment b;
        long total;

        @Override
        public void run(int th, int nt) {
            swigluElements(a, b, total * th / nt, total * (th + 1) / nt);
        }
    }

    /** a = silu(a) * b over the floats [from, to) of both. */
    abstract void swigluElements(MemorySegment a, MemorySegment b, long from, long to);

    @Override
    public final void geglu(Buf ab, Buf bb, int n) {
        HostBuf a = (HostBuf) ab;
        HostBuf b = (HostBuf) bb;
        checkSameShape(a, b, n, "geglu");
        elementwise(Elementwise.GEGLU, a, b.segment(), 0, n);
    }

    @Override
    public final void scale(Buf xb, float s, int n) {
        HostBuf x = (HostBuf) xb;
        checkRows(x, n);
        elementwise(Elementwise.SCALE, x, null, s, n);
    }

    @Override
    public final void softcap(Buf xb, float cap, int n) {
        HostBuf x = (HostBuf) xb;
        checkRows(x, n);
        if (!(cap > 0)) {
            throw new IllegalArgumentException("soft cap " + cap + " must be positive");
        }
        elementwise(Elementwise.SOFTCAP, x, null, cap, n);
    }

    private void elementwise(int op, HostBuf a, MemorySegment b, float f, int n) {
        Elementwise e = this.eltwise;
        e.op = op;
        e.a = a.segment();
        e.b = b;
        e.f = f;
        e.total = (long) n * a.cols();
        runRows(e, n);
    }

    /**
     * Gemma's element-wise ops (geglu, scale, softcap): the threads split the elements; geglu is
     * each path's own ({@link #gegluElements}), scale and softcap are Java on both. tanh is taken as {@code 1 - 2 / (exp(2u) + 1)} (exp is an
     * intrinsic, Math.tanh is not), in double, which is tanh within float rounding.
     */
    private final class Elementwise implements WorkerPool.Task {
        static final int GEGLU = 0;
        static final int SCALE = 1;
        static final int SOFTCAP = 2;
        int op;
        MemorySegment a;
        MemorySegment b;
        float f;
        long total;

        @Override
        public void run(int th, int nt) {
            long from = total * th / nt;
            long to = total * (th + 1) / nt;
            switch (op) {
                case GEGLU -> gegluElements(a, b, from, to);
                case SCALE -> {
                    for (long e = from; e < to; e++) {
                        a.setAtIndex(FLOAT, e, a.getAtIndex(FLOAT, e) * f);
                    }
                }
                default -> {
                    float inv = 1f / f;
                    for (long e = from; e < to; e++) {
                        a.setAtIndex(FLOAT, e, f * tanh(a.getAtIndex(FLOAT, e) * inv));
                    }
                }
            }
        }
    }

    private final Elementwise eltwise = new Elementwise();

    /** tanh through exp (in double, so small arguments keep their digits), saturating where exp would overflow. */
    static float tanh(float u) {
        if (u > 20f) {
            return 1f;
        }
        if (u < -20f) {
            return -1f;
        }
        return (float) (1 - 2 / (Math.exp(2.0 * u) + 1));
    }

    /** a = gelu(a) * b (tanh form) over the floats [from, to) of both. */
    abstract void gegluElements(MemorySegment a, MemorySegment b, long from, long to);

    /** GELU, tanh form. */
    static float gelu(float g) {
        return 0.5f * g * (1f + tanh(0.7978845608f * (g + 0.044715f * g * g * g)));
    }

    @Override
    public final void add(Buf xb, Buf yb, int n) {
        HostBuf x = (HostBuf) xb;
        HostBuf y = (HostBuf) yb;
        checkSameShape(x, y, n, "add");
        // one pass on the calling thread: too little work per element to hand over
        addElements(x.segment(), y.segment(), (long) n * x.cols());
    }

    /** x += y over the first count floats of both. */
    abstract void addElements(MemorySegment x, MemorySegment y, long count);

    /** For the element-wise ops: both buffers hold n rows of the same length. */
    private static void checkSameShape(HostBuf a, HostBuf b, int n, String op) {
        checkRows(a, b, n);
        if (a.cols() != b.cols()) {
            throw sizes(op + " of " + a + " and " + b);
        }
    }

    @Override
    public final void gather(Buf xb, int[] rows, int m, Buf outb) {
        HostBuf x = (HostBuf) xb;
        HostBuf out = (HostBuf) outb;
        for (int j = 0; j < m; j++) {
            MemorySegment.copy(x.segment(), x.rowOffset(rows[j]), out.segment(), out.rowOffset(j), 4L * x.cols());
        }
    }
}
