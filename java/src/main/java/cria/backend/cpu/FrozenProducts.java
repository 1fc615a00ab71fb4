// Training's products with a frozen weight of any type on the CPU: its rows dequantized a panel at a time, never the whole tensor.
package cria.backend.cpu;

import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;

/**
 * Fine-tuning's frozen base on the CPU (QLoRA's way: the base stays in its blocks). A product
 * {@code out = x · wᵀ} takes {@link #PANEL_FLOATS} worth of w's rows at a time, dequantizes them
 * into a float panel and runs the path's float kernel on it, each thread its own groups of
 * panels (no barrier between panels); the input gradient {@code dx = dout · w} does the same with
 * the matching columns of dout, the first group into dx, each other into its own partial sum: the
 * products of the dequantized weight in float32, exactly as a float weight would give, and
 * deterministic. The forward product of a quantized weight runs, by default, in the inference
 * ops' native kernels (8-bit activations, as inference and llama.cpp compute it: the fine-tuned
 * model's forward pass is the one it will be run with). Memory: one panel and one column block of the rows, kept between calls.
 */
final class FrozenProducts {
    /** Values of w per panel (1 MiB of floats): large enough for the kernels, small enough for the cache. */
    static final long PANEL_FLOATS = 1L << 18;
    /** Values of logits per cross-entropy chunk (64 MiB of floats). */
    static final long LOGIT_FLOATS = 1L << 24;

    /** A frozen tensor as a training buffer: {@code rows × rowLength}, the tensor's own bytes. */
    static final class Weight extends Buf {
        final Tensor tensor;
        final cria.backend.Weight[] asInference; // the same tensor as the inference ops' weight (one element)
        final Buf[] out = new Buf[1];

        Weight(Tensor t) {
            super(t.name(), Math.toIntExact(t.rows()), t.rowLength());
            this.tensor = t;
            this.asInference = new cria.backend.Weight[] {new cria.backend.HostWeight(t)};
        }
    }

    private final Arena arena = Arena.ofShared();
    private final WorkerPool pool;
    private final JavaTrainPath path;
    private final CpuOps inference;
    private final long panelFloats;
    private boolean int8Forward = true;
    private final Map<Long, HostBuf> views = new HashMap<>();
    /** Panel groups per product: the most threads a product uses, and the partial sums dx keeps. */
    static final int GROUPS = 4;
    private final MemorySegment[] groupPanels = {MemorySegment.NULL, MemorySegment.NULL, MemorySegment.NULL, MemorySegment.NULL};
    private MemorySegment partials = MemorySegment.NULL;
    private MemorySegment logits = MemorySegment.NULL;
    private float[][] rowScratch = new float[0][];

    /**
     * @param inference the inference ops of the same pool, or null: with them, the forward product of
     *                  a quantized weight runs as inference runs it (the native 8-bit kernels: activations
     *                  quantized to 8 bits, several times faster than dequantized float panels)
     */
    FrozenProducts(WorkerPool pool, JavaTrainPath path, CpuOps inference) {
        this(pool, path, inference, PANEL_FLOATS);
    }

    /** With panels of {@code panelFloats} values (tests use small ones, so that many panels and groups take part). */
    FrozenProducts(WorkerPool pool, JavaTrainPath path, CpuOps inference, long panelFloats) {
        this.panelFloats = panelFloats;
        this.pool = pool;
        this.path = path;
        this.inference = inference;
    }

    /** Whether forward products of quantized weights use the inference kernels (true) or exact float panels (false). */
    void int8Forward(boolean on) {
        this.int8Forward = on;
    }

    private boolean viaInference(Weight w) {
        GgmlType t = w.tensor.type();
        return int8Forward && inference != null && t != GgmlType.F16 && t != GgmlType.BF16 && t != GgmlType.F32
                && inference.runsNatively(t, w.cols());
    }

    /** Rows of w per panel. */
    private int panelRows(Weight w) {
        return (int) Math.max(1, Math.min(w.rows(), panelFloats / w.cols()));
    }

    private static MemorySegment grow(Arena arena, MemorySegment s, long floats) {
        return s.byteSize() >= floats * 4 ? s : arena.allocate(floats * 4, 64);
    }

    /** A buffer of {@code rows × cols} floats over {@code seg} at byte {@code offset} (views cached by shape and place). */
    private HostBuf view(MemorySegment seg, long offset, int rows, int cols) {
        long key = ((long) rows << 32) ^ ((long) cols << 12) ^ offset ^ System.identityHashCode(seg);
        HostBuf h = views.get(key);
        if (h == null || h.segment().address() != seg.address() + offset || h.rows() != rows || h.cols() != cols) {
            h = new HostBuf("view", rows, cols, seg.asSlice(offset, (long) rows * cols * 4));
            views.put(key, h);
        }
        return h;
    }

