// Training's ops in Java (Vector API inner loops) over the worker pool: the path without the native kernels, and the base the native path overrides.
package cria.backend.cpu;

import cria.backend.HostBuf;
import cria.backend.Rope;
import cria.backend.TrainOps;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The computations of {@link CpuTrainOps}, checked there. A parallel op writes its arguments into
 * this object's fields and runs its task (one per op, made once) on every thread of the pool (the pool's hand-off
 * publishes the fields); each thread takes a contiguous share. How work is split keeps every sum
 * in one order fixed by the shapes: row-wise ops split rows; weight gradients, whose sums run over
 * rows, split output rows or columns; sums over everything go through fixed-size blocks.
 */
class JavaTrainPath {
    static final VectorSpecies<Float> F = Simd.F;
    static final int L = F.length();
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final ValueLayout.OfFloat FL = ValueLayout.JAVA_FLOAT;
    /** Rows of one cross-entropy block: the logits of a block exist at once, and weight gradients add up block by block. */
    static final int CE_BLOCK = 256;
    /** Values per block of sumSquares' partial sums (fixed, so the sum does not depend on the threads). */
    static final int SQ_BLOCK = 8192;

    final WorkerPool pool;
    final int threads;
    private final float[][] scratch;
    private final float[][] scratch2;

    // the current op's arguments, set on the calling thread before the pool runs its task
    HostBuf a, b, c, d, e, f, g, h, i;
    int n, cols, heads, kvHeads, headDim, len, seqs, block0, blockRows;
    float p1, p2, p3, p4, p5, p6, p7;
    long seed;
    int[] ints;
    boolean flag;
    MemorySegment sa, sb;
    long count;
    private final WorkerPool.Task[] tasks = tasks();

    // rope's angles per (position, pair), kept while the rope and window length stay the same
    private float[] cosT = new float[0];
    private float[] sinT = new float[0];
    private Rope lastRope;
    private int lastLen = -1;
    // cross-entropy's block logits and per-row losses; sumSquares' partial sums
    float[] ceLogits = new float[0];
    MemorySegment ceSeg = MemorySegment.ofArray(ceLogits);
    double[] rowLoss = new double[0];
    private double[] partial = new double[0];

    static final int ZERO = 1, COPY = 2, EMBED = 3, RMSNORM = 4, MATMUL = 5, ROPE = 6, ATTENTION = 7, SWIGLU = 8, ADD = 9,
            DROPOUT = 10, CE_ROWS = 11, CE_DW = 12, EMBED_BWD = 13, RMS_BWD_DX = 14, RMS_BWD_DW = 15, MM_DX = 16, MM_DW = 17,
            ATTENTION_BWD = 18, SWIGLU_BWD = 19, SUMSQ = 20, ADAMW = 21;

    JavaTrainPath(WorkerPool pool) {
        this.pool = pool;
        this.threads = pool.threads();
        this.scratch = new float[threads][0];
        this.scratch2 = new float[threads][0];
    }

    void close() {}

    // ---- single-thread panel products (fine-tuning's frozen weights, cria.backend.cpu.FrozenProducts) ----

    /** Readies every thread's scratch for panel products of k inputs and up to o outputs. */
    void preparePanels(int k, int o) {}

    /** {@code out[i][oOff + r] = Σ_c x[i][c]·w[r][c]} for rows i &lt; n, r &lt; w.rows(): thread th's call, its own scratch. */
    void matmulPanel(int th, HostBuf x, int n, HostBuf w, int wRows, HostBuf out, int oOff) {
        int k = x.cols();
        for (int i = 0; i < n; i++) {
            for (int r = 0; r < wRows; r++) {
                float sum = 0;
                for (int c = 0; c < k; c++) {
                    sum = Math.fma(x.get(i, c), w.get(r, c), sum);
                }
                out.set(i, oOff + r, sum);
            }
        }
    }

