// The kernel benchmark behind `cria kernels`: each kernel family checked against ref on fresh random inputs, then timed.
package cria.bench;

import cria.CriaException;
import cria.backend.cuda.CudaBackend;
import cria.gguf.GgmlType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Consumer;

/**
 * For every case (a family at a shape, {@link KernelCases}): one run compared with the ref backend,
 * and only when it passes, timing: warm-up launches, then {@link Options#samples} samples of a
 * batch of launches that rotates through the case's input copies, each sample timed with device
 * events ({@link Clock}); the median sample per launch is reported as GB/s (memory-bound families:
 * the bytes a launch must move) or TFLOP/s (gemm, flash), and as a fraction of the ceiling
 * measured in the same run ({@link Peaks}: a large device-to-device copy, a large bf16 GEMM
 * through cuBLAS).
 */
public final class KernelBench implements AutoCloseable {
    /** The families, in the order they run. */
    public static final List<String> FAMILIES = List.of("gemv", "gemm", "attention", "flash", "rmsnorm", "ropekv", "swiglu");

    /** Weight types of the product families by default. */
    public static final List<GgmlType> DEFAULT_TYPES = List.of(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K,
            GgmlType.F16, GgmlType.BF16);

    /** Times queued device work in milliseconds (device events on a GPU; a fake in tests). */
    public interface Clock {
        double millis(Runnable queue);
    }

    /** The ceilings of the device, measured in the same run: copy GB/s (read + written) and bf16 GEMM TFLOP/s. */
    public record Peaks(double copyGBs, double gemmTflops) {}

    /**
     * One case's outcome. {@code failure} is null when the check passed; then {@code medianMs}
     * (per launch), {@code rate} in {@code unit} and {@code peakFraction} are set (NaN when not timed).
     */
    public record Result(String family, String kernel, String shape, double relErr, String failure, double medianMs,
                         double rate, String unit, double peakFraction) {
        public boolean ok() {
            return failure == null;
        }
    }

    /**
     * What to run. {@code sizes}: "ROWSxCOLS" shapes for gemv and gemm, plain numbers for the
     * others (context length for attention, prompt rows for flash, rows for the row-wise ones);
     * families without a size of their kind use their defaults.
     */
    public record Options(Set<String> families, List<String> sizes, List<GgmlType> types, int promptRows, int warmup, int samples,
                          long rotateBytes, long seed) {
        public static Options defaults() {
            return new Options(Set.copyOf(FAMILIES), List.of(), DEFAULT_TYPES, 512, 5, 25, 256L << 20, 1);
        }
    }

    private final CudaBackend cuda;
    private final Clock clock;

    /** A benchmark on an open CUDA backend, timed with its device's events. */
    public KernelBench(CudaBackend cuda) {
        this(cuda, null);
    }

    /** With another clock (tests); null means the device's events. */
    KernelBench(CudaBackend cuda, Clock clock) {
        this.cuda = cuda;
        this.clock = clock != null ? clock : q -> cuda.gpu().time(q);
    }

    /** The device, in one line. */
    public String device() {
        return cuda.describe();
    }

    /** Measures the two ceilings (1 GiB copy; 8192^3 bf16 GEMM through cuBLAS, NaN without cuBLAS). */
    public Peaks measurePeaks() {
        double copy = CudaCeilings.copy(cuda.gpu(), 1L << 30, null);
        double gemm = CudaCeilings.gemm(cuda.gpu(), 8192, null);
        return new Peaks(copy, gemm);
    }

    static List<int[]> matrixSizes(List<String> sizes) {
        List<int[]> out = new ArrayList<>();
        for (String s : sizes) {
            String[] p = s.toLowerCase(Locale.ROOT).split("x");
            if (p.length == 2) {
                out.add(new int[] {Integer.parseInt(p[0].strip()), Integer.parseInt(p[1].strip())});
            }
        }
        return out.isEmpty() ? List.of(new int[] {4096, 4096}, new int[] {14336, 4096}, new int[] {4096, 14336}) : out;
    }

    static List<Integer> counts(List<String> sizes, List<Integer> dflt) {
        List<Integer> out = new ArrayList<>();
        for (String s : sizes) {
            if (s.strip().matches("\\d+")) {
                out.add(Integer.parseInt(s.strip()));
            }
        }
        return out.isEmpty() ? dflt : out;
    }

