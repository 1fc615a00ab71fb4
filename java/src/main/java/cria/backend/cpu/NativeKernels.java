// The C kernels of native/ (libcria.so), bound through the FFM API; absent library means the pure-Java path.
package cria.backend.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * Downcall handles to native/cria.h. The library comes from {@code -Dcria.native.dir} (the
 * launcher and the tests set it to target/native) or from the jar ({@link NativeLibrary}); when
 * it is missing, unloadable, built for instructions this CPU lacks ({@code cria_cpu_ok}) or
 * disabled ({@code -Dcria.native=false}), {@link #get()} returns null and the CPU backend uses its
 * Vector API code. Calls are "critical" (no thread-state transition): they never call back into
 * Java and take only off-heap memory.
 */
final class NativeKernels {
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG;
    private static final ValueLayout A = ValueLayout.ADDRESS;

    private static volatile NativeKernels instance;
    private static volatile String why;

    final Path path;
    final int features;
    /** The loaded library, for the other kernel families' handles ({@link NativeTrainPath}). */
    final SymbolLookup lib;
    private final MethodHandle supports;
    private final MethodHandle actRowBytes;
    private final MethodHandle quantizeAct;
    private final MethodHandle scratchBytes;
    private final MethodHandle matmul;
    private final MethodHandle packedBytes;
    private final MethodHandle pack;
    private final MethodHandle matmulPacked;
    private final MethodHandle mapHuge;
    private final MethodHandle unmap;
    private final MethodHandle attendScratch;
    private final MethodHandle rmsnorm;
    private final MethodHandle swiglu;
    private final MethodHandle geglu;
    private final MethodHandle add;
    private final MethodHandle rope;
    private final MethodHandle storeRow;
    private final MethodHandle attend;

    private NativeKernels(Path path, SymbolLookup lib) throws Throwable {
        this.path = path;
        this.lib = lib;
        Linker linker = Linker.nativeLinker();
        Linker.Option critical = Linker.Option.critical(false);
        this.supports = linker.downcallHandle(find(lib, "cria_supports"), FunctionDescriptor.of(I, I), critical);
        this.actRowBytes = linker.downcallHandle(find(lib, "cria_act_row_bytes"), FunctionDescriptor.of(L, I), critical);
        this.quantizeAct = linker.downcallHandle(find(lib, "cria_quantize_act"),
                FunctionDescriptor.ofVoid(A, L, I, I, I, A, L), critical);
        this.scratchBytes = linker.downcallHandle(find(lib, "cria_matmul_scratch_bytes"), FunctionDescriptor.of(L, I, I), critical);
        this.matmul = linker.downcallHandle(find(lib, "cria_matmul"),
                FunctionDescriptor.of(I, I, A, L, I, I, I, A, L, I, A, L, A), critical);
        this.packedBytes = linker.downcallHandle(find(lib, "cria_packed_bytes"), FunctionDescriptor.of(L, I, I, I), critical);
        this.pack = linker.downcallHandle(find(lib, "cria_pack"), FunctionDescriptor.of(I, I, A, L, I, I, I, A), critical);
        this.matmulPacked = linker.downcallHandle(find(lib, "cria_matmul_packed"),
                FunctionDescriptor.of(I, I, A, L, A, I, I, I, A, L, I, A, L, A), critical);
        this.mapHuge = linker.downcallHandle(find(lib, "cria_map_huge"), FunctionDescriptor.of(A, L), critical);
        this.unmap = linker.downcallHandle(find(lib, "cria_unmap"), FunctionDescriptor.ofVoid(A, L), critical);
        this.attendScratch = linker.downcallHandle(find(lib, "cria_attend_scratch_bytes"), FunctionDescriptor.of(L, I, I, I), critical);
        // heap access allowed: the page table is a Java int[]
        this.attend = linker.downcallHandle(find(lib, "cria_attend"),
                FunctionDescriptor.ofVoid(A, L, A, L, I, I, A, A, L, I, A, L, I, L, L, I, I, ValueLayout.JAVA_FLOAT, ValueLayout.JAVA_FLOAT, A),
                Linker.Option.critical(true));
        Linker.Option heap = Linker.Option.critical(true);
        this.rmsnorm = linker.downcallHandle(find(lib, "cria_rmsnorm"), FunctionDescriptor.ofVoid(A, L, A, L, I, I, I, A, ValueLayout.JAVA_FLOAT), heap);
        this.swiglu = linker.downcallHandle(find(lib, "cria_swiglu"), FunctionDescriptor.ofVoid(A, A, L, L), critical);
        this.geglu = linker.downcallHandle(find(lib, "cria_geglu"), FunctionDescriptor.ofVoid(A, A, L, L), critical);
        this.add = linker.downcallHandle(find(lib, "cria_add"), FunctionDescriptor.ofVoid(A, A, L), critical);
        // heap access allowed: the positions and inverse frequencies are Java arrays
        this.rope = linker.downcallHandle(find(lib, "cria_rope"), FunctionDescriptor.ofVoid(A, L, I, I, I, I, I, I, A, A, A), heap);
        this.storeRow = linker.downcallHandle(find(lib, "cria_store_row"), FunctionDescriptor.ofVoid(A, L, A, L, I, I), critical);
        MethodHandle feat = linker.downcallHandle(find(lib, "cria_features"), FunctionDescriptor.of(I), critical);
        this.features = (int) feat.invokeExact();
    }

    static MemorySegment find(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new IllegalStateException("symbol " + name + " missing from libcria.so"));
    }

    /**
     * The values of the environment variable CRIA_PREFETCH that the library reads (native/cpu.c
     * {@code cria_prefetch_mode}): how decode's matrix products prefetch their packed weights.
     */
    static final java.util.List<String> PREFETCH_MODES = java.util.List.of("l2", "l1", "off");

    /** The one line to say about a CRIA_PREFETCH value the library would ignore; null when unset or valid. */
    static String prefetchProblem(String value) {
        if (value == null || PREFETCH_MODES.contains(value)) {
            return null;
        }
        return "cria: CRIA_PREFETCH=" + value + " is not one of " + PREFETCH_MODES
                + ": ignored, this CPU's default is used (unset it, or see README \"The CPU path\")";
    }

    /** The kernels, or null when the library is not available (see {@link #unavailableReason()}). */
    static NativeKernels get() {
        NativeKernels k = instance;
        if (k != null || why != null) {
            return k;
        }
        synchronized (NativeKernels.class) {
            if (instance != null || why != null) {
                return instance;
            }
            if (disabled()) {
                why = "disabled by -Dcria.native=false";
                return null;
            }
            NativeLibrary.Found found = NativeLibrary.locate();
            if (found.path() == null) {
                why = found.why();
                return null;
            }
            Path p = found.path();
            try {
                SymbolLookup lib = SymbolLookup.libraryLookup(p, Arena.global());
                // asked first, and compiled for the architecture's baseline: safe on any CPU
                MethodHandle cpuOk = Linker.nativeLinker().downcallHandle(find(lib, "cria_cpu_ok"), FunctionDescriptor.of(I));
                if ((int) cpuOk.invokeExact() == 0) {
                    why = "this CPU lacks the instructions the native kernels are built for ("
                            + (NativeLibrary.platform().endsWith("x86_64") ? "AVX-512 with VNNI" : NativeLibrary.platform()) + ")";
                    return null;
                }
                instance = new NativeKernels(p, lib);
            } catch (Throwable e) {
                why = "native library " + p + " could not be loaded: " + e.getMessage();
            }
            return instance;
        }
    }

    /** True when the native kernels were turned off on purpose ({@code -Dcria.native=false}). */
    static boolean disabled() {
        return "false".equals(System.getProperty("cria.native"));
    }

    /** Why {@link #get()} returned null, or null. */
    static String unavailableReason() {
        get();
        return why;
    }

    boolean supports(int type) {
        try {
            return (int) supports.invokeExact(type) != 0;
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    long actRowBytes(int k) {
        try {
            return (long) actRowBytes.invokeExact(k);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    long scratchBytes(int k, int n) {
        try {
            return (long) scratchBytes.invokeExact(k, n);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** Quantizes rows [r0, r1) of x into the same rows of act. */
    void quantizeAct(MemorySegment x, long xStrideFloats, int r0, int r1, int k, MemorySegment act, long actStrideBytes) {
        try {
            quantizeAct.invokeExact(x, xStrideFloats, r0, r1, k, act, actStrideBytes);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    long attendScratchBytes(int len, int group, int headDim) {
        try {
            return (long) attendScratch.invokeExact(len, group, headDim);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * One (entry, KV head) item: q and out at byte offsets, keys and values at kvOff bytes, the page
     * table from entry pagesOff; positions first .. len - 1, scores scaled then soft-capped (softcap > 0).
     */
    void attend(MemorySegment q, long qOff, MemorySegment out, long outOff, int group, int headDim, MemorySegment k, MemorySegment v,
                long kvOff, boolean f16, MemorySegment table, long pagesOff, int pageSize, long pageBytes, long slotBytes, int first,
                int len, float scale, float softcap, MemorySegment scratch) {
        try {
            attend.invokeExact(q, qOff, out, outOff, group, headDim, k, v, kvOff, f16 ? 1 : 0, table, pagesOff, pageSize, pageBytes,
                    slotBytes, first, len, scale, softcap, scratch);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** RMSNorm of rows [r0, r1) of x into the same rows of out. */
    void rmsnorm(MemorySegment x, long xs, MemorySegment out, long os, int r0, int r1, int d, MemorySegment w, float eps) {
        try {
            rmsnorm.invokeExact(x, xs, out, os, r0, r1, d, w, eps);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** SwiGLU of elements [from, to). */
    void swiglu(MemorySegment a, MemorySegment b, long from, long to) {
        try {
            swiglu.invokeExact(a, b, from, to);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** GeGLU (tanh form) of elements [from, to). */
    void geglu(MemorySegment a, MemorySegment b, long from, long to) {
        try {
            geglu.invokeExact(a, b, from, to);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    void add(MemorySegment x, MemorySegment y, long count) {
        try {
            add.invokeExact(x, y, count);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** Rotates rows [r0, r1) of x; cs: scratch of 2 * (dims / 2) floats. */
    void rope(MemorySegment x, long xs, int r0, int r1, int heads, int headDim, int dims, boolean neox, MemorySegment pos,
              MemorySegment inv, MemorySegment cs) {
        try {
            rope.invokeExact(x, xs, r0, r1, heads, headDim, dims, neox ? 1 : 0, pos, inv, cs);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** One row of d floats from src at srcOff bytes into dst at dstOff bytes, as F16 or F32. */
    void storeRow(MemorySegment src, long srcOff, MemorySegment dst, long dstOff, int d, boolean f16) {
        try {
            storeRow.invokeExact(src, srcOff, dst, dstOff, d, f16 ? 1 : 0);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    int matmul(int type, MemorySegment w, long rowBytes, int r0, int r1, int k, MemorySegment x, long xStride, int n,
               MemorySegment out, long outStride, MemorySegment scratch) {
        try {
            return (int) matmul.invokeExact(type, w, rowBytes, r0, r1, k, x, xStride, n, out, outStride, scratch);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** Bytes of the packed form of a weight of this type and shape (its full 16-row panels), or 0 when it cannot be packed. */
    long packedBytes(int type, int rows, int k) {
        try {
            return (long) packedBytes.invokeExact(type, rows, k);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** Packs panels [p0, p1) (rows 16 p0 to 16 p1) of w into packed; 0, or -1 when the type cannot be packed. */
    int pack(int type, MemorySegment w, long rowBytes, int p0, int p1, int k, MemorySegment packed) {
        try {
            return (int) pack.invokeExact(type, w, rowBytes, p0, p1, k, packed);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** {@link #matmul} with the weight's full panels read from its packed form; r0 a multiple of 16. */
    int matmulPacked(int type, MemorySegment w, long rowBytes, MemorySegment packed, int r0, int r1, int k, MemorySegment x,
                     long xStride, int n, MemorySegment out, long outStride, MemorySegment scratch) {
        try {
            return (int) matmulPacked.invokeExact(type, w, rowBytes, packed, r0, r1, k, x, xStride, n, out, outStride, scratch);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * bytes of fresh memory backed by huge pages where the OS gives them (see cria.h), freed when
     * arena closes; null when the memory cannot be had.
     */
    MemorySegment mapHuge(long bytes, java.lang.foreign.Arena arena) {
        try {
            MemorySegment p = (MemorySegment) mapHuge.invokeExact(bytes);
            if (p.equals(MemorySegment.NULL)) {
                return null;
            }
            return p.reinterpret(bytes, arena, s -> {
                try {
                    unmap.invokeExact(s, bytes);
                } catch (Throwable e) {
                    throw new IllegalStateException(e);
                }
            });
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }
}
