// A Gpu in front of the device that can record a step's launches instead of queuing them (for CUDA graphs).
package cria.backend.cuda;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Everything the backend queues goes through this. Normally it passes calls on. Between
 * {@link #startRecording()} and {@link #stopRecording()} launches are kept (with a copy of their
 * arguments) rather than queued; the first call that is not a launch (a copy, a download, a
 * free, a synchronization) first queues what was kept, in order, and ends the recording, so work
 * always runs in the order it was asked for. {@link #stopRecording()} then returns null: that step
 * is not a pure sequence of launches and is not captured.
 */
public final class LaunchRecorder implements Gpu {
    /** One kept launch; equal when the same function runs with the same grid and arguments. */
    static final class Launch {
        final Object function;
        final KernelSpec spec;
        final int gridX;
        final int gridY;
        final int gridZ;
        final int block;
        final int shared;
        final Args args;

        Launch(Object function, KernelSpec spec, int gridX, int gridY, int gridZ, int block, int shared, Args args) {
            this.function = function;
            this.spec = spec;
            this.gridX = gridX;
            this.gridY = gridY;
            this.gridZ = gridZ;
            this.block = block;
            this.shared = shared;
            this.args = args;
        }

        void queue(Gpu gpu) {
            gpu.launch(function, spec, gridX, gridY, gridZ, block, shared, args);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Launch l && l.function == function && l.gridX == gridX && l.gridY == gridY && l.gridZ == gridZ
                    && l.block == block && l.shared == shared && l.args.sameAs(args);
        }

        @Override
        public int hashCode() {
            return ((System.identityHashCode(function) * 31 + gridX) * 31 + gridY * 7 + gridZ) * 31 + args.hash();
        }

        @Override
        public String toString() {
            return spec.name() + " grid " + gridX + "x" + gridY + "x" + gridZ + " " + args;
        }
    }

    private final Gpu gpu;
    private List<Launch> recording;

    LaunchRecorder(Gpu gpu) {
        this.gpu = gpu;
    }

    /** The device behind this. */
    public Gpu device() {
        return gpu;
    }

    /** Keeps launches from now on (see the class comment). */
    void startRecording() {
        recording = new ArrayList<>();
    }

    boolean isRecording() {
        return recording != null;
    }

    /** The launches kept since {@link #startRecording()}, or null when something else had to be queued meanwhile. */
    List<Launch> stopRecording() {
        List<Launch> r = recording;
        recording = null;
        return r;
    }

    /** Queues the kept launches and stops recording (before anything else is queued). */
    private void release() {
        if (recording != null) {
            List<Launch> r = recording;
            recording = null;
            for (Launch l : r) {
                l.queue(gpu);
            }
        }
    }

    @Override
    public void launch(Object function, KernelSpec spec, int gridX, int gridY, int gridZ, int block, int sharedBytes, Args args) {
        if (recording != null) {
            recording.add(new Launch(function, spec, gridX, gridY, gridZ, block, sharedBytes, args.copy()));
        } else {
            gpu.launch(function, spec, gridX, gridY, gridZ, block, sharedBytes, args);
        }
    }

    @Override
    public String describe() {
        return gpu.describe();
    }

    @Override
    public int multiprocessors() {
        return gpu.multiprocessors();
    }

    @Override
    public MemInfo memInfo() {
        return gpu.memInfo();
    }

    @Override
    public long malloc(long bytes, String what) {
        return gpu.malloc(bytes, what);
    }

    @Override
    public void free(long ptr) {
        release();  // a kept launch may use it
        gpu.free(ptr);
    }

    @Override
    public void memset32(long ptr, int value, long count) {
        release();
        gpu.memset32(ptr, value, count);
    }

    @Override
    public void upload(long dst, MemorySegment src, long bytes) {
        release();
        gpu.upload(dst, src, bytes);
    }

    @Override
    public Staging staging(long bytes) {
        return gpu.staging(bytes);
    }

    @Override
    public void uploadAsync(long dst, Staging src, long srcOffset, long bytes) {
        release();
        gpu.uploadAsync(dst, src, srcOffset, bytes);
    }

    @Override
    public void download(long src, MemorySegment dst, long bytes) {
        release();
        gpu.download(src, dst, bytes);
    }

    @Override
    public void copy(long dst, long src, long bytes) {
        release();
        gpu.copy(dst, src, bytes);
    }

    @Override
    public Object loadModule(String family) {
        return gpu.loadModule(family);
    }

    @Override
    public Object function(Object module, String name) {
        return gpu.function(module, name);
    }

    @Override
    public void synchronize() {
        release();
        gpu.synchronize();
    }

    @Override
    public void beginCapture() {
        release();
        gpu.beginCapture();
    }

    @Override
    public Object endCapture() {
        return gpu.endCapture();
    }

    @Override
    public void launchGraph(Object graph) {
        release();
        gpu.launchGraph(graph);
    }

    @Override
    public void destroyGraph(Object graph) {
        gpu.destroyGraph(graph);
    }

    @Override
    public double time(Runnable queue) {
        release();
        return gpu.time(queue);
    }

    @Override
    public void close() {
        recording = null;
        gpu.close();
    }
}
