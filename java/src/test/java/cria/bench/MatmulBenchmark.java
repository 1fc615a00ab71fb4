// JMH: the CPU backend's matrix products per weight type and batch size, native kernels and the pure-Java path.
package cria.bench;

import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.Weight;
import cria.backend.cpu.CpuBackend;
import cria.gguf.GgmlType;
import cria.tensor.Codec;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One matrix product of a [rows x cols] weight with n input rows. Scores are microseconds per
 * product: divide rows x cols x n by it for multiply-adds per second, rows x rowBytes for bytes.
 * Run with {@code make bench}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class MatmulBenchmark {
    @Param({"Q4_0", "Q8_0", "Q4_K", "Q6_K", "F16"})
    public String type;

    @Param({"1", "16", "128"})
    public int n;

    @Param({"native"})
    public String path;

    @Param({"2048"})
    public int cols;

    @Param({"8192"})
    public int rows;

    private Arena arena;
    private CpuBackend backend;
    private Weight[] w;
    private Buf x;
    private Buf[] out;

    @Setup(Level.Trial)
    public void setup() {
        arena = Arena.ofShared();
        GgmlType t = GgmlType.valueOf(type);
        Codec c = Codecs.of(t);
        MemorySegment seg = arena.allocate(t.rowBytes(cols) * rows, 64);
        Random r = new Random(1);
        float[] row = new float[cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                row[j] = (float) r.nextGaussian() * 0.02f;
            }
            c.quantize(row, 0, cols, seg, i * t.rowBytes(cols));
        }
        backend = new CpuBackend(1, path.equals("native"));
        w = new Weight[] {backend.weight(new Tensor("w", t, new long[] {cols, rows}, seg))};
        x = backend.allocate("x", n, cols);
        MemorySegment xs = ((HostBuf) x).segment();
        for (long i = 0; i < (long) n * cols; i++) {
            xs.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextGaussian());
        }
        out = new Buf[] {backend.allocate("out", n, rows)};
    }

    @Benchmark
    public void matmul() {
        backend.ops().matmul(x, n, w, out);
    }

    @TearDown(Level.Trial)
    public void close() {
        backend.close();
        arena.close();
    }
}
