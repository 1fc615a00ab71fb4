// The CUDA test devices: the CPU emulator of the kernels (wherever g++ and libffi are) and a real GPU (when present).
package cria.backend.cuda;

import cria.CriaException;
import cria.backend.Backend;
import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.KvCache;
import cria.bench.Compare;
import cria.engine.Backends;
import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/**
 * Opens a {@link CudaBackend} on a named device for the tests, skipping (JUnit assumptions)
 * with the reason when it is not there, and moves test data in and out of device buffers.
 */
public final class Devices {
    private Devices() {}

    /** The device names tests are parameterized over. */
    public static final String EMULATOR = "emulator";
    public static final String GPU = "gpu";

    /**
     * A CUDA backend on {@code device}; skips the calling test when that device is unavailable.
     * The GPU is reached the way the engine reaches it ({@code --backend cuda}).
     */
    public static CudaBackend open(String device) {
        if (EMULATOR.equals(device)) {
            Skips.unless(!Boolean.getBoolean("cria.emu.skip"), "emulator tests: -Dcria.emu.skip is set");
            String why = EmuBuild.whyUnavailable();
            Skips.unless(why == null, "emulator tests: " + why);
            return new CudaBackend(new EmuGpu());
        }
        try {
            return (CudaBackend) Backends.create("cuda", 0, null);
        } catch (CriaException e) {
            Skips.unless(false, "GPU tests: no usable CUDA device: " + e.getMessage());
            throw e;
        }
    }

    /** A public handle on the emulated backend for tests in other packages (the engine's); skips when unavailable. */
    public static Backend emulator() {
        return open(EMULATOR);
    }

    /** Writes rows x cols floats into a buffer of either backend. */
    public static void put(Backend b, Buf buf, float[] v) {
        if (buf instanceof HostBuf h) {
            MemorySegment.copy(v, 0, h.segment(), ValueLayout.JAVA_FLOAT, 0, v.length);
        } else {
            CudaBackend c = (CudaBackend) b;
            c.gpu().upload(((CudaBuf) buf).ptr(), MemorySegment.ofArray(v), 4L * v.length);
        }
    }

    /** Fills a device buffer with NaN, so that an element a kernel fails to write shows. */
    public static void poison(CudaBackend c, Buf buf) {
        CudaBuf b = (CudaBuf) buf;
        c.gpu().memset32(b.ptr(), 0x7fc00000, (long) b.rows() * b.cols());
    }

    /** The weight types the CUDA kernels read ({@link CudaTypes#all()}), for the conformance suite. */
    public static java.util.List<GgmlType> types() {
        java.util.List<GgmlType> out = new java.util.ArrayList<>();
        CudaTypes.all().forEach(out::add);
        return out;
    }

    /** A row width the one-row (fused) gemv kernels take for weights of type {@code t} ({@link CudaDecodeTest#colsFor}). */
    public static int gemvCols(GgmlType t) {
        return CudaDecodeTest.colsFor(t);
    }

    /** A CUDA cache's K and V storage as read back from the device. */
    public static byte[][] cacheBytes(CudaBackend c, KvCache cache) {
        CudaKvCache cc = (CudaKvCache) cache;
        long bytes = cache.config().bytes() / 2;
        byte[][] out = new byte[2][(int) bytes];
        c.gpu().download(cc.keys(), MemorySegment.ofArray(out[0]), bytes);
        c.gpu().download(cc.values(), MemorySegment.ofArray(out[1]), bytes);
        return out;
    }

    /** Attention splits the sequence into this many spans (when long enough); 0 restores the heuristic. */
    public static void forceSplits(CudaBackend c, int splits) {
        c.kernels().attention.forceSplits(splits);
    }

    /** The emulator's thread order for later launches: FORWARD, REVERSE or RANDOM (seeded). */
    public static void schedule(String schedule, long seed) {
        EmuGpu.schedule(EmuGpu.Schedule.valueOf(schedule), seed);
    }

    static float[] gaussian(Random r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * scale);
        }
        return a;
    }

    /** ||a - b|| / ||b|| over the first n values ({@link Compare#relErr}). */
    static double relErr(float[] a, float[] b, int n) {
        return Compare.relErr(a, b, n);
    }

    /** Index of the first element off by more than tol times the RMS of b ({@link Compare#firstBad}), or -1. */
    static int firstBad(float[] a, float[] b, int n, double tol) {
        return Compare.firstBad(a, b, n, tol);
    }
}