    /** {@code dx[i][c] (= or +=) Σ_r g[i][gOff + r]·w[r][c]} for rows i &lt; n, r &lt; wRows: thread th's call. */
    void dxPanel(int th, HostBuf g, int gOff, int n, HostBuf w, int wRows, HostBuf dx, boolean accumulate) {
        int k = w.cols();
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < k; c++) {
                float sum = accumulate ? dx.get(i, c) : 0f;
                for (int r = 0; r < wRows; r++) {
                    sum = Math.fma(g.get(i, gOff + r), w.get(r, c), sum);
                }
                dx.set(i, c, sum);
            }
        }
    }

    /** Runs the op whose arguments are set on every thread. */
    final void run(int code) {
        pool.run(tasks[code]);
    }

    /** Values below which a row-wise or element-wise op runs on the calling thread alone (the hand-off costs more). */
    static final long SMALL_OP = 16384;

    /**
     * Runs an element-wise or row-wise task of {@code values} values: on the calling thread alone
     * when it is small (its results do not depend on the split), on every thread otherwise.
     */
    final void runRows(WorkerPool.Task task, long values) {
        if (values < SMALL_OP) {
            task.run(0, 1);
        } else {
            pool.run(task);
        }
    }

    /** Thread t's float scratch of at least n values (grown, never shrunk). */
    final float[] scratch(int t, int n) {
        if (scratch[t].length < n) {
            scratch[t] = new float[n];
        }
        return scratch[t];
    }

    final float[] scratch2(int t, int n) {
        if (scratch2[t].length < n) {
            scratch2[t] = new float[n];
        }
        return scratch2[t];
    }

    /** Thread t's share of [0, total): its start (its end is start(t + 1)). */
    static int lo(int total, int t, int nt) {
        return WorkerPool.split(total, t, nt);
    }

    /** Thread t's share of [0, total) in whole units of {@code unit} (so that vector tiles stay whole). */
    static int loUnits(int total, int unit, int t, int nt) {
        int units = (total + unit - 1) / unit;
        return Math.min(total, WorkerPool.split(units, t, nt) * unit);
    }

    /**
     * One task per op, made once: each is compiled on its own, so that the JIT inlines its Vector
     * API calls fully (one method dispatching every op grew past the inlining budget, and its
     * vectors were boxed: allocation per call).
     */
    private WorkerPool.Task[] tasks() {
        WorkerPool.Task[] t = new WorkerPool.Task[22];
        t[ZERO] = (th, nt) -> zeroRange(count * th / nt, count * (th + 1) / nt);
        t[COPY] = (th, nt) -> {
            long from = count * th / nt, to = count * (th + 1) / nt;
            MemorySegment.copy(sa, 4 * from, sb, 4 * from, 4 * (to - from));
        };
        t[EMBED] = (th, nt) -> embedRows(lo(n, th, nt), lo(n, th + 1, nt));
        t[RMSNORM] = (th, nt) -> rmsnormRows(lo(n, th, nt), lo(n, th + 1, nt));
        t[MATMUL] = (th, nt) -> matmulRows(th, lo(n, th, nt), lo(n, th + 1, nt));
        t[ROPE] = (th, nt) -> ropeRows(lo(n, th, nt), lo(n, th + 1, nt));
        t[ATTENTION] = (th, nt) -> attentionItems(th, lo(seqs * heads, th, nt), lo(seqs * heads, th + 1, nt));
        t[SWIGLU] = (th, nt) -> swigluRange(lo(n * cols, th, nt), lo(n * cols, th + 1, nt));
        t[ADD] = (th, nt) -> addRange(lo(n * cols, th, nt), lo(n * cols, th + 1, nt));
        t[DROPOUT] = (th, nt) -> dropoutRange(lo(n * cols, th, nt), lo(n * cols, th + 1, nt));
        t[SWIGLU_BWD] = (th, nt) -> swigluBackwardRange(lo(n * cols, th, nt), lo(n * cols, th + 1, nt));
        t[CE_ROWS] = (th, nt) -> ceRows(th, block0 + lo(blockRows, th, nt), block0 + lo(blockRows, th + 1, nt));
        t[CE_DW] = (th, nt) -> dwRows(th, null, a, block0, blockRows, ceLogits, loUnits(b.rows(), 4, th, nt), loUnits(b.rows(), 4, th + 1, nt));
        t[EMBED_BWD] = (th, nt) -> embedBackwardCols(loUnits(cols, L, th, nt), loUnits(cols, L, th + 1, nt));
        t[RMS_BWD_DX] = (th, nt) -> rmsnormBackwardRows(lo(n, th, nt), lo(n, th + 1, nt));
        t[RMS_BWD_DW] = (th, nt) -> rmsnormBackwardCols(loUnits(cols, L, th, nt), loUnits(cols, L, th + 1, nt));
        t[MM_DX] = (th, nt) -> matmulDxRows(lo(n, th, nt), lo(n, th + 1, nt));
        t[MM_DW] = (th, nt) -> matmulDwRows(th, loUnits(c.rows(), 4, th, nt), loUnits(c.rows(), 4, th + 1, nt));
        t[ATTENTION_BWD] = (th, nt) -> attentionBackwardItems(th, lo(seqs * kvHeads, th, nt), lo(seqs * kvHeads, th + 1, nt));
        t[SUMSQ] = (th, nt) -> sumSquaresBlocks(lo(blockRows, th, nt), lo(blockRows, th + 1, nt));
        t[ADAMW] = (th, nt) -> adamwRange(loUnits((int) count, L, th, nt), loUnits((int) count, L, th + 1, nt));
        return t;
    }

    private void zeroRange(long from, long to) {
        long k = from;
        for (; k + L <= to; k += L) {
            FloatVector.zero(F).intoMemorySegment(sa, 4 * k, LE);
        }
        for (; k < to; k++) {
            sa.setAtIndex(FL, k, 0f);
        }
    }

    // ---- memory ------------------------------------------------------------------------------

    void zero(MemorySegment s, long values) {
        sa = s;
        count = values;
        runRows(tasks[ZERO], values);
    }

    void copy(MemorySegment src, MemorySegment dst, long values) {
        sa = src;
        sb = dst;
        count = values;
        runRows(tasks[COPY], values);
    }

    /**
     * The lanes of v summed in a fixed order. ({@code reduceLanes(ADD)} may add in another order
     * compiled than interpreted, which would make results depend on the JIT's progress.)
     */
    static float sum(FloatVector v) {
        float s = 0;
        for (int k = 0; k < L; k++) {
            s += v.lane(k);
        }
        return s;
    }

    /** Σ x² of n floats of s from byte offset off, in an order fixed by n. */
    static float sumSquaresOf(MemorySegment s, long off, int n) {
        FloatVector acc = FloatVector.zero(F);
        int k = 0;
        for (; k + L <= n; k += L) {
            FloatVector v = FloatVector.fromMemorySegment(F, s, off + 4L * k, LE);
            acc = v.fma(v, acc);
        }
        float sum = sum(acc);
        for (; k < n; k++) {
            float v = s.get(FL, off + 4L * k);
            sum += v * v;
        }
        return sum;
    }

    // ---- embed -------------------------------------------------------------------------------

    void embed(HostBuf table, int[] tokens, int n, HostBuf x) {
        a = table;
        ints = tokens;
        this.n = n;
        b = x;
        run(EMBED);
    }

    private void embedRows(int lo, int hi) {
        long rowBytes = 4L * a.cols();
        for (int r = lo; r < hi; r++) {
            MemorySegment.copy(a.segment(), a.rowOffset(ints[r]), b.segment(), b.rowOffset(r), rowBytes);
        }
    }

    void embedBackward(HostBuf dx, int[] tokens, int n, HostBuf dTable) {
        a = dx;
        ints = tokens;
        this.n = n;
        b = dTable;
        cols = dx.cols();
        run(EMBED_BWD);
    }

    /** Columns [c0, c1) of every row, rows in order: each table element's sum in one fixed order. */
    private void embedBackwardCols(int c0, int c1) {
        MemorySegment dx = a.segment();
        MemorySegment tb = b.segment();
        for (int r = 0; r < n; r++) {
            long src = a.rowOffset(r);
            long dst = b.rowOffset(ints[r]);
            int col = c0;
            for (; col + L <= c1; col += L) {
                FloatVector t = FloatVector.fromMemorySegment(F, tb, dst + 4L * col, LE);
                t.add(FloatVector.fromMemorySegment(F, dx, src + 4L * col, LE)).intoMemorySegment(tb, dst + 4L * col, LE);
            }
            for (; col < c1; col++) {
                tb.set(FL, dst + 4L * col, tb.get(FL, dst + 4L * col) + dx.get(FL, src + 4L * col));
            }
        }
    }

    // ---- rmsnorm -----------------------------------------------------------------------------

    void rmsnorm(HostBuf x, HostBuf w, float eps, int n, HostBuf out, HostBuf rstd) {
        a = x;
        b = w;
        p1 = eps;
        this.n = n;
        c = out;
        d = rstd;
        run(RMSNORM);
    }

    private void rmsnormRows(int lo, int hi) {
        int dim = a.cols();
        MemorySegment x = a.segment(), w = b.segment(), o = c.segment();
        for (int r = lo; r < hi; r++) {
            long off = a.rowOffset(r);
            float rs = (float) (1.0 / Math.sqrt(sumSquaresOf(x, off, dim) / dim + p1));
            d.set(r, 0, rs);
            int col = 0;
            for (; col + L <= dim; col += L) {
                FloatVector v = FloatVector.fromMemorySegment(F, x, off + 4L * col, LE).mul(rs);
                v.mul(FloatVector.fromMemorySegment(F, w, 4L * col, LE)).intoMemorySegment(o, off + 4L * col, LE);
            }
            for (; col < dim; col++) {
                o.set(FL, off + 4L * col, x.get(FL, off + 4L * col) * rs * w.getAtIndex(FL, col));
            }
        }
    }

    /** rmsnorm backward's arguments, in the fields every path's tasks read. */
    final void setRmsnormBackward(HostBuf dout, HostBuf x, HostBuf w, HostBuf rstd, int n, HostBuf dx, HostBuf dw) {
        a = dout;
        b = x;
        c = w;
        d = rstd;
        this.n = n;
        e = dx;
        f = dw;
        cols = x.cols();
    }

    void rmsnormBackward(HostBuf dout, HostBuf x, HostBuf w, HostBuf rstd, int n, HostBuf dx, HostBuf dw) {
        setRmsnormBackward(dout, x, w, rstd, n, dx, dw);
        run(RMS_BWD_DX);
        run(RMS_BWD_DW);
    }

    /** dx += rstd·(w·g) - x·rstd³/d·Σ(w·g·x), row by row. */
    private void rmsnormBackwardRows(int lo, int hi) {
        int dim = cols;
        MemorySegment g = a.segment(), x = b.segment(), w = c.segment(), dx = e.segment();
        for (int r = lo; r < hi; r++) {
            long off = b.rowOffset(r);
            float rs = d.get(r, 0);
            FloatVector acc = FloatVector.zero(F);
            int col = 0;
            for (; col + L <= dim; col += L) {
                FloatVector gw = FloatVector.fromMemorySegment(F, g, off + 4L * col, LE).mul(FloatVector.fromMemorySegment(F, w, 4L * col, LE));
                acc = gw.fma(FloatVector.fromMemorySegment(F, x, off + 4L * col, LE), acc);
            }
            float sum = sum(acc);
            for (; col < dim; col++) {
                sum += g.get(FL, off + 4L * col) * w.getAtIndex(FL, col) * x.get(FL, off + 4L * col);
            }
            float k = -sum * rs * rs * rs / dim;
            FloatVector vk = FloatVector.broadcast(F, k), vr = FloatVector.broadcast(F, rs);
            for (col = 0; col + L <= dim; col += L) {
                FloatVector gw = FloatVector.fromMemorySegment(F, g, off + 4L * col, LE).mul(FloatVector.fromMemorySegment(F, w, 4L * col, LE));
                FloatVector old = FloatVector.fromMemorySegment(F, dx, off + 4L * col, LE);
                gw.fma(vr, FloatVector.fromMemorySegment(F, x, off + 4L * col, LE).fma(vk, old)).intoMemorySegment(dx, off + 4L * col, LE);
            }
            for (; col < dim; col++) {
                float gw = g.get(FL, off + 4L * col) * w.getAtIndex(FL, col);
                dx.set(FL, off + 4L * col, gw * rs + (x.get(FL, off + 4L * col) * k + dx.get(FL, off + 4L * col)));
            }
        }
    }

    /** dw[c] += Σ_rows g·x·rstd over columns [c0, c1), rows in order. */
    private void rmsnormBackwardCols(int c0, int c1) {
        MemorySegment g = a.segment(), x = b.segment(), dw = f.segment();
        int col = c0;
        for (; col + L <= c1; col += L) {
            FloatVector acc = FloatVector.zero(F);
            for (int r = 0; r < n; r++) {
                long off = b.rowOffset(r) + 4L * col;
                FloatVector gx = FloatVector.fromMemorySegment(F, g, off, LE).mul(d.get(r, 0));
                acc = gx.fma(FloatVector.fromMemorySegment(F, x, off, LE), acc);
            }
            acc.add(FloatVector.fromMemorySegment(F, dw, 4L * col, LE)).intoMemorySegment(dw, 4L * col, LE);
        }
        for (; col < c1; col++) {
            float acc = 0;
            for (int r = 0; r < n; r++) {
                long off = b.rowOffset(r) + 4L * col;
                acc = Math.fma(g.get(FL, off) * d.get(r, 0), x.get(FL, off), acc);
            }
            dw.setAtIndex(FL, col, dw.getAtIndex(FL, col) + acc);
        }
    }

    // ---- matrix products ---------------------------------------------------------------------

    void matmul(HostBuf x, HostBuf w, int n, HostBuf out) {
        a = x;
        b = w;
        this.n = n;
        c = out;
        run(MATMUL);
    }

    /** out[r][o] = x[r]·w[o] for rows [lo, hi): two rows by four weight rows per tile, each dot in one order. */
    private void matmulRows(int t, int lo, int hi) {
        matmulRowsInto(a, b, c.segment(), c.cols(), lo, hi, lo);
    }

    /** out row (r - lo + outRow0) = x[r] · wᵀ for rows [lo, hi); out rows are outCols floats apart. */
    static void matmulRowsInto(HostBuf xb, HostBuf wb, MemorySegment out, int outCols, int lo, int hi, int outRow0) {
        int k = xb.cols();
        int o = wb.rows();
        int kv = k - k % L;
        MemorySegment x = xb.segment(), w = wb.segment();
        for (int r = lo; r < hi; r++) {
            long xo = xb.rowOffset(r);
            long oo = 4L * ((long) (r - lo + outRow0) * outCols);
            // four weight rows per tile; the last tile repeats the last row instead of a loop of its own
            // (a loop run once per row was compiled with boxed vectors)
            for (int j = 0; j < o; j += 4) {
                FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
                long w0 = wb.rowOffset(j);
                long w1 = wb.rowOffset(Math.min(j + 1, o - 1));
                long w2 = wb.rowOffset(Math.min(j + 2, o - 1));
                long w3 = wb.rowOffset(Math.min(j + 3, o - 1));
                for (int col = 0; col < kv; col += L) {
                    FloatVector xv = FloatVector.fromMemorySegment(F, x, xo + 4L * col, LE);
                    a0 = FloatVector.fromMemorySegment(F, w, w0 + 4L * col, LE).fma(xv, a0);
                    a1 = FloatVector.fromMemorySegment(F, w, w1 + 4L * col, LE).fma(xv, a1);
                    a2 = FloatVector.fromMemorySegment(F, w, w2 + 4L * col, LE).fma(xv, a2);
                    a3 = FloatVector.fromMemorySegment(F, w, w3 + 4L * col, LE).fma(xv, a3);
                }
                out.set(FL, oo + 4L * j, sum(a0) + dotTail(x, xo, w, w0, kv, k));
                if (j + 1 < o) {
                    out.set(FL, oo + 4L * (j + 1), sum(a1) + dotTail(x, xo, w, w1, kv, k));
                }
                if (j + 2 < o) {
                    out.set(FL, oo + 4L * (j + 2), sum(a2) + dotTail(x, xo, w, w2, kv, k));
                }
                if (j + 3 < o) {
                    out.set(FL, oo + 4L * (j + 3), sum(a3) + dotTail(x, xo, w, w3, kv, k));
                }
            }
        }
    }

    /** Σ a[c]·b[c] for c in [c0, c1) (the values after the last whole vector). */
    private static float dotTail(MemorySegment a, long ao, MemorySegment b, long bo, int c0, int c1) {
        float s = 0;
        for (int c = c0; c < c1; c++) {
            s = Math.fma(a.get(FL, ao + 4L * c), b.get(FL, bo + 4L * c), s);
        }
        return s;
    }

    /**
     * out[c] (=|+=) Σ_j g[j]·w[j][c] over c in [0, k), j in [0, rows): g is {@code gs} from byte
     * gOff, or {@code ga} from gOff when ga is not null; w rows wb's.
     */
    static void rowTimesMatrix(MemorySegment gs, float[] ga, long gOff, HostBuf wb, int rows, MemorySegment out, long outOff,
                               boolean accumulate) {
        int k = wb.cols();
        MemorySegment w = wb.segment();
        int col = 0;
        for (; col + L <= k; col += L) {
            // (no vector chosen by a condition before the loop: C2 boxed that phi, once per call)
            FloatVector a0 = FloatVector.zero(F);
            for (int j = 0; j < rows; j++) {
                float gv = ga != null ? ga[(int) gOff + j] : gs.get(FL, gOff + 4L * j);
                a0 = FloatVector.fromMemorySegment(F, w, wb.rowOffset(j) + 4L * col, LE).fma(FloatVector.broadcast(F, gv), a0);
            }
            if (accumulate) {
                a0 = a0.add(FloatVector.fromMemorySegment(F, out, outOff + 4L * col, LE));
            }
            a0.intoMemorySegment(out, outOff + 4L * col, LE);
        }
        for (; col < k; col++) {
            float a0 = 0f;
            for (int j = 0; j < rows; j++) {
                float gv = ga != null ? ga[(int) gOff + j] : gs.get(FL, gOff + 4L * j);
                a0 = Math.fma(w.get(FL, wb.rowOffset(j) + 4L * col), gv, a0);
            }
            out.set(FL, outOff + 4L * col, accumulate ? a0 + out.get(FL, outOff + 4L * col) : a0);
        }
    }

    /** out[j] = x · w[j]ᵀ for j < count (checked by the caller): one product after the other here. */
    void matmuls(HostBuf x, HostBuf[] w, HostBuf[] out, int count, int n) {
        for (int j = 0; j < count; j++) {
            matmul(x, w[j], n, out[j]);
        }
    }

    /** Backward of {@link #matmuls}: dx (= or +=) Σ_j dout[j] · w[j] in j order, dw[j] += dout[j]ᵀ · x (null entries skipped). */
    void matmulsBackward(HostBuf[] dout, HostBuf x, HostBuf[] w, int count, int n, HostBuf dx, boolean accumulateDx, HostBuf[] dw) {
        for (int j = 0; j < count; j++) {
            matmulBackward(dout[j], x, w[j], n, dx, accumulateDx || j > 0, dw[j]);
        }
    }

    void matmulBackward(HostBuf dout, HostBuf x, HostBuf w, int n, HostBuf dx, boolean accumulateDx, HostBuf dw) {
        a = dout;
        b = x;
        this.n = n;
        if (dx != null) {
            c = w;
            d = dx;
            flag = accumulateDx;
            run(MM_DX);
        }
        if (dw != null) {
            c = dw;
            run(MM_DW);
        }
    }

    /** dx[r] (=|+=) Σ_o dout[r][o]·w[o] for rows [lo, hi), o in order. */
    private void matmulDxRows(int lo, int hi) {
        for (int r = lo; r < hi; r++) {
            rowTimesMatrix(a.segment(), null, a.rowOffset(r), c, c.rows(), d.segment(), d.rowOffset(r), flag);
        }
    }

    private void matmulDwRows(int t, int o0, int o1) {
        dwRows(t, a, b, 0, n, null, o0, o1);
    }

    /**
     * dw[o] += Σ_r g[r][o]·x[r] for weight rows [o0, o1) and input rows [r0, r0 + rows): four
     * weight rows by one vector of columns per tile, rows in order. The gradient rows come from
     * {@code gb}, or from {@code gArr} (rows of dw.rows() floats) when it is not null.
     */
    private void dwRows(int t, HostBuf gb, HostBuf xb, int r0, int rows, float[] gArr, int o0, int o1) {
        HostBuf dwb = c;
        int k = dwb.cols();
        int no = dwb.rows();
        MemorySegment x = xb.segment(), dw = dwb.segment();
        MemorySegment g = gb == null ? null : gb.segment();
        // four weight rows per tile; the last tile repeats its last row and stores only the rows it has
        // (a loop of its own for the last rows was compiled with boxed vectors)
        for (int o = o0; o < o1; o += 4) {
            int q1 = Math.min(o + 1, o1 - 1), q2 = Math.min(o + 2, o1 - 1), q3 = Math.min(o + 3, o1 - 1);
            int col = 0;
            for (; col + L <= k; col += L) {
                FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
                for (int r = 0; r < rows; r++) {
                    FloatVector xv = FloatVector.fromMemorySegment(F, x, xb.rowOffset(r0 + r) + 4L * col, LE);
                    long go = (long) (gArr != null ? r : r0 + r) * no;
                    a0 = xv.fma(FloatVector.broadcast(F, gv(g, gArr, go + o)), a0);
                    a1 = xv.fma(FloatVector.broadcast(F, gv(g, gArr, go + q1)), a1);
                    a2 = xv.fma(FloatVector.broadcast(F, gv(g, gArr, go + q2)), a2);
                    a3 = xv.fma(FloatVector.broadcast(F, gv(g, gArr, go + q3)), a3);
                }
                storeAdd(dw, dwb.rowOffset(o) + 4L * col, a0);
                if (o + 1 < o1) {
                    storeAdd(dw, dwb.rowOffset(o + 1) + 4L * col, a1);
                }
                if (o + 2 < o1) {
                    storeAdd(dw, dwb.rowOffset(o + 2) + 4L * col, a2);
                }
                if (o + 3 < o1) {
                    storeAdd(dw, dwb.rowOffset(o + 3) + 4L * col, a3);
                }
            }
            for (int oo = o; oo < Math.min(o + 4, o1); oo++) {
                dwScalar(gb, xb, r0, rows, gArr, oo, col, k);
            }
        }
    }

    /** dw[o][c0 .. c1) += Σ_r g[r][o]·x[r][c], one value at a time (the columns after the last whole vector). */
    private void dwScalar(HostBuf gb, HostBuf xb, int r0, int rows, float[] gArr, int o, int c0, int c1) {
        HostBuf dwb = c;
        int no = dwb.rows();
        MemorySegment g = gb == null ? null : gb.segment();
        for (int col = c0; col < c1; col++) {
            float acc = 0;
            for (int r = 0; r < rows; r++) {
                long go = (long) (gArr != null ? r : r0 + r) * no + o;
                acc = Math.fma(gv(g, gArr, go), xb.get(r0 + r, col), acc);
            }
            dwb.set(o, col, dwb.get(o, col) + acc);
        }
    }

    private static float gv(MemorySegment g, float[] arr, long idx) {
        return arr != null ? arr[(int) idx] : g.getAtIndex(FL, idx);
    }

    private static void storeAdd(MemorySegment s, long off, FloatVector v) {
        v.add(FloatVector.fromMemorySegment(F, s, off, LE)).intoMemorySegment(s, off, LE);
    }

    // ---- rope --------------------------------------------------------------------------------

    void rope(HostBuf x, int heads, int headDim, int n, int len, Rope rope, boolean inverse) {
        angles(rope, len);
        setRope(x, heads, headDim, n, len, rope, inverse);
        run(ROPE);
    }

    /** rope's arguments, in the fields every path's tasks read. */
    final void setRope(HostBuf x, int heads, int headDim, int n, int len, Rope rope, boolean inverse) {
        a = x;
        this.heads = heads;
        this.headDim = headDim;
        this.n = n;
        this.len = len;
        this.cols = rope.dims();
        this.flag = rope.neox();
        p1 = inverse ? -1f : 1f;
    }

    /** cos and sin of every (position, pair) of a window, computed again only when the rope or the length changes. */
    final void angles(Rope rope, int len) {
        if (len == lastLen && sameRope(rope, lastRope)) {
            return;
        }
        double[] inv = rope.inverseFrequencies();
        int half = rope.dims() / 2;
        if (cosT.length < len * half) {
            cosT = new float[len * half];
            sinT = new float[len * half];
        }
        for (int p = 0; p < len; p++) {
            for (int j = 0; j < half; j++) {
                double th = p * inv[j];
                cosT[p * half + j] = (float) Math.cos(th);
                sinT[p * half + j] = (float) Math.sin(th);
            }
        }
        lastRope = rope;
        lastLen = len;
    }

    /** Field by field (the record's own equals goes through method handles, which allocated here). */
    private static boolean sameRope(Rope a, Rope b) {
        return a == b || b != null && a.dims() == b.dims() && a.base() == b.base() && a.freqScale() == b.freqScale()
                && a.neox() == b.neox() && java.util.Arrays.equals(a.factors(), b.factors());
    }

    final float[] cosTable() {
        return cosT;
    }

    final float[] sinTable() {
        return sinT;
    }

    private void ropeRows(int lo, int hi) {
        int half = cols / 2;
        MemorySegment x = a.segment();
        float sign = p1;
        for (int r = lo; r < hi; r++) {
            int pos = r % len;
            long row = a.rowOffset(r);
            for (int hd = 0; hd < heads; hd++) {
                long base = row + 4L * hd * headDim;
                for (int j = 0; j < half; j++) {
                    float cs = cosT[pos * half + j];
                    float sn = sign * sinT[pos * half + j];
                    long i0 = base + 4L * (flag ? j : 2 * j);
                    long i1 = base + 4L * (flag ? j + half : 2 * j + 1);
                    float x0 = x.get(FL, i0);
                    float x1 = x.get(FL, i1);
                    x.set(FL, i0, x0 * cs - x1 * sn);
                    x.set(FL, i1, x0 * sn + x1 * cs);
                }
            }
        }
    }

    // ---- element-wise ------------------------------------------------------------------------

    void swiglu(HostBuf gate, HostBuf up, int n, HostBuf out) {
        a = gate;
        b = up;
        c = out;
        this.n = n;
        cols = gate.cols();
        run(SWIGLU);
    }

    void add(HostBuf x, HostBuf y, int n) {
        a = x;
        b = y;
        this.n = n;
        cols = x.cols();
        run(ADD);
    }

    void dropout(HostBuf x, int n, float p, long seed) {
        a = x;
        this.n = n;
        cols = x.cols();
        p1 = p;
        this.seed = seed;
        run(DROPOUT);
    }

    void swigluBackward(HostBuf dout, HostBuf gate, HostBuf up, int n, HostBuf dgate, HostBuf dup) {
        a = gate;
        b = up;
        c = dout;
        d = dgate;
        e = dup;
        this.n = n;
        cols = gate.cols();
        run(SWIGLU_BWD);
    }

    // SwiGLU runs value by value: Math.exp gives the same bits compiled or not, the Vector API's EXP does not.

    private void swigluRange(int from, int to) {
        MemorySegment gs = a.segment(), us = b.segment(), os = c.segment();
        for (int k = from; k < to; k++) {
            float gv = gs.getAtIndex(FL, k);
            os.setAtIndex(FL, k, gv / (1f + (float) Math.exp(-gv)) * us.getAtIndex(FL, k));
        }
    }

    private void swigluBackwardRange(int from, int to) {
        MemorySegment gs = a.segment(), us = b.segment(), dout = c.segment(), dg = d.segment(), du = e.segment();
        for (int k = from; k < to; k++) {
            float gv = gs.getAtIndex(FL, k);
            float s = 1f / (1f + (float) Math.exp(-gv));
            float dov = dout.getAtIndex(FL, k);
            // silu'(g) = s·(1 + g·(1 - s))
            float dgv = dov * us.getAtIndex(FL, k) * (s * (1f + gv * (1f - s)));
            du.setAtIndex(FL, k, dov * gv * s);
            dg.setAtIndex(FL, k, dgv);
        }
    }

    private void addRange(int from, int to) {
        MemorySegment x = a.segment(), y = b.segment();
        int k = from;
        for (; k + L <= to; k += L) {
            FloatVector.fromMemorySegment(F, x, 4L * k, LE).add(FloatVector.fromMemorySegment(F, y, 4L * k, LE)).intoMemorySegment(x, 4L * k, LE);
        }
        for (; k < to; k++) {
            x.setAtIndex(FL, k, x.getAtIndex(FL, k) + y.getAtIndex(FL, k));
        }
    }

    private void dropoutRange(int from, int to) {
        MemorySegment x = a.segment();
        float scale = 1f / (1f - p1);
        for (int k = from; k < to; k++) {
            float v = x.getAtIndex(FL, k);
            x.setAtIndex(FL, k, TrainOps.keep(seed, k, p1) ? v * scale : 0f);
        }
    }

    // ---- attention ---------------------------------------------------------------------------

    void attention(HostBuf q, HostBuf k, HostBuf v, int seqs, int len, int heads, int kvHeads, int headDim, HostBuf out,
                   HostBuf lse, float dropP, long seed) {
        setAttention(q, k, v, seqs, len, heads, kvHeads, headDim, out, lse, dropP, seed);
        run(ATTENTION);
    }

    final void setAttention(HostBuf q, HostBuf k, HostBuf v, int seqs, int len, int heads, int kvHeads, int headDim, HostBuf out,
                            HostBuf lse, float dropP, long seed) {
        a = q;
        b = k;
        c = v;
        d = out;
        e = lse;
        this.seqs = seqs;
        this.len = len;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        p1 = dropP;
        this.seed = seed;
    }

    /** (window, head) items [lo, hi): every query row's softmax over the window's keys up to it. */
    private void attentionItems(int t, int lo, int hi) {
        JavaTrainAttention.forward(this, scratch(t, len + headDim), lo, hi);
    }

    void attentionBackward(HostBuf dout, HostBuf q, HostBuf k, HostBuf v, HostBuf out, HostBuf lse, int seqs, int len, int heads,
                           int kvHeads, int headDim, float dropP, long seed, HostBuf dq, HostBuf dk, HostBuf dv) {
        setAttention(q, k, v, seqs, len, heads, kvHeads, headDim, out, lse, dropP, seed);
        f = dout;
        g = dq;
        h = dk;
        i = dv;
        run(ATTENTION_BWD);
    }

    private void attentionBackwardItems(int t, int lo, int hi) {
        JavaTrainAttention.backward(this, scratch(t, len), scratch2(t, 2 * headDim), lo, hi);
    }

    // ---- cross-entropy -----------------------------------------------------------------------

    double crossEntropy(HostBuf x, HostBuf w, int[] targets, int n, float scale, HostBuf dx, HostBuf dw) {
        int vocab = w.rows();
        if (ceLogits.length < CE_BLOCK * vocab) {
            ceLogits = new float[CE_BLOCK * vocab];
            ceSeg = MemorySegment.ofArray(ceLogits);
        }
        if (rowLoss.length < n) {
            rowLoss = new double[n];
        }
        a = x;
        b = w;
        ints = targets;
        p1 = scale;
        c = dw;
        d = x;
        e = dx;
        for (int r0 = 0; r0 < n; r0 += CE_BLOCK) {
            block0 = r0;
            blockRows = Math.min(CE_BLOCK, n - r0);
            run(CE_ROWS);
            if (dx != null && dw != null) {
                run(CE_DW);
            }
        }
        double sum = 0;
        for (int r = 0; r < n; r++) {
            sum += rowLoss[r];
        }
        return sum;
    }

    /** Rows [lo, hi) of the current block: logits, loss, and (with dx) the logits' gradient in place and dx. */
    private void ceRows(int t, int lo, int hi) {
        int vocab = b.rows();
        int dim = a.cols();
        float[] lg = ceLogits;
        int base = block0;
        for (int r = lo; r < hi; r += 8) {
            int rows = Math.min(8, hi - r);
            matmulRowsInto(a, b, ceSeg, vocab, r, r + rows, r - base);
        }
        for (int r = lo; r < hi; r++) {
            int off = (r - base) * vocab;
            rowLoss[r] = softmaxRow(lg, off, vocab, ints[r], p1, e != null);
            if (e != null) {
                rowTimesMatrix(null, lg, off, b, vocab, e.segment(), e.rowOffset(r), false);
            }
        }
    }

    /**
     * The loss of one row of logits at lg[off .. off + vocab) (0 for a negative target) and, when
     * asked, its gradient {@code scale·(softmax - onehot)} written over the logits (zeros for a
     * skipped row).
     */
    static double softmaxRow(float[] lg, int off, int vocab, int target, float scale, boolean grad) {
        if (target < 0) {
            if (grad) {
                java.util.Arrays.fill(lg, off, off + vocab, 0f);
            }
            return 0;
        }
        float max = Float.NEGATIVE_INFINITY;
        for (int v = 0; v < vocab; v++) {
            max = Math.max(max, lg[off + v]);
        }
        double sum = 0;
        for (int v = 0; v < vocab; v++) {
            sum += Math.exp(lg[off + v] - max);
        }
        double lse = max + Math.log(sum);
        double loss = lse - lg[off + target];
        if (grad) {
            for (int v = 0; v < vocab; v++) {
                lg[off + v] = (float) (scale * Math.exp(lg[off + v] - lse));
            }
            lg[off + target] -= scale;
        }
        return loss;
    }

    // ---- optimizer ---------------------------------------------------------------------------

    double sumSquares(MemorySegment s, long values) {
        int blocks = (int) ((values + SQ_BLOCK - 1) / SQ_BLOCK);
        if (partial.length < blocks) {
            partial = new double[blocks];
        }
        sa = s;
        count = values;
        blockRows = blocks;
        runRows(tasks[SUMSQ], values);
        double sum = 0;
        for (int k = 0; k < blocks; k++) {
            sum += partial[k];
        }
        return sum;
    }

    private void sumSquaresBlocks(int lo, int hi) {
        for (int k = lo; k < hi; k++) {
            long from = (long) k * SQ_BLOCK;
            int m = (int) Math.min(SQ_BLOCK, count - from);
            partial[k] = sumSquaresOf(sa, 4 * from, m);
        }
    }

    void adamw(HostBuf p, HostBuf g, HostBuf m, HostBuf v, float gradScale, float lr, float beta1, float beta2, float eps,
               float weightDecay, int step) {
        a = p;
        b = g;
        c = m;
        d = v;
        p1 = gradScale;
        p2 = beta1;
        p3 = beta2;
        p4 = eps;
        p5 = 1f - lr * weightDecay;
        p6 = (float) (lr / (1 - Math.pow(beta1, step)));
        p7 = (float) Math.sqrt(1 - Math.pow(beta2, step));
        count = (long) p.rows() * p.cols();
        runRows(adamwTask(), count);
    }

    /** The task that runs {@link #adamw}'s elements once its arguments are set (the native path has its own). */
    WorkerPool.Task adamwTask() {
        return tasks[ADAMW];
    }

    private void adamwRange(int from, int to) {
        MemorySegment ps = a.segment(), gs = b.segment(), ms = c.segment(), vs = d.segment();
        float b1 = p2, b2 = p3, c1 = 1f - p2, c2 = 1f - p3;
        int k = from;
        for (; k + L <= to; k += L) {
            long off = 4L * k;
            FloatVector gv = FloatVector.fromMemorySegment(F, gs, off, LE).mul(p1);
            FloatVector m = FloatVector.fromMemorySegment(F, ms, off, LE).mul(b1).add(gv.mul(c1));
            FloatVector v = FloatVector.fromMemorySegment(F, vs, off, LE).mul(b2).add(gv.mul(gv).mul(c2));
            FloatVector denom = v.sqrt().div(p7).add(p4);
            FloatVector p = FloatVector.fromMemorySegment(F, ps, off, LE).mul(p5);
            p.sub(m.mul(p6).div(denom)).intoMemorySegment(ps, off, LE);
            m.intoMemorySegment(ms, off, LE);
            v.intoMemorySegment(vs, off, LE);
        }
        for (; k < to; k++) {
            float gv = gs.getAtIndex(FL, k) * p1;
            float m = ms.getAtIndex(FL, k) * b1 + gv * c1;
            float v = vs.getAtIndex(FL, k) * b2 + gv * gv * c2;
            float denom = (float) Math.sqrt(v) / p7 + p4;
            ps.setAtIndex(FL, k, ps.getAtIndex(FL, k) * p5 - m * p6 / denom);
            ms.setAtIndex(FL, k, m);
            vs.setAtIndex(FL, k, v);
        }
    }
}