    /**
     * Checks the size list: every entry is ROWSxCOLS or a positive number.
     *
     * @throws CriaException naming the first bad entry
     */
    public static void validateSizes(List<String> sizes) {
        for (String s : sizes) {
            if (!s.strip().matches("\\d+(\\s*[xX]\\s*\\d+)?") || s.strip().matches("0+")) {
                throw new CriaException("--sizes: '" + s + "' is neither ROWSxCOLS (gemv, gemm) nor a positive count "
                        + "(attention context, flash prompt rows, rows of rmsnorm/ropekv/swiglu)");
            }
        }
    }

    /** Runs the chosen families; {@code each} sees every result as it comes. */
    public List<Result> run(Options o, Peaks peaks, Consumer<Result> each) {
        validateSizes(o.sizes());
        KernelCases cases = new KernelCases(cuda, o.seed(), o.rotateBytes());
        List<Result> results = new ArrayList<>();
        try {
            for (String family : FAMILIES) {
                if (!o.families().contains(family)) {
                    continue;
                }
                for (Builder b : builders(family, o, cases)) {
                    Result r = runOne(b, o, peaks);
                    if (r != null) {
                        results.add(r);
                        each.accept(r);
                    }
                }
            }
        } finally {
            cases.close();
        }
        return results;
    }

    private interface Builder {
        KernelCases.Case build();
    }

    private static List<Builder> builders(String family, Options o, KernelCases c) {
        List<Builder> out = new ArrayList<>();
        switch (family) {
            case "gemv" -> {
                for (GgmlType t : o.types()) {
                    for (int[] m : matrixSizes(o.sizes())) {
                        out.add(() -> c.gemv(t, m[0], m[1]));
                    }
                }
            }
            case "gemm" -> {
                for (GgmlType t : o.types()) {
                    for (int[] m : matrixSizes(o.sizes())) {
                        out.add(() -> c.gemm(t, m[0], m[1], o.promptRows()));
                    }
                }
            }
            case "attention" -> counts(o.sizes(), List.of(4096)).forEach(n -> out.add(() -> c.attention(n)));
            case "flash" -> counts(o.sizes(), List.of(o.promptRows())).forEach(n -> out.add(() -> c.flash(n)));
            case "rmsnorm" -> counts(o.sizes(), List.of(1, o.promptRows())).forEach(n -> out.add(() -> c.rmsnorm(n)));
            case "ropekv" -> counts(o.sizes(), List.of(1, o.promptRows())).forEach(n -> out.add(() -> c.ropekv(n)));
            case "swiglu" -> counts(o.sizes(), List.of(1, o.promptRows())).forEach(n -> out.add(() -> c.swiglu(n)));
            default -> throw new CriaException("unknown kernel family '" + family + "'; choose from " + String.join(", ", FAMILIES));
        }
        return out;
    }

    private Result runOne(Builder b, Options o, Peaks peaks) {
        KernelCases.Case c = b.build();
        if (c == null) {
            return null;  // the family cannot take this type at this shape (the ops fall back to another kernel)
        }
        try (c) {
            String bad = c.check();
            boolean compute = c.flops() > 0;
            String unit = compute ? "TFLOP/s" : "GB/s";
            if (bad != null) {
                return new Result(c.family, c.kernel, c.shape, c.relErr, bad, Double.NaN, Double.NaN, unit, Double.NaN);
            }
            double ms = time(c, o);
            double rate = compute ? c.flops() / (ms * 1e-3) / 1e12 : c.bytes() / (ms * 1e-3) / 1e9;
            double peak = compute ? peaks.gemmTflops() : peaks.copyGBs();
            return new Result(c.family, c.kernel, c.shape, c.relErr, null, ms, rate, unit, rate / peak);
        }
    }

    /** Median milliseconds per launch. */
    private double time(KernelCases.Case c, Options o) {
        int[] next = {1};  // launch index: 0 was the check
        double warm = clock.millis(() -> {
            for (int i = 0; i < Math.max(1, o.warmup()); i++) {
                c.launch(next[0]++);
            }
        }) / Math.max(1, o.warmup());
        // enough launches per sample to pass every input set and to last about half a millisecond
        int per = Math.max(c.sets(), (int) Math.min(1000, Math.ceil(0.5 / Math.max(warm, 1e-4))));
        double[] s = new double[Math.max(1, o.samples())];
        for (int k = 0; k < s.length; k++) {
            s[k] = clock.millis(() -> {
                for (int i = 0; i < per; i++) {
                    c.launch(next[0]++);
                }
            }) / per;
        }
        Arrays.sort(s);
        return s[s.length / 2];
    }

    @Override
    public void close() {
        cuda.close();
    }
}
