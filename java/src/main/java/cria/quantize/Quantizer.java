// Converts whole tensors between types, rows in parallel on a pool of worker threads.
package cria.quantize;

import cria.CriaException;
import cria.gguf.GgmlType;
import cria.tensor.Codec;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.LongConsumer;

/**
 * Re-encodes tensors: each row is decoded to float (any type Cria reads) and encoded in the
 * target type. Rows are independent, so chunks of rows run on a fixed pool of threads; the
 * result does not depend on the thread count. Close it to stop the threads.
 */
public final class Quantizer implements AutoCloseable {
    /** About this many values per task: large enough to amortize scheduling, small enough to balance. */
    private static final int CHUNK_VALUES = 1 << 17;

    private final int threads;
    private final ExecutorService pool;

    /** A quantizer with {@code threads} workers (1 runs everything on the calling thread). */
    public Quantizer(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        this.threads = threads;
        this.pool = threads == 1 ? null : Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "cria-quantize");
            t.setDaemon(true);
            return t;
        });
    }

    /** The number of worker threads. */
    public int threads() {
        return threads;
    }

    /**
     * Writes {@code src} converted to {@code target} into {@code dst} (exactly the converted size;
     * a segment every worker thread may access). {@code progress} (may be null) is told the
     * number of values finished after each chunk, from any thread.
     *
     * @throws CriaException when the source cannot be read or the target cannot be written by Cria
     */
    public void convert(Tensor src, GgmlType target, MemorySegment dst, LongConsumer progress) {
        convert(src, target, null, dst, progress);
    }

    /**
     * As {@link #convert(Tensor, GgmlType, MemorySegment, LongConsumer)}, with importance
     * weights per column ({@code importance}, from an {@link ImportanceMatrix}; null for none):
     * the row length's worth for a matrix, or one such slice per matrix of a 3-D tensor, as
     * llama-quantize hands them to the quantizer. Types that do not use importance ignore it.
     *
     * @throws IllegalArgumentException when {@code importance} has the wrong length
     */
    public void convert(Tensor src, GgmlType target, float[] importance, MemorySegment dst, LongConsumer progress) {
        int n = src.rowLength();
        long rows = src.rows();
        long dstRowBytes = target.rowBytes(n);
        if (dst.byteSize() != dstRowBytes * rows) {
            throw new IllegalArgumentException(src.name() + ": destination holds " + dst.byteSize() + " bytes, " + target + " needs " + dstRowBytes * rows);
        }
        if (target == src.type()) {
            MemorySegment.copy(src.data(), 0, dst, 0, dst.byteSize());
            if (progress != null) {
                progress.accept(rows * n);
            }
            return;
        }
        Codec from = Codecs.of(src.type());
        Codec to = Codecs.of(target);
        if (!to.canQuantize()) {
            throw new CriaException("Cria cannot produce " + target + " tensors (needed for " + src.name() + "); choose another type");
        }
        long matrixRows = src.shape().length > 1 ? src.shape()[1] : 1;
        float[][] slices = importanceSlices(src, importance);
        long srcRowBytes = src.rowBytes();
        int chunkRows = (int) Math.max(1, Math.min(rows, CHUNK_VALUES / Math.max(1, n)));
        List<Runnable> tasks = new ArrayList<>();
        for (long r0 = 0; r0 < rows; r0 += chunkRows) {
            long first = r0;
            int count = (int) Math.min(chunkRows, rows - r0);
            tasks.add(() -> {
                float[] buf = new float[n];
                for (int i = 0; i < count; i++) {
                    long r = first + i;
                    from.dequantize(src.data(), r * srcRowBytes, buf, 0, n);
                    float[] w = slices == null ? null : slices[(int) (r / matrixRows)];
                    to.quantize(buf, 0, n, w, dst, r * dstRowBytes);
                }
                if (progress != null) {
                    progress.accept((long) count * n);
                }
            });
        }
        run(tasks);
    }

    /** The importance of each matrix of {@code src} (null for none), checked against its shape. */
    private static float[][] importanceSlices(Tensor src, float[] importance) {
        if (importance == null) {
            return null;
        }
        long[] shape = src.shape();
        long n = shape[0];
        long matrices = shape.length > 2 ? shape[2] : 1;
        for (int d = 3; d < shape.length; d++) {
            if (shape[d] != 1) {
                throw new IllegalArgumentException(src.name() + ": importance weights need a tensor of at most 3 dimensions");
            }
        }
        if (importance.length != n * matrices) {
            throw new IllegalArgumentException(src.name() + ": " + importance.length + " importance values for " + n * matrices + " columns");
        }
        float[][] slices = new float[(int) matrices][];
        for (int m = 0; m < matrices; m++) {
            slices[m] = java.util.Arrays.copyOfRange(importance, (int) (m * n), (int) ((m + 1) * n));
        }
        return slices;
    }

    private void run(List<Runnable> tasks) {
        if (pool == null) {
            tasks.forEach(Runnable::run);
            return;
        }
        List<Future<?>> futures = new ArrayList<>(tasks.size());
        for (Runnable t : tasks) {
            futures.add(pool.submit(t));
        }
        try {
            for (Future<?> f : futures) {
                f.get();
            }
        } catch (InterruptedException e) {
            futures.forEach(f -> f.cancel(true));
            Thread.currentThread().interrupt();
            throw new CriaException("quantization interrupted");
        } catch (ExecutionException e) {
            futures.forEach(f -> f.cancel(true));
            Throwable c = e.getCause();
            if (c instanceof RuntimeException re) {
                throw re;
            }
            if (c instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(c);
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