    /**
     * The panels of w (rows [p·P, (p+1)·P)) fall into {@link #GROUPS} (or fewer) groups of
     * consecutive panels; each group is one thread's work, without a barrier between its panels.
     * Returns the panel count; sizes the groups' panel buffers and every thread's scratch.
     */
    private int prepare(Weight w, int step, int groups) {
        int cols = w.cols();
        for (int g = 0; g < groups; g++) {
            groupPanels[g] = grow(arena, groupPanels[g], (long) step * cols);
        }
        int threads = pool.threads();
        if (rowScratch.length < threads || rowScratch[0].length < cols) {
            rowScratch = new float[threads][cols];
        }
        path.preparePanels(cols, step);
        return (w.rows() + step - 1) / step;
    }

    /** Rows [r0, r1) of w dequantized into a group's panel buffer, on the calling thread t. */
    private HostBuf dequantize(Weight w, int r0, int r1, int group, int t) {
        int cols = w.cols();
        MemorySegment p = groupPanels[group];
        float[] row = rowScratch[t];
        for (int r = r0; r < r1; r++) {
            w.tensor.dequantizeRow(r, row, 0);
            MemorySegment.copy(row, 0, p, ValueLayout.JAVA_FLOAT, (long) (r - r0) * cols * 4, cols);
        }
        return new HostBuf("panel", r1 - r0, cols, p.asSlice(0, (long) (r1 - r0) * cols * 4));
    }

    /** {@code out = x · wᵀ} (x [n, in], out [n, rows]). */
    void matmul(HostBuf x, Weight w, int n, HostBuf out) {
        if (viaInference(w)) {
            w.out[0] = out;
            inference.matmul(x, n, w.asInference, w.out);
            return;
        }
        int step = panelRows(w);
        int groups = Math.min(GROUPS, (w.rows() + step - 1) / step);
        int panels = prepare(w, step, groups);
        pool.run((t, nt) -> {
            for (int g = t; g < groups; g += nt) {
                for (int p = panels * g / groups; p < panels * (g + 1) / groups; p++) {
                    int r0 = p * step;
                    int r1 = Math.min(w.rows(), r0 + step);
                    path.matmulPanel(t, x, n, dequantize(w, r0, r1, g, t), r1 - r0, out, r0);
                }
            }
        });
    }

    /**
     * {@code dx = dout · w} (or {@code +=} when accumulating): dout [n, rows], dx [n, in]. The
     * first group of panels sums into dx, each other group into its own partial, and the partials
     * are added in group order: the result does not depend on the thread count.
     */
    void matmulDx(HostBuf dout, HostBuf x, Weight w, int n, HostBuf dx, boolean accumulate) {
        int step = panelRows(w);
        int groups = Math.min(GROUPS, (w.rows() + step - 1) / step);
        int panels = prepare(w, step, groups);
        int k = w.cols();
        long part = (long) n * k;
        partials = grow(arena, partials, part * Math.max(1, groups - 1));
        MemorySegment ps = partials;
        pool.run((t, nt) -> {
            for (int g = t; g < groups; g += nt) {
                // group 0 sums into dx itself, each later group into its own partial
                HostBuf into = g == 0 ? dx : new HostBuf("partial", n, k, ps.asSlice(4 * part * (g - 1), 4 * part));
                int first = panels * g / groups;
                for (int p = first; p < panels * (g + 1) / groups; p++) {
                    int r0 = p * step;
                    int r1 = Math.min(w.rows(), r0 + step);
                    path.dxPanel(t, dout, r0, n, dequantize(w, r0, r1, g, t), r1 - r0, into, p > first || (g == 0 && accumulate));
                }
            }
        });
        if (groups > 1) {
            pool.run((t, nt) -> {
                int lo = (int) ((long) n * t / nt);
                int hi = (int) ((long) n * (t + 1) / nt);
                for (int i = lo; i < hi; i++) {
                    MemorySegment row = dx.segment().asSlice(dx.rowOffset(i), 4L * k);
                    for (int g = 1; g < groups; g++) {
                        add(row, ps.asSlice(4 * (part * (g - 1) + (long) i * k), 4L * k), k);
                    }
                }
            });
        }
    }

