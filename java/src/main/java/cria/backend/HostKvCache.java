// The KV cache in off-heap host memory: one segment for keys, one for values.
package cria.backend;

import cria.CriaException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** K and V storage as two off-heap segments laid out as {@link KvCache} describes. */
public final class HostKvCache extends KvCache {
    private final Arena arena;
    private final MemorySegment keys;
    private final MemorySegment values;

    public HostKvCache(Config config) {
        super(config);
        this.arena = Arena.ofShared();
        long half = config.bytes() / 2;
        try {
            this.keys = arena.allocate(half, 64);
            this.values = arena.allocate(half, 64);
        } catch (OutOfMemoryError e) {
            arena.close();
            throw new CriaException("cannot allocate the KV cache (" + (config.bytes() >> 20) + " MiB): out of memory; lower --ctx");
        }
    }

    public MemorySegment keys() {
        return keys;
    }

    public MemorySegment values() {
        return values;
    }

    @Override
    protected void copyKeysAndValues(long src, long dst, long bytes) {
        MemorySegment.copy(keys, src, keys, dst, bytes);
        MemorySegment.copy(values, src, values, dst, bytes);
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
