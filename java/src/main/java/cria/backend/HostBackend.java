// Shared memory handling of the backends that compute on the host (ref, cpu): off-heap buffers, mapped weights.
package cria.backend;

import cria.CriaException;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Base of host backends: buffers in one shared arena (freed on close), weights by reference. */
public abstract class HostBackend implements Backend {
    private final Arena arena = Arena.ofShared();

    @Override
    public Buf allocate(String name, int rows, int cols) {
        long bytes = (long) rows * cols * Float.BYTES;
        try {
            MemorySegment seg = arena.allocate(Math.max(bytes, 64), 64);
            return new HostBuf(name, rows, cols, seg);
        } catch (OutOfMemoryError e) {
            throw new CriaException("cannot allocate " + (bytes >> 20) + " MiB for activations (" + name + "): out of memory; lower the batch size or context");
        }
    }

    @Override
    public Weight weight(Tensor tensor) {
        return new HostWeight(tensor);
    }

    @Override
    public KvCache kvCache(KvCache.Config config) {
        return new HostKvCache(config);
    }

    @Override
    public void download(Buf src, int rows, float[] dst) {
        HostBuf b = (HostBuf) src;
        MemorySegment.copy(b.segment(), ValueLayout.JAVA_FLOAT, 0, dst, 0, rows * b.cols());
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
