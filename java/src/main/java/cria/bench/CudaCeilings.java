// Measures the device's two ceilings in the run that times Cria: device-to-device copy bandwidth and bf16 GEMM rate (cuBLAS).
package cria.bench;

import cria.backend.cuda.Cublas;
import cria.backend.cuda.CudaBackend;
import cria.backend.cuda.Gpu;
import cria.backend.cuda.JCudaGpu;
import cria.backend.cuda.LaunchRecorder;
import cria.tensor.Half;
import java.lang.foreign.MemorySegment;
import java.util.Locale;
import java.util.Random;

/**
 * {@code java -cp cria.jar:lib/* cria.bench.CudaCeilings [gemm-size]}: prints the copy
 * bandwidth (bytes read plus written per second, over a 1 GiB buffer) and the bf16 GEMM rate of
 * an n x n x n product with f32 accumulation on random data (8192 by default), each the median
 * of repeated timed runs after a warm-up. METHOD.md: measure the ceilings in the same run.
 */
public final class CudaCeilings {
    private CudaCeilings() {}

    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 8192;
        try (CudaBackend backend = CudaBackend.open()) {
            Gpu gpu = backend.gpu();
            System.out.println("device: " + gpu.describe());
            copy(gpu, 1L << 30, System.out);
            gemm(gpu, n, System.out);
        } catch (cria.CriaException e) {
            System.err.println("cria: " + e.getMessage());
            System.exit(1);
        }
    }

    private static void say(java.io.PrintStream log, String line) {
        if (log != null) {
            log.println(line);
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        java.util.Arrays.sort(s);
        return s[s.length / 2];
    }

    /** Device-to-device copy bandwidth in GB/s (bytes read plus written), the median of 9 timings of 10 copies. */
    static double copy(Gpu gpu, long bytes, java.io.PrintStream log) {
        long a = gpu.malloc(bytes, "copy source");
        long b = gpu.malloc(bytes, "copy target");
        gpu.memset32(a, 0x3f800000, bytes / 4);
        gpu.copy(b, a, bytes);
        gpu.synchronize();
        double[] t = new double[9];
        for (int i = 0; i < t.length; i++) {
            long t0 = System.nanoTime();
            for (int r = 0; r < 10; r++) {
                gpu.copy(b, a, bytes);
            }
            gpu.synchronize();
            t[i] = (System.nanoTime() - t0) / 10e9;
        }
        double sec = median(t);
        say(log, String.format(Locale.ROOT, "copy: %.0f GB/s (%d MiB read + written in %.3f ms)", 2.0 * bytes / sec / 1e9, bytes >> 20,
                sec * 1e3));
        gpu.free(a);
        gpu.free(b);
        return 2.0 * bytes / sec / 1e9;
    }

    /** The bf16 GEMM rate of cuBLAS in TFLOP/s on random n x n x n operands, or NaN without cuBLAS. */
    static double gemm(Gpu gpu, int n, java.io.PrintStream log) {
        String found = Cublas.findLoadable();
        if (found == null) {
            say(log, "gemm: skipped, no libcublas.so.13 or .12 found (tried " + Cublas.candidates(true) + ")");
            return Double.NaN;
        }
        long elems = (long) n * n;
        long a = gpu.malloc(2 * elems, "gemm A");
        long b = gpu.malloc(2 * elems, "gemm B");
        long c = gpu.malloc(4 * elems, "gemm C");
        Random r = new Random(1);
        short[] host = new short[Math.toIntExact(elems)];
        for (long dst : new long[] {a, b}) {
            for (int i = 0; i < host.length; i++) {
                host[i] = Half.floatToBf16((float) r.nextGaussian());  // random data: zeros run faster
            }
            gpu.upload(dst, MemorySegment.ofArray(host), 2 * elems);
        }
        try (Cublas blas = Cublas.open()) {
            Gpu dev = gpu instanceof LaunchRecorder rec ? rec.device() : gpu;
            if (dev instanceof JCudaGpu j) {
                blas.setStream(j.streamHandle());
            }
            for (int w = 0; w < 3; w++) {
                blas.gemmEx(Cublas.OP_N, Cublas.OP_N, n, n, n, 1f, a, Cublas.CUDA_R_16BF, n, b, Cublas.CUDA_R_16BF, n, 0f, c,
                        Cublas.CUDA_R_32F, n);
            }
            gpu.synchronize();
            double[] t = new double[7];
            for (int i = 0; i < t.length; i++) {
                long t0 = System.nanoTime();
                for (int rep = 0; rep < 5; rep++) {
                    blas.gemmEx(Cublas.OP_N, Cublas.OP_N, n, n, n, 1f, a, Cublas.CUDA_R_16BF, n, b, Cublas.CUDA_R_16BF, n, 0f,
                            c, Cublas.CUDA_R_32F, n);
                }
                gpu.synchronize();
                t[i] = (System.nanoTime() - t0) / 5e9;
            }
            double sec = median(t);
            say(log, String.format(Locale.ROOT, "gemm: %.0f TFLOP/s bf16 (n=%d, %.3f ms, cuBLAS %d from %s)",
                    2.0 * n * n * n / sec / 1e12, n, sec * 1e3, blas.version(), blas.source()));
            float[] probe = new float[1];
            gpu.download(c, MemorySegment.ofArray(probe), 4);
            if (!Float.isFinite(probe[0])) {
                say(log, "gemm: WARNING: non-finite result " + probe[0]);
            }
            return 2.0 * n * n * n / sec / 1e12;
        } finally {
            gpu.free(a);
            gpu.free(b);
            gpu.free(c);
        }
    }
}
