// A Gpu that runs the real kernel sources on the CPU (test-only): each GPU thread is a fiber of the emulator library.
package cria.backend.cuda;

import cria.CriaException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Emulated device memory is host memory with guard zones (0xFF bytes, so reads past an end give
 * NaN and writes past it fail the launch); copies are immediate. A memory limit makes the
 * out-of-memory paths testable. Launch failures (misaligned 16-byte loads, barrier deadlocks,
 * shuffles after lanes exited, writes outside an allocation) throw with the emulator's message.
 */
final class EmuGpu implements Gpu {
    private static final Linker LINKER = Linker.nativeLinker();
    private static SymbolLookup lib;
    private static MethodHandle malloc;
    private static MethodHandle free;
    private static MethodHandle launch;
    private static MethodHandle lastError;
    private static MethodHandle setSchedule;

    private final long limit;
    private final int sms;
    private final Map<Long, Long> sizes = new HashMap<>();
    private final Arena arena = Arena.ofShared();
    private final MemorySegment argBuf = arena.allocate(8 * 64, 8);
    private long used;
    private boolean closed;
    private java.util.List<Runnable> capture;  // launches of the graph being captured

    private static synchronized void bind(Path path) {
        if (lib != null) {
            return;
        }
        lib = SymbolLookup.libraryLookup(path, Arena.global());
        malloc = LINKER.downcallHandle(lib.find("emu_malloc").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        free = LINKER.downcallHandle(lib.find("emu_free").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        launch = LINKER.downcallHandle(lib.find("emu_launch").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        lastError = LINKER.downcallHandle(lib.find("emu_last_error").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS));
        setSchedule = LINKER.downcallHandle(lib.find("emu_set_schedule").orElseThrow(),
                FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
    }

    /** An emulated device with {@code memoryBytes} of memory and {@code sms} multiprocessors. */
    EmuGpu(long memoryBytes, int sms) {
        Path p = EmuBuild.library();
        if (p == null) {
            throw new IllegalStateException(EmuBuild.whyUnavailable());
        }
        bind(p);
        this.limit = memoryBytes;
        this.sms = sms;
    }

    EmuGpu() {
        this(1L << 30, 4);
    }

    /** How the emulator orders a block's threads. */
    enum Schedule { FORWARD, REVERSE, RANDOM }

    /** Sets the thread schedule of every later launch (RANDOM is seeded: a failure can be replayed). */
    static void schedule(Schedule s, long seed) {
        if (setSchedule == null) {
            return;  // the library was never loaded: nothing runs on it
        }
        try {
            setSchedule.invokeExact(s.ordinal(), seed);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static String error() {
        try {
            MemorySegment s = (MemorySegment) lastError.invokeExact();
            return s.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static MemorySegment seg(long address, long bytes) {
        return MemorySegment.ofAddress(address).reinterpret(bytes);
    }

    @Override
    public String describe() {
        return "CUDA emulator on the CPU (" + (limit >> 20) + " MiB, " + sms + " SMs)";
    }

    @Override
    public int multiprocessors() {
        return sms;
    }

    @Override
    public MemInfo memInfo() {
        return new MemInfo(limit - used, limit);
    }

    @Override
    public long malloc(long bytes, String what) {
        if (used + bytes > limit) {
            throw new CriaException("out of GPU memory: " + what + " needs " + JCudaGpu.mib(bytes) + " MiB but "
                    + JCudaGpu.mib(limit - used) + " MiB of " + JCudaGpu.mib(limit) + " are free (emulated)");
        }
        try {
            MemorySegment m = (MemorySegment) malloc.invokeExact(Math.max(bytes, 16L));
            if (m.address() == 0) {
                throw new OutOfMemoryError("emu_malloc of " + bytes);
            }
            used += bytes;
            sizes.put(m.address(), bytes);
            return m.address();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void free(long ptr) {
        if (closed) {
            return;
        }
        Long bytes = sizes.remove(ptr);
        if (bytes == null) {
            throw new IllegalArgumentException("free of 0x" + Long.toHexString(ptr) + ", which is not an allocation");
        }
        used -= bytes;
        int rc;
        try {
            rc = (int) free.invokeExact(MemorySegment.ofAddress(ptr));
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        if (rc != 0) {
            throw new IllegalStateException(error());
        }
    }

    @Override
    public void memset32(long ptr, int value, long count) {
        notCapturing("memset32");
        seg(ptr, 4 * count).fill((byte) 0);
        if (value != 0) {
            MemorySegment s = seg(ptr, 4 * count);
            for (long i = 0; i < count; i++) {
                s.setAtIndex(ValueLayout.JAVA_INT, i, value);
            }
        }
    }

    @Override
    public void upload(long dst, MemorySegment src, long bytes) {
        notCapturing("upload");
        MemorySegment.copy(src, 0, seg(dst, bytes), 0, bytes);
    }

    @Override
    public Staging staging(long bytes) {
        return hostStaging(arena.allocate(bytes, 64));
    }

    /** Staging memory that is plain host memory, never busy (for the fakes of {@link Gpu}). */
    static Staging hostStaging(MemorySegment s) {
        return new Staging() {
            @Override
            public MemorySegment segment() {
                return s;
            }

            @Override
            public void awaitIdle() {}
        };
    }

    @Override
    public void uploadAsync(long dst, Staging src, long srcOffset, long bytes) {
        notCapturing("uploadAsync");
        MemorySegment.copy(src.segment(), srcOffset, seg(dst, bytes), 0, bytes);
    }

    @Override
    public void download(long src, MemorySegment dst, long bytes) {
        notCapturing("download");
        MemorySegment.copy(seg(src, bytes), 0, dst, 0, bytes);
    }

    @Override
    public void copy(long dst, long src, long bytes) {
        notCapturing("copy");
        MemorySegment.copy(seg(src, bytes), 0, seg(dst, bytes), 0, bytes);
    }

    @Override
    public Object loadModule(String family) {
        return family;
    }

    @Override
    public Object function(Object module, String name) {
        return lib.find(name).orElseThrow(() -> new CriaException("kernel " + name + " is missing from the emulator library"));
    }

    private void notCapturing(String what) {
        if (capture != null) {
            throw new IllegalStateException(what + " while a graph is being captured (only launches may be captured)");
        }
    }

    @Override
    public void beginCapture() {
        notCapturing("beginCapture");
        capture = new java.util.ArrayList<>();
    }

    @Override
    public Object endCapture() {
        if (capture == null) {
            throw new IllegalStateException("endCapture without beginCapture");
        }
        java.util.List<Runnable> g = java.util.List.copyOf(capture);
        capture = null;
        return g;
    }

    @Override
    @SuppressWarnings("unchecked")
    public void launchGraph(Object graph) {
        notCapturing("launchGraph");
        for (Runnable r : (java.util.List<Runnable>) graph) {
            r.run();
        }
    }

    @Override
    public void destroyGraph(Object graph) {}

    @Override
    public double time(Runnable queue) {
        long t0 = System.nanoTime();
        queue.run();
        return (System.nanoTime() - t0) / 1e6;
    }

    @Override
    public void launch(Object function, KernelSpec spec, int gridX, int gridY, int gridZ, int block, int sharedBytes, Args args) {
        if (capture != null) {  // as a device does: the arguments as they are now, run later
            Args copy = args.copy();
            capture.add(() -> launch(function, spec, gridX, gridY, gridZ, block, sharedBytes, copy));
            return;
        }
        if (!spec.signature().equals(args.signature())) {
            throw new IllegalStateException("launcher bug: kernel " + spec.name() + " takes (" + spec.signature()
                    + ") but was given (" + args.signature() + ")");
        }
        for (int i = 0; i < args.size(); i++) {
            argBuf.setAtIndex(ValueLayout.JAVA_LONG, i, args.slot(i));
        }
        int rc;
        try (Arena a = Arena.ofConfined()) {
            rc = (int) launch.invokeExact((MemorySegment) function, a.allocateFrom(spec.name()), gridX, gridY, gridZ, block, 1,
                    1, sharedBytes, a.allocateFrom(spec.signature()), argBuf);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        if (rc != 0) {
            throw new IllegalStateException("emulated kernel failed: " + error() + " (grid " + gridX + "x" + gridY + "x"
                    + gridZ + ", block " + block + ", args " + args + ")");
        }
    }

    @Override
    public void synchronize() {}

    @Override
    public void close() {
        if (!closed) {
            for (long p : sizes.keySet().stream().mapToLong(Long::longValue).toArray()) {
                free(p);  // also checks every guard zone one last time
            }
            closed = true;
            arena.close();
        }
    }
}
