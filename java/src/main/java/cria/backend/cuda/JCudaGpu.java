// The Gpu of a real device: JCuda's binding of the CUDA driver API (primary context, one stream, fatbin modules).
package cria.backend.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuGraphDestroy;
import static jcuda.driver.JCudaDriver.cuGraphExecDestroy;
import static jcuda.driver.JCudaDriver.cuGraphInstantiate;
import static jcuda.driver.JCudaDriver.cuGraphLaunch;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemAllocHost;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;
import static jcuda.driver.JCudaDriver.cuStreamBeginCapture;
import static jcuda.driver.JCudaDriver.cuStreamEndCapture;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import cria.CriaException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.JCudaDriver;

/**
 * The driver API through JCuda. Uses the device's primary context (the one the CUDA runtime and
 * cuBLAS use too, so device pointers can be shared with them) and one blocking stream: plain
 * synchronous copies on the legacy default stream therefore also wait for queued kernels.
 * Every driver error becomes an exception (JCuda's exceptions are on); kernel faults surface at
 * the next synchronization, so with {@code -Dcria.cuda.sync=true} every launch is followed by
 * one, naming the kernel that failed.
 * <p>Load this class only after {@code CudaProbe} has found a driver: JCuda's native library
 * links against libcuda.so.1.
 */
public final class JCudaGpu implements Gpu {
    private static final long CHUNK = 256L << 20;  // host-to-device copies in pieces a ByteBuffer can hold
    private static final boolean SYNC_EACH_LAUNCH = Boolean.getBoolean("cria.cuda.sync");
    private static final CUdeviceptr NULL = new CUdeviceptr();

    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final Stream stream = new Stream();
    private final String description;
    private final int sms;
    private final Map<Long, CUdeviceptr> allocations = new HashMap<>();
    private final List<PinnedStaging> stagings = new ArrayList<>();
    private final List<CUmodule> modules = new ArrayList<>();
    private final Map<CUfunction, Integer> sharedOptIn = new java.util.IdentityHashMap<>();
    private final List<CUgraphExec> graphs = new ArrayList<>();
    private boolean capturing;
    private volatile Thread boundThread;
    private String lastKernel = "(none)";
    private boolean closed;

    /**
     * Opens device {@code index}.
     *
     * @throws CriaException when the driver cannot be loaded or initialized, or there is no such device
     */
    static JCudaGpu open(int index) {
        try {
            JCudaDriver.setExceptionsEnabled(true);
        } catch (LinkageError e) {
            throw new CriaException("the CUDA driver could not be loaded by JCuda (" + linkReason(e)
                    + "); check that libcuda.so.1 is installed and on the library path, or use --backend cpu", e);
        }
        try {
            cuInit(0);
        } catch (CudaException e) {
            throw new CriaException("the CUDA driver failed to initialize (" + e.getMessage()
                    + "); check nvidia-smi, the driver version (CUDA 12.6 or newer) and CUDA_VISIBLE_DEVICES, or use --backend cpu", e);
        }
        int[] count = {0};
        cuDeviceGetCount(count);
        if (index < 0 || index >= count[0]) {
            throw new CriaException("no CUDA device " + index + " (the driver sees " + count[0]
                    + "); set -Dcria.cuda.device to one of 0.." + (count[0] - 1) + " or use --backend cpu");
        }
        return new JCudaGpu(index);
    }