    /** {@code a += b} over k floats. */
    private static void add(MemorySegment a, MemorySegment b, int k) {
        int c = 0;
        for (int upper = Simd.F.loopBound(k); c < upper; c += Simd.F.length()) {
            long off = 4L * c;
            jdk.incubator.vector.FloatVector.fromMemorySegment(Simd.F, a, off, java.nio.ByteOrder.nativeOrder())
                    .add(jdk.incubator.vector.FloatVector.fromMemorySegment(Simd.F, b, off, java.nio.ByteOrder.nativeOrder()))
                    .intoMemorySegment(a, off, java.nio.ByteOrder.nativeOrder());
        }
        for (; c < k; c++) {
            a.setAtIndex(ValueLayout.JAVA_FLOAT, c, a.getAtIndex(ValueLayout.JAVA_FLOAT, c) + b.getAtIndex(ValueLayout.JAVA_FLOAT, c));
        }
    }

    /** {@code x[i] = w[tokens[i]]} dequantized. */
    void embed(Weight w, int[] tokens, int n, HostBuf x) {
        float[] row = rowScratch.length > 0 && rowScratch[0].length >= w.cols() ? rowScratch[0] : new float[w.cols()];
        for (int i = 0; i < n; i++) {
            w.tensor.dequantizeRow(tokens[i], row, 0);
            MemorySegment.copy(row, 0, x.segment(), ValueLayout.JAVA_FLOAT, x.rowOffset(i), w.cols());
        }
    }

    /**
     * Cross-entropy with a frozen output weight (no weight gradient), a chunk of rows at a time:
     * the chunk's logits by {@link #matmul}, the loss and {@code scale · (softmax - onehot)} over
     * them, and the chunk's dx by {@link #matmulDx}. Rows with a negative target are skipped.
     */
    double crossEntropy(HostBuf x, Weight w, int[] targets, int n, float scale, HostBuf dx) {
        int vocab = w.rows();
        int chunk = (int) Math.max(1, Math.min(n, LOGIT_FLOATS / vocab));
        logits = grow(arena, logits, (long) chunk * vocab);
        double sum = 0;
        for (int i0 = 0; i0 < n; i0 += chunk) {
            int m = Math.min(chunk, n - i0);
            boolean any = false;
            for (int i = i0; i < i0 + m; i++) {
                any |= targets[i] >= 0;
            }
            if (!any) {
                if (dx != null) {
                    path.zero(dx.segment().asSlice(dx.rowOffset(i0), (long) m * dx.cols() * 4), (long) m * dx.cols());
                }
                continue;
            }
            HostBuf xs = view(x.segment(), x.rowOffset(i0), m, x.cols());
            HostBuf lg = view(logits, 0, m, vocab);
            matmul(xs, w, m, lg);
            sum += softmaxXent(lg, targets, i0, m, scale, dx != null);
            if (dx != null) {
                matmulDx(lg, xs, w, m, view(dx.segment(), dx.rowOffset(i0), m, dx.cols()), false);
            }
        }
        return sum;
    }

    /** Loss of each row (summed, in double) and, with grad, the gradient written over the logits. */
    private double softmaxXent(HostBuf lg, int[] targets, int i0, int m, float scale, boolean grad) {
        int vocab = lg.cols();
        double[] loss = new double[m];
        MemorySegment s = lg.segment();
        pool.run((t, nt) -> {
            int lo = (int) ((long) m * t / nt);
            int hi = (int) ((long) m * (t + 1) / nt);
            for (int r = lo; r < hi; r++) {
                long base = (long) r * vocab;
                int target = targets[i0 + r];
                if (target < 0) {
                    if (grad) {
                        for (int c = 0; c < vocab; c++) {
                            s.setAtIndex(ValueLayout.JAVA_FLOAT, base + c, 0f);
                        }
                    }
                    continue;
                }
                float max = Float.NEGATIVE_INFINITY;
                for (int c = 0; c < vocab; c++) {
                    max = Math.max(max, s.getAtIndex(ValueLayout.JAVA_FLOAT, base + c));
                }
                double z = 0;
                for (int c = 0; c < vocab; c++) {
                    z += Math.exp(s.getAtIndex(ValueLayout.JAVA_FLOAT, base + c) - max);
                }
                double lse = max + Math.log(z);
                loss[r] = lse - s.getAtIndex(ValueLayout.JAVA_FLOAT, base + target);
                if (grad) {
                    for (int c = 0; c < vocab; c++) {
                        double p = Math.exp(s.getAtIndex(ValueLayout.JAVA_FLOAT, base + c) - lse);
                        s.setAtIndex(ValueLayout.JAVA_FLOAT, base + c, (float) (scale * (p - (c == target ? 1 : 0))));
                    }
                }
            }
        });
        double sum = 0;
        for (double l : loss) {
            sum += l;
        }
        return sum;
    }

    void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
