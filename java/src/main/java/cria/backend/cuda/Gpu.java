// The few CUDA driver operations the backend needs, behind one interface: JCuda on a device, an emulator in tests.
package cria.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * One device and one stream. Device memory is named by its 64-bit address (what kernels receive),
 * so launchers can pass plain {@code long}s. Everything queued runs in order on the stream;
 * {@link #download} waits for it. Implementations: {@link JCudaGpu} (the driver API through JCuda)
 * and, in the tests, an emulator that runs the same kernel sources on the CPU.
 */
public interface Gpu extends AutoCloseable {

    /** Free and total device memory in bytes. */
    record MemInfo(long free, long total) {}

    /** A one-line description: name, memory, compute capability, multiprocessors. */
    String describe();

    /** Streaming multiprocessors (launchers size grids by it). */
    int multiprocessors();

    MemInfo memInfo();

    /**
     * Allocates device memory (256-byte aligned, content undefined).
     *
     * @throws cria.CriaException when the device is out of memory, with the sizes
     */
    long malloc(long bytes, String what);

    void free(long ptr);

    /** Queues: sets {@code count} 32-bit words at {@code ptr} to {@code value}. */
    void memset32(long ptr, int value, long count);

    /** Copies host bytes to the device and returns when they are there (weights, tables). */
    void upload(long dst, MemorySegment src, long bytes);

    /** Pinned host memory for {@link #uploadAsync}. */
    Staging staging(long bytes);

    /**
     * Queues a copy from pinned host memory. Before writing into {@code src} again call
     * {@link Staging#awaitIdle()}: the copy may not have happened yet.
     */
    void uploadAsync(long dst, Staging src, long srcOffset, long bytes);

    /** Waits for queued work, then copies device bytes into {@code dst} (a heap or native segment). */
    void download(long src, MemorySegment dst, long bytes);

    /** Queues a device-to-device copy. */
    void copy(long dst, long src, long bytes);

    /**
     * Loads the kernels of kernels/{@code family}.cu (on a device: the fatbin the build put in
     * the jar); returns an opaque handle.
     *
     * @throws cria.CriaException when this build has no kernels or they do not load on this device
     */
    Object loadModule(String family);

    /** The entry point {@code name} of a module; returns an opaque handle. */
    Object function(Object module, String name);

    /** Queues a kernel launch; {@code args} match {@code spec}'s signature. */
    void launch(Object function, KernelSpec spec, int gridX, int gridY, int gridZ, int block, int sharedBytes, Args args);

    /** Waits for everything queued. */
    void synchronize();

    /**
     * Starts capturing: launches queued from now on are recorded into a graph instead of run, until
     * {@link #endCapture}. Nothing but launches may be queued while capturing.
     */
    void beginCapture();

    /** Ends the capture and returns the graph, ready to launch (an opaque handle). */
    Object endCapture();

    /** Queues a captured graph: its launches run again, with the arguments they were captured with. */
    void launchGraph(Object graph);

    /** Releases a captured graph. */
    void destroyGraph(Object graph);

    /**
     * Milliseconds the device spends on the work {@code queue} queues (device events around it on
     * a device; the host's clock in an emulator). Waits for the work.
     */
    double time(Runnable queue);

    @Override
    void close();

    /** Pinned (page-locked) host memory used as the source of asynchronous uploads. */
    interface Staging {
        MemorySegment segment();

        /** Waits until no queued copy reads this memory any more. */
        void awaitIdle();
    }
}
