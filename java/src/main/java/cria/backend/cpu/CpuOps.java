// The CPU backend's ops, what both paths share: worker pool, size checks, per-thread scratch, embed and gather.
package cria.backend.cpu;

import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.HostBuf;
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
 * tensor codecs). No op tests which path it is on; this base holds what both share.
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
    private final class Embed implements WorkerPool.Task {
        Tensor table;
        Batch batch;
        HostBuf out;
        int n;

        @Override
        public void run(int th, int nt) {
            float[] r = row(th, table.rowLength());
            for (int i = WorkerPool.split(n, th, nt); i < WorkerPool.split(n, th + 1, nt); i++) {
                table.dequantizeRow(batch.token(i), r, 0);
                MemorySegment.copy(r, 0, out.segment(), FLOAT, out.rowOffset(i), out.cols());
            }
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
