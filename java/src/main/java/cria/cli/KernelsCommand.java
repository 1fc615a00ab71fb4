// `cria kernels`: the CUDA kernel benchmark: each family checked against the ref backend, then timed against the device's ceilings.
package cria.cli;

import cria.CriaException;
import cria.backend.Backend;
import cria.backend.cuda.CudaBackend;
import cria.bench.KernelBench;
import cria.engine.Backends;
import cria.gguf.GgmlType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Needs a CUDA GPU: without one it says so in one line and exits 1. Every case runs once on fresh
 * random inputs and is compared with the ref backend (as the conformance tests compare); only a
 * case that passes is timed. Progress goes to stderr, the markdown table to stdout; a failed
 * check makes the exit code 1.
 */
@Command(name = "kernels", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Check each CUDA kernel family against the ref backend, then time it (median of CUDA-event timings, "
                + "inputs rotated past the L2 cache) and report GB/s or TFLOP/s and the fraction of the copy / bf16 GEMM ceilings "
                + "measured in the same run.",
            "Families: gemv, gemm, attention, flash, rmsnorm, ropekv, swiglu.",
            "Example: cria kernels --family gemv,gemm --types Q4_0,F16 --sizes 4096x4096,14336x4096 --json k.json --png k.png"})
final class KernelsCommand extends Verb {
    @Option(names = "--family", split = ",", paramLabel = "NAME", description = "families to run (default: all)")
    List<String> families;

    @Option(names = "--sizes", split = ",", paramLabel = "SIZE",
            description = "ROWSxCOLS for gemv and gemm (default 4096x4096,14336x4096,4096x14336); a count for the others: "
                    + "attention context (4096), flash prompt rows (512), rows of rmsnorm/ropekv/swiglu (1,512)")
    List<String> sizes;

    @Option(names = "--types", split = ",", paramLabel = "TYPE",
            description = "weight types of gemv and gemm (default: Q4_0,Q8_0,Q4_K,Q6_K,F16,BF16)")
    List<String> types;

    @Option(names = "--prompt", defaultValue = "512", paramLabel = "N", description = "prompt rows of gemm and flash (default: ${DEFAULT-VALUE})")
    int prompt;

    @Option(names = "--samples", defaultValue = "25", paramLabel = "N", description = "timed samples per case; the median is reported (default: ${DEFAULT-VALUE})")
    int samples;

    @Option(names = "--warmup", defaultValue = "5", paramLabel = "N", description = "untimed launches first (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--rotate", defaultValue = "256", paramLabel = "MiB",
            description = "weights and KV layers are copied until launches rotate over this much (default: ${DEFAULT-VALUE}), so L2 cannot flatter them")
    int rotateMib;

    @Option(names = "--seed", defaultValue = "1", paramLabel = "S", description = "random seed of the inputs (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--json", paramLabel = "FILE", description = "also write the results as JSON")
    Path json;

    @Option(names = "--md", paramLabel = "FILE", description = "also write the markdown table to a file")
    Path md;

    @Option(names = "--png", paramLabel = "FILE", description = "also draw the fraction of peak per kernel as a PNG bar chart")
    Path png;

    KernelBench.Options options() {
        Set<String> fam = new LinkedHashSet<>();
        for (String f : families == null ? KernelBench.FAMILIES : families) {
            String name = f.strip().toLowerCase(Locale.ROOT);
            if (!KernelBench.FAMILIES.contains(name)) {
                throw new CriaException("kernels: unknown family '" + f + "'; choose from " + String.join(", ", KernelBench.FAMILIES));
            }
            fam.add(name);
        }
        List<GgmlType> ts = new ArrayList<>();
        for (String t : types == null ? List.<String>of() : types) {
            try {
                ts.add(GgmlType.valueOf(t.strip().toUpperCase(Locale.ROOT)));
            } catch (IllegalArgumentException e) {
                throw new CriaException("kernels: unknown weight type '" + t + "' (e.g. Q4_0, Q8_0, Q4_K, Q6_K, F16, BF16)");
            }
        }
        List<String> sz = sizes == null ? List.of() : sizes;
        KernelBench.validateSizes(sz);
        if (prompt < 1 || samples < 1 || warmup < 0 || rotateMib < 0) {
            throw new CriaException("kernels: --prompt and --samples must be positive, --warmup and --rotate not negative");
        }
        return new KernelBench.Options(fam, sz, ts.isEmpty() ? KernelBench.DEFAULT_TYPES : ts, prompt, warmup, samples,
                (long) rotateMib << 20, seed);
    }

    /** The CUDA backend, or one line saying why there is none. */
    static CudaBackend openCuda() {
        Backend b;
        try {
            b = Backends.create("cuda", 0, null);
        } catch (CriaException e) {
            String why = e.getMessage().replaceFirst("^--backend cuda: ", "").replaceFirst("[;,]? (or )?use --backend cpu$", "");
            throw new CriaException("kernels needs a CUDA GPU: " + why);
        }
        return (CudaBackend) b;
    }

    @Override
    public Integer call() {
        KernelBench.Options o = options();
        for (Path p : new Path[] {md, json, png}) {
            if (p != null) { // before the minutes of measuring: a bad path is found now
                OutputFiles.check(p, p == md ? "--md" : p == json ? "--json" : "--png", OutputFiles.Kind.STREAM, true);
            }
        }
        try (KernelBench bench = new KernelBench(openCuda())) {
            err().println("device: " + bench.device());
            KernelBench.Peaks peaks = bench.measurePeaks();
            err().printf(Locale.ROOT, "ceilings: copy %.0f GB/s, bf16 GEMM %.0f TFLOP/s%n", peaks.copyGBs(), peaks.gemmTflops());
            List<KernelBench.Result> results = bench.run(o, peaks, r -> err().println(KernelReport.line(r)));
            String table = KernelReport.markdown(bench.device(), peaks, results);
            out().print(table);
            out().flush();
            write(md, "--md", table);
            write(json, "--json", KernelReport.json(bench.device(), peaks, results));
            if (png != null) {
                KernelReport.png(png, bench.device(), results);
            }
            long failed = results.stream().filter(r -> !r.ok()).count();
            if (failed > 0) {
                err().println("cria kernels: " + failed + " of " + results.size() + " checks against ref failed (see the table)");
                return 1;
            }
            return 0;
        }
    }

    /** Writes a report file; its folder is made if missing (a results folder is the usual target). */
    private static void write(Path file, String option, String text) {
        if (file != null) {
            OutputFiles.write(file, option, OutputFiles.Kind.STREAM, true, out -> out.write(text.getBytes(StandardCharsets.UTF_8)));
        }
    }
}
