// One opened conformance target: the backend under test and the few things the suite cannot do through Backend alone.
package cria.backend.conformance;

import cria.backend.Backend;
import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.HostKvCache;
import cria.backend.KvCache;
import cria.backend.cuda.CudaBackend;
import cria.backend.cuda.Devices;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * {@link Backend} has allocate, weight, kvCache and download; a test also has to write inputs,
 * poison outputs (NaN, so an element an op never writes shows) and read a cache's bytes. Host
 * backends do that through their segments, CUDA through its device memory. A CUDA target may also
 * run attention under several tunings (forced split counts), each checked against ref.
 */
interface Device extends AutoCloseable {
    Backend backend();

    /** Writes {@code values} (whole rows) into the first rows of {@code buf}. */
    void put(Buf buf, float[] values);

    /** Fills {@code buf} with NaN. */
    void poison(Buf buf);

    /** The cache's K storage and V storage, byte for byte as the backend laid them out. */
    byte[][] cacheBytes(KvCache cache);

    /** The attention tunings to check, by name; the first is the backend's own choice. */
    default List<String> attentionTunings() {
        return List.of("default");
    }

    /** Applies one of {@link #attentionTunings()}. */
    default void attentionTuning(String name) {}

    /** Fewer shapes per case (the emulator's slow random schedule). */
    default boolean quick() {
        return false;
    }

    @Override
    void close();

    /** A host backend (ref, cpu): buffers and caches are off-heap segments. */
    static Device host(Backend b) {
        return new Device() {
            @Override
            public Backend backend() {
                return b;
            }

            @Override
            public void put(Buf buf, float[] values) {
                MemorySegment.copy(values, 0, ((HostBuf) buf).segment(), ValueLayout.JAVA_FLOAT, 0, values.length);
            }

            @Override
            public void poison(Buf buf) {
                ((HostBuf) buf).segment().asSlice(0, 4L * buf.rows() * buf.cols()).elements(ValueLayout.JAVA_FLOAT)
                        .forEach(s -> s.set(ValueLayout.JAVA_FLOAT, 0, Float.NaN));
            }

            @Override
            public byte[][] cacheBytes(KvCache cache) {
                HostKvCache h = (HostKvCache) cache;
                return new byte[][] {h.keys().toArray(ValueLayout.JAVA_BYTE), h.values().toArray(ValueLayout.JAVA_BYTE)};
            }

            @Override
            public void close() {
                b.close();
            }
        };
    }

    /**
     * A CUDA backend (emulator or GPU, opened by {@link Devices#open}, which skips with the reason
     * when the device is missing); {@code schedule} orders the emulator's threads (null: forward),
     * and {@code quick} checks one attention geometry of three, two tunings of four.
     */
    static Device cuda(String device, String schedule, long seed, boolean quick) {
        CudaBackend c = Devices.open(device);
        if (schedule != null) {
            Devices.schedule(schedule, seed);
        }
        return new Device() {
            @Override
            public Backend backend() {
                return c;
            }

            @Override
            public void put(Buf buf, float[] values) {
                Devices.put(c, buf, values);
            }

            @Override
            public void poison(Buf buf) {
                Devices.poison(c, buf);
            }

            @Override
            public byte[][] cacheBytes(KvCache cache) {
                return Devices.cacheBytes(c, cache);
            }

            @Override
            public boolean quick() {
                return quick;
            }

            @Override
            public List<String> attentionTunings() {
                return quick ? List.of("splits auto", "splits 3") : List.of("splits auto", "splits 1", "splits 3", "splits 7");
            }

            @Override
            public void attentionTuning(String name) {
                String n = name.substring("splits ".length());
                Devices.forceSplits(c, n.equals("auto") ? 0 : Integer.parseInt(n));
            }

            @Override
            public void close() {
                if (schedule != null) {
                    Devices.schedule("FORWARD", 0);
                }
                c.close();
            }
        };
    }
}
