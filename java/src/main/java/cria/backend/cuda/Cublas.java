// cuBLAS through Panama FFM (no JCublas): finds libcublas.so.13 or .12, creates a handle, runs cublasGemmEx.
package cria.backend.cuda;

import cria.CriaException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The few cuBLAS calls Cria uses (a bf16 GEMM for the peak-rate measurement, later maybe
 * prefill), bound with the FFM linker. Why not JCublas: JCublas 12.6 links against
 * libcublas.so.12, while the device machines carry CUDA 13 (libcublas.so.13, often only inside
 * the Python wheels' nvidia/ folders). The C API used here is the same in cuBLAS 12 and 13.
 * <p>cuBLAS works in the calling thread's current CUDA context; open the {@link CudaBackend}
 * first (it makes the device's primary context current, the one cuBLAS uses too).
 */
public final class Cublas implements AutoCloseable {
    public static final int CUDA_R_32F = 0;
    public static final int CUDA_R_16F = 2;
    public static final int CUDA_R_16BF = 14;
    public static final int COMPUTE_32F = 68;
    public static final int OP_N = 0;
    public static final int OP_T = 1;
    public static final int GEMM_DEFAULT = -1;

    private static final String[] SONAMES = {"libcublas.so.13", "libcublas.so.12"};
    private static final Linker LINKER = Linker.nativeLinker();

    private final String source;
    private final Arena arena = Arena.ofShared();
    private final MethodHandle destroy;
    private final MethodHandle setStream;
    private final MethodHandle gemmEx;
    private final MemorySegment handle;
    private final MemorySegment scalars;
    private final int version;
    private boolean closed;

    /**
     * Where the library may be loaded from, in order of preference: {@code -Dcria.cublas=PATH} or
     * {@code $CRIA_CUBLAS}; the sonames, which the dynamic loader resolves (LD_LIBRARY_PATH,
     * ldconfig); then, with {@code search}, the files found under the usual CUDA and Python-wheel
     * folders (the device machines keep cuBLAS 13 in site-packages/nvidia/).
     */
    public static List<String> candidates(boolean search) {
        List<String> out = new ArrayList<>();
        String p = System.getProperty("cria.cublas", System.getenv("CRIA_CUBLAS"));
        if (p != null && !p.isBlank()) {
            out.add(p);
        }
        out.addAll(List.of(SONAMES));
        if (search) {
            out.addAll(search());
        }
        return out;
    }

    private static List<String> search() {
        List<String> out = new ArrayList<>();
        List<Path> roots = new ArrayList<>(List.of(Path.of("/usr/local/cuda/lib64"), Path.of("/usr/local/cuda/targets"),
                Path.of("/opt"), Path.of("/usr/local/lib"), Path.of("/usr/lib")));
        try (Stream<Path> cudas = Files.list(Path.of("/usr/local"))) {
            cudas.filter(d -> d.getFileName().toString().startsWith("cuda-")).forEach(roots::add);
        } catch (IOException | RuntimeException e) {
            // no /usr/local: nothing to add
        }
        for (String soname : SONAMES) {
            for (Path root : roots) {
                if (!Files.isDirectory(root)) {
                    continue;
                }
                try (Stream<Path> s = Files.find(root, 9, (f, a) -> f.getFileName().toString().equals(soname))) {
                    s.limit(4).forEach(f -> out.add(f.toString()));
                } catch (IOException | RuntimeException e) {
                    // unreadable folders are skipped
                }
            }
        }
        return out;
    }

    /**
     * Loads cuBLAS (searching the folders only when no soname loads) and creates a handle in the
     * current context.
     *
     * @throws CriaException when no library loads (naming what was tried)
     */
    public static Cublas open() {
        List<String> tried = new ArrayList<>();
        for (boolean search : new boolean[] {false, true}) {
            for (String c : search ? search() : candidates(false)) {
                SymbolLookup lib;
                try {
                    lib = c.startsWith("/") ? SymbolLookup.libraryLookup(Path.of(c), Arena.global())
                            : SymbolLookup.libraryLookup(c, Arena.global());
                } catch (IllegalArgumentException e) {
                    tried.add(c);
                    continue;
                }
                return new Cublas(lib, c);
            }
        }
        throw new CriaException("cuBLAS not found (tried " + String.join(", ", tried)
                + "); install CUDA's libcublas or point -Dcria.cublas at libcublas.so.13");
    }

    /** The first candidate that loads (no handle is created, so no GPU is needed), or null. */
    public static String findLoadable() {
        for (boolean search : new boolean[] {false, true}) {
            for (String c : search ? search() : candidates(false)) {
                try {
                    if (c.startsWith("/")) {
                        SymbolLookup.libraryLookup(Path.of(c), Arena.global());
                    } else {
                        SymbolLookup.libraryLookup(c, Arena.global());
                    }
                    return c;
                } catch (IllegalArgumentException e) {
                    // next
                }
            }
        }
        return null;
    }

    private static MethodHandle fn(SymbolLookup lib, String name, FunctionDescriptor d) {
        return LINKER.downcallHandle(lib.find(name).orElseThrow(() -> new CriaException("cuBLAS lacks " + name)), d);
    }

    private Cublas(SymbolLookup lib, String source) {
        this.source = source;
        ValueLayout.OfInt I = ValueLayout.JAVA_INT;
        ValueLayout A = ValueLayout.ADDRESS;
        MethodHandle create = fn(lib, "cublasCreate_v2", FunctionDescriptor.of(I, A));
        MethodHandle getVersion = fn(lib, "cublasGetVersion_v2", FunctionDescriptor.of(I, A, A));
        this.destroy = fn(lib, "cublasDestroy_v2", FunctionDescriptor.of(I, A));
        this.setStream = fn(lib, "cublasSetStream_v2", FunctionDescriptor.of(I, A, A));
        this.gemmEx = fn(lib, "cublasGemmEx", FunctionDescriptor.of(I, A, I, I, I, I, I, A, A, I, I, A, I, I, A, A, I, I, I, I));
        this.scalars = arena.allocate(16, 8);
        MemorySegment h = arena.allocate(ValueLayout.ADDRESS);
        check("cublasCreate", call(() -> (int) create.invokeExact(h)));
        this.handle = h.get(ValueLayout.ADDRESS, 0);
        MemorySegment v = arena.allocate(ValueLayout.JAVA_INT);
        check("cublasGetVersion", call(() -> (int) getVersion.invokeExact(handle, v)));
        this.version = v.get(ValueLayout.JAVA_INT, 0);
    }

    private interface Call {
        int run() throws Throwable;
    }

    private static int call(Call c) {
        try {
            return c.run();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static void check(String what, int status) {
        if (status != 0) {
            throw new IllegalStateException(what + " failed with cuBLAS status " + status
                    + (status == 1 ? " (NOT_INITIALIZED: no current CUDA context?)" : ""));
        }
    }

    /** Which library file or soname was loaded. */
    public String source() {
        return source;
    }

    /** cuBLAS's version number (e.g. 130100 for 13.1.0). */
    public int version() {
        return version;
    }

    /** Queues later calls on this stream (a CUstream handle; 0 is the legacy default stream). */
    public void setStream(long stream) {
        check("cublasSetStream", call(() -> (int) setStream.invokeExact(handle, MemorySegment.ofAddress(stream))));
    }

    /**
     * C = alpha op(A) op(B) + beta C in column-major order (cuBLAS's convention), f32 compute,
     * matrices given by device address and cudaDataType ({@link #CUDA_R_16BF} etc.).
     */
    public void gemmEx(int transA, int transB, int m, int n, int k, float alpha, long a, int aType, int lda, long b,
                       int bType, int ldb, float beta, long c, int cType, int ldc) {
        scalars.set(ValueLayout.JAVA_FLOAT, 0, alpha);
        scalars.set(ValueLayout.JAVA_FLOAT, 4, beta);
        MemorySegment al = scalars.asSlice(0, 4);
        MemorySegment be = scalars.asSlice(4, 4);
        int status = call(() -> (int) gemmEx.invokeExact(handle, transA, transB, m, n, k, al, MemorySegment.ofAddress(a),
                aType, lda, MemorySegment.ofAddress(b), bType, ldb, be, MemorySegment.ofAddress(c), cType, ldc, COMPUTE_32F,
                GEMM_DEFAULT));
        check("cublasGemmEx(" + m + "x" + n + "x" + k + ")", status);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            call(() -> (int) destroy.invokeExact(handle));
            arena.close();
        }
    }
}