    private JCudaGpu(int index) {
        cuDeviceGet(device, index);
        cuDevicePrimaryCtxRetain(context, device);
        cuCtxSetCurrent(context);
        boundThread = Thread.currentThread();
        cuStreamCreate(stream, 0);  // CU_STREAM_DEFAULT: synchronizes with the legacy default stream
        byte[] name = new byte[256];
        cuDeviceGetName(name, name.length, device);
        int len = 0;
        while (len < name.length && name[len] != 0) {
            len++;
        }
        int[] v = {0};
        cuDeviceGetAttribute(v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device);
        sms = v[0];
        cuDeviceGetAttribute(v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
        int major = v[0];
        cuDeviceGetAttribute(v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
        int minor = v[0];
        cuDriverGetVersion(v);
        int driver = v[0];
        MemInfo mem = memInfo();
        description = new String(name, 0, len, StandardCharsets.UTF_8) + ", " + (mem.total() >> 20) + " MiB, sm_" + major
                + minor + ", " + sms + " SMs, driver CUDA " + driver / 1000 + "." + driver % 1000 / 10;
    }

    /** Makes the context current on the calling thread (the driver keeps it per thread). */
    private void bind() {
        if (closed) {
            throw new IllegalStateException("the CUDA backend is closed");
        }
        Thread t = Thread.currentThread();
        if (boundThread != t) {
            cuCtxSetCurrent(context);
            boundThread = t;
        }
    }

    private static final java.util.regex.Pattern MISSING_LIB =
            java.util.regex.Pattern.compile("([\\w.+-]+\\.so[\\w.]*): cannot open shared object file");

    /**
     * The gist of a native-library failure. JCuda's own message nests whole stack traces; the
     * dynamic loader's "libX: cannot open shared object file" is what a person needs.
     */
    static String linkReason(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        java.util.regex.Matcher missing = MISSING_LIB.matcher(m);
        if (missing.find()) {
            return missing.group(1) + " not found";
        }
        m = m.replace('\n', ' ').replace('\t', ' ');
        int nested = m.indexOf("---(start");
        if (nested > 0) {
            m = m.substring(0, nested);
        }
        m = m.strip();
        return m.length() > 200 ? m.substring(0, 200) + "..." : m;
    }

    /** JCuda's stream object, with its CUstream handle readable (for cuBLAS). */
    private static final class Stream extends CUstream {
        long address() {
            return getNativePointer();
        }
    }

    /** The CUstream handle work is queued on (cuBLAS can be pointed at it). */
    public long streamHandle() {
        return stream.address();
    }

    /** A device pointer object for an address (JCuda adds its byte offset to a null base). */
    private static final class DevPtr extends CUdeviceptr {
        DevPtr(long address) {
            super(NULL, address);
        }
    }

    /** Reads the address JCuda stored into a pointer object. */
    private static final class Address extends CUdeviceptr {
        static long of(CUdeviceptr p) {
            return new Address(p).get();
        }

        private Address(CUdeviceptr p) {
            super(p, 0);
        }

        private long get() {
            return getNativePointer() + getByteOffset();
        }
    }

    private static CUdeviceptr dev(long address) {
        return new DevPtr(address);
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public int multiprocessors() {
        return sms;
    }

    @Override
    public MemInfo memInfo() {
        bind();
        long[] free = {0};
        long[] total = {0};
        cuMemGetInfo(free, total);
        return new MemInfo(free[0], total[0]);
    }

    @Override
    public long malloc(long bytes, String what) {
        bind();
        CUdeviceptr p = new CUdeviceptr();
        try {
            cuMemAlloc(p, Math.max(bytes, 16));
        } catch (CudaException e) {
            MemInfo m = memInfo();
            throw new CriaException("out of GPU memory: " + what + " needs " + mib(bytes) + " MiB but " + mib(m.free())
                    + " MiB of " + mib(m.total()) + " are free (" + e.getMessage() + "); lower --ctx or the batch size, or use a smaller model");
        }
        long a = Address.of(p);
        allocations.put(a, p);
        return a;
    }

    static long mib(long bytes) {
        return (bytes + (1 << 20) - 1) >> 20;
    }

    @Override
    public void free(long ptr) {
        if (closed) {
            return;  // close() already released every allocation
        }
        bind();
        CUdeviceptr p = allocations.remove(ptr);
        if (p == null) {
            throw new IllegalArgumentException("free of 0x" + Long.toHexString(ptr) + ", which is not an allocation");
        }
        cuMemFree(p);
    }

    @Override
    public void memset32(long ptr, int value, long count) {
        bind();
        cuMemsetD32Async(dev(ptr), value, count, stream);
    }

    /** A host pointer for a heap or native segment (JCuda pins heap arrays for the call). */
    private static Pointer host(MemorySegment s) {
        if (s.isNative()) {
            return Pointer.to(s.asByteBuffer());
        }
        Object base = s.heapBase().orElseThrow();
        long off = s.address();
        Pointer p = switch (base) {
            case float[] a -> Pointer.to(a);
            case int[] a -> Pointer.to(a);
            case byte[] a -> Pointer.to(a);
            case short[] a -> Pointer.to(a);
            case long[] a -> Pointer.to(a);
            case double[] a -> Pointer.to(a);
            default -> throw new IllegalArgumentException("unsupported heap segment " + base.getClass());
        };
        return off == 0 ? p : p.withByteOffset(off);
    }

    @Override
    public void upload(long dst, MemorySegment src, long bytes) {
        bind();
        for (long off = 0; off < bytes; off += CHUNK) {
            long n = Math.min(CHUNK, bytes - off);
            cuMemcpyHtoD(dev(dst + off), host(src.asSlice(off, n)), n);
        }
    }

    /** Page-locked host memory with an event marking its last queued copy. */
    private final class PinnedStaging implements Staging {
        final Pointer pointer = new Pointer();
        final MemorySegment segment;
        final CUevent event = new CUevent();
        boolean pending;

        PinnedStaging(long bytes) {
            cuMemAllocHost(pointer, bytes);
            ByteBuffer bb = pointer.getByteBuffer(0, bytes).order(ByteOrder.nativeOrder());
            segment = MemorySegment.ofBuffer(bb);
            cuEventCreate(event, 2);  // CU_EVENT_DISABLE_TIMING
        }

        @Override
        public MemorySegment segment() {
            return segment;
        }

        @Override
        public void awaitIdle() {
            if (pending && !closed) {
                bind();
                cuEventSynchronize(event);
                pending = false;
            }
        }

        void release() {
            cuEventDestroy(event);
            cuMemFreeHost(pointer);
        }
    }

    @Override
    public Staging staging(long bytes) {
        bind();
        PinnedStaging s = new PinnedStaging(bytes);
        stagings.add(s);
        return s;
    }

    @Override
    public void uploadAsync(long dst, Staging src, long srcOffset, long bytes) {
        bind();
        PinnedStaging s = (PinnedStaging) src;
        cuMemcpyHtoDAsync(dev(dst), s.pointer.withByteOffset(srcOffset), bytes, stream);
        cuEventRecord(s.event, stream);
        s.pending = true;
    }

    @Override
    public void download(long src, MemorySegment dst, long bytes) {
        synchronize();
        cuMemcpyDtoH(host(dst), dev(src), bytes);
    }

    @Override
    public void copy(long dst, long src, long bytes) {
        bind();
        cuMemcpyDtoDAsync(dev(dst), dev(src), bytes, stream);
    }

    @Override
    public Object loadModule(String family) {
        bind();
        byte[] image = Fatbins.read(family);
        CUmodule m = new CUmodule();
        try {
            cuModuleLoadData(m, image);
        } catch (CudaException e) {
            throw new CriaException("the CUDA kernels '" + family + "' do not load on " + description + " (" + e.getMessage()
                    + "); the jar's kernels are built for sm_80..sm_90 and PTX: rebuild with 'make kernels', or use --backend cpu", e);
        }
        modules.add(m);
        return m;
    }

    @Override
    public Object function(Object module, String name) {
        bind();
        CUfunction f = new CUfunction();
        try {
            cuModuleGetFunction(f, (CUmodule) module, name);
        } catch (CudaException e) {
            throw new CriaException("kernel " + name + " is missing from the jar's CUDA kernels (" + e.getMessage()
                    + "); the jar is out of date with its launcher classes: rebuild with 'make'", e);
        }
        return f;
    }

    @Override
    public void launch(Object function, KernelSpec spec, int gridX, int gridY, int gridZ, int block, int sharedBytes, Args args) {
        bind();
        if (!spec.signature().equals(args.signature())) {
            throw new IllegalStateException("launcher bug: kernel " + spec.name() + " takes (" + spec.signature()
                    + ") but was given (" + args.signature() + ")");
        }
        Pointer[] params = new Pointer[args.size()];
        for (int i = 0; i < params.length; i++) {
            long v = args.slot(i);
            params[i] = switch (args.kind(i)) {
                case 'i' -> Pointer.to(new int[] {(int) v});
                case 'f' -> Pointer.to(new float[] {Float.intBitsToFloat((int) v)});
                case 'd' -> Pointer.to(new double[] {Double.longBitsToDouble(v)});
                default -> Pointer.to(new long[] {v});
            };
        }
        lastKernel = spec.name();
        if (sharedBytes > 48 * 1024 && sharedOptIn.getOrDefault((CUfunction) function, 0) < sharedBytes) {
            // above 48 KiB a kernel must opt in to its dynamic shared memory, once
            cuFuncSetAttribute((CUfunction) function, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, sharedBytes);
            sharedOptIn.put((CUfunction) function, sharedBytes);
        }
        try {
            cuLaunchKernel((CUfunction) function, gridX, gridY, gridZ, block, 1, 1, sharedBytes, stream, Pointer.to(params), null);
        } catch (CudaException e) {
            throw new IllegalStateException("CUDA launch of " + spec.name() + " (grid " + gridX + "x" + gridY + "x" + gridZ
                    + ", block " + block + ", shared " + sharedBytes + " bytes, args " + args + ") failed: " + e.getMessage(), e);
        }
        if (SYNC_EACH_LAUNCH && !capturing) {
            try {
                cuStreamSynchronize(stream);
            } catch (CudaException e) {
                throw new IllegalStateException("CUDA kernel " + spec.name() + " (grid " + gridX + "x" + gridY + "x" + gridZ
                        + ", block " + block + ", args " + args + ") failed: " + e.getMessage(), e);
            }
        }
    }

    @Override
    public void beginCapture() {
        bind();
        // relaxed: other threads' unrelated CUDA calls (cuBLAS handles, allocations) stay legal meanwhile
        cuStreamBeginCapture(stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED);
        capturing = true;
    }

    @Override
    public Object endCapture() {
        bind();
        CUgraph g = new CUgraph();
        try {
            cuStreamEndCapture(stream, g);
        } finally {
            capturing = false;
        }
        CUgraphExec e = new CUgraphExec();
        try {
            cuGraphInstantiate(e, g, 0);
        } finally {
            cuGraphDestroy(g);
        }
        graphs.add(e);
        return e;
    }

    @Override
    public void launchGraph(Object graph) {
        bind();
        lastKernel = "a CUDA graph";
        cuGraphLaunch((CUgraphExec) graph, stream);
        if (SYNC_EACH_LAUNCH) {
            synchronize();
        }
    }

    @Override
    public void destroyGraph(Object graph) {
        if (closed) {
            return;
        }
        bind();
        if (graphs.remove((CUgraphExec) graph)) {
            cuGraphExecDestroy((CUgraphExec) graph);
        }
    }

    @Override
    public double time(Runnable queue) {
        bind();
        CUevent a = new CUevent();
        CUevent b = new CUevent();
        cuEventCreate(a, 0);
        cuEventCreate(b, 0);
        try {
            cuEventRecord(a, stream);
            queue.run();
            cuEventRecord(b, stream);
            cuEventSynchronize(b);
            float[] ms = {0};
            cuEventElapsedTime(ms, a, b);
            return ms[0];
        } finally {
            cuEventDestroy(a);
            cuEventDestroy(b);
        }
    }

    @Override
    public void synchronize() {
        if (closed) {
            return;
        }
        bind();
        try {
            cuStreamSynchronize(stream);
        } catch (CudaException e) {
            throw new IllegalStateException("CUDA error in queued work (last kernel launched: " + lastKernel + "): "
                    + e.getMessage() + "; rerun with -Dcria.cuda.sync=true to find the kernel", e);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        try {
            bind();
            cuStreamSynchronize(stream);
        } catch (CudaException e) {
            // a sticky error from earlier work: release what we can anyway
        } finally {
            closed = true;
        }
        for (CUdeviceptr p : allocations.values()) {
            cuMemFree(p);
        }
        allocations.clear();
        for (PinnedStaging s : stagings) {
            s.release();
        }
        stagings.clear();
        for (CUgraphExec g : graphs) {
            cuGraphExecDestroy(g);
        }
        graphs.clear();
        for (CUmodule m : modules) {
            cuModuleUnload(m);
        }
        modules.clear();
        cuStreamDestroy(stream);
        cuDevicePrimaryCtxRelease(device);
    }
}
