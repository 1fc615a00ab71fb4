// The paged KV cache in device memory (F16 or F32 keys and values), with its page table mirrored on the device.
package cria.backend.cuda;

import cria.backend.KvCache;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * K and V as two device allocations laid out as {@link KvCache} documents. The page table lives
 * in Java (the base class); {@link #syncTable()} copies it to the device whenever its
 * {@link #version()} changed since the last copy, through pinned memory, queued on the stream so
 * that kernels already queued still see the table they were launched with.
 */
public final class CudaKvCache extends KvCache {
    private final Gpu gpu;
    private final long keys;
    private final long values;
    private final long table;
    private final int tableInts;
    private final Gpu.Staging staging;
    private long uploaded = -1;
    private boolean closed;

    CudaKvCache(Gpu gpu, Config config) {
        super(config);
        this.gpu = gpu;
        long half = (config.bytes() / 2 + 255) / 256 * 256;  // whole words for the memset
        this.tableInts = config.maxSequences() * config.maxPagesPerSequence();
        long k = 0;
        long v = 0;
        long t = 0;
        try {
            k = gpu.malloc(half, "the KV cache keys");
            v = gpu.malloc(half, "the KV cache values");
            t = gpu.malloc(4L * tableInts, "the KV cache page table");
        } catch (RuntimeException e) {
            for (long p : new long[] {k, v, t}) {
                if (p != 0) {
                    gpu.free(p);
                }
            }
            throw e;
        }
        this.keys = k;
        this.values = v;
        this.table = t;
        // zeros, so that a bug reading an unwritten slot gives 0, not stale data of another sequence
        gpu.memset32(keys, 0, half / 4);
        gpu.memset32(values, 0, half / 4);
        this.staging = gpu.staging(4L * tableInts);
    }

    public long keys() {
        return keys;
    }

    public long values() {
        return values;
    }

    /** The device copy of the page table; call {@link #syncTable()} first. */
    public long table() {
        return table;
    }

    boolean isF16() {
        return config.type() == Type.F16;
    }

    /** Queues an upload of the page table if it changed since the last one. */
    void syncTable() {
        if (uploaded == version()) {
            return;
        }
        staging.awaitIdle();
        MemorySegment.copy(pageTable(), 0, staging.segment(), ValueLayout.JAVA_INT, 0, tableInts);
        gpu.uploadAsync(table, staging, 0, 4L * tableInts);
        uploaded = version();
    }

    /** Queued on the stream, so it happens after the steps already queued and before later ones. */
    @Override
    protected void copyKeysAndValues(long src, long dst, long bytes) {
        gpu.copy(keys + dst, keys + src, bytes);
        gpu.copy(values + dst, values + src, bytes);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            gpu.synchronize();  // queued kernels may still read or write the cache
            gpu.free(keys);
            gpu.free(values);
            gpu.free(table);
        }
    }
}
