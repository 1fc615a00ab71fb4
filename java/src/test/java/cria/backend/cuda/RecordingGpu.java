// A Gpu that runs nothing and records launches and allocations: launcher and backend logic without a device or emulator.
package cria.backend.cuda;

import cria.CriaException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/** Records what the backend asks of a device; memory is fake addresses with a configurable size. */
final class RecordingGpu implements Gpu {
    record Launch(String kernel, int gridX, int gridY, int gridZ, int block, int shared, String args) {}

    final List<Launch> launches = new ArrayList<>();
    final List<String> uploads = new ArrayList<>();
    long memory;
    long used;
    int sms;
    private long next = 1L << 32;
    private final Arena arena = Arena.ofAuto();

    RecordingGpu(long memory, int sms) {
        this.memory = memory;
        this.sms = sms;
    }

    @Override
    public String describe() {
        return "recording GPU (" + (memory >> 20) + " MiB)";
    }

    @Override
    public int multiprocessors() {
        return sms;
    }

    @Override
    public MemInfo memInfo() {
        return new MemInfo(memory - used, memory);
    }

    @Override
    public long malloc(long bytes, String what) {
        if (used + bytes > memory) {
            throw new CriaException("out of GPU memory: " + what);
        }
        used += bytes;
        long p = next;
        next += (bytes + 255) / 256 * 256 + 256;
        return p;
    }

    @Override
    public void free(long ptr) {}

    @Override
    public void memset32(long ptr, int value, long count) {}

    @Override
    public void upload(long dst, MemorySegment src, long bytes) {
        uploads.add(bytes + " bytes");
    }

    @Override
    public Staging staging(long bytes) {
        return EmuGpu.hostStaging(arena.allocate(bytes, 64));
    }

    @Override
    public void uploadAsync(long dst, Staging src, long srcOffset, long bytes) {}

    @Override
    public void download(long src, MemorySegment dst, long bytes) {}

    @Override
    public void copy(long dst, long src, long bytes) {}

    @Override
    public Object loadModule(String family) {
        return family;
    }

    @Override
    public Object function(Object module, String name) {
        return name;
    }

    @Override
    public void launch(Object function, KernelSpec spec, int gridX, int gridY, int gridZ, int block, int sharedBytes, Args args) {
        if (!spec.signature().equals(args.signature())) {
            throw new IllegalStateException("kernel " + spec.name() + " takes (" + spec.signature() + ") but was given ("
                    + args.signature() + ")");
        }
        Launch l = new Launch(spec.name(), gridX, gridY, gridZ, block, sharedBytes, args.toString());
        (capture != null ? capture : launches).add(l);
    }

    @Override
    public void synchronize() {}

    private List<Launch> capture;
    int graphLaunches;

    @Override
    public void beginCapture() {
        capture = new ArrayList<>();
    }

    @Override
    public Object endCapture() {
        List<Launch> g = capture;
        capture = null;
        return g;
    }

    @Override
    public void launchGraph(Object graph) {
        graphLaunches++;
    }

    @Override
    public void destroyGraph(Object graph) {}

    @Override
    public double time(Runnable queue) {
        queue.run();
        return 0;
    }

    @Override
    public void close() {}

    Launch last() {
        return launches.get(launches.size() - 1);
    }
}
