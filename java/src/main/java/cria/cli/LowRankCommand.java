// `cria lowrank`: block matrices replaced by two low-rank factors (plain SVD or SVD-LLM), or factors multiplied back (--dense).
package cria.cli;

import cria.CriaException;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.model.LlamaConfig;
import cria.model.LlamaWeights;
import cria.model.LowRankTensors;
import cria.optimize.Calibration;
import cria.optimize.LowRank;
import cria.optimize.LowRankGrams;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Factorizes a model with {@link LowRank}: every chosen matrix W (n_out × n_in) becomes
 * {@code B·A} at the rank the parameter budget allows, written as the factor tensors of
 * {@link LowRankTensors} (F32; {@code cria quantize} takes them further), or with
 * {@code --dense} as B·A itself. Given a model that is already factorized and {@code --dense}
 * alone, multiplies its factors back.
 */
@Command(name = "lowrank", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Replace a model's block matrices by low-rank factors: W (n_out x n_in)",
            "becomes B·A (A k x n_in, B n_out x k), k the largest multiple of --rank-step",
            "whose factors keep at most --keep of W's parameters. svd truncates W's SVD;",
            "svd-llm whitens W with the calibration inputs first (G = XᵀX = S·Sᵀ, SVD of",
            "W·S) and loses much less. Factors are written F32 as",
            "blk.N.<role>_lr_a.weight [n_in, k] and blk.N.<role>_lr_b.weight [k, n_out];",
            "Cria runs them on every backend as two products; 'cria quantize' takes them",
            "further. --dense writes B·A back as dense tensors (for other engines).",
            "Examples:",
            "  cria lowrank -m m.gguf --method svd-llm --keep 0.8 --calib c.txt -o lr.gguf",
            "  cria lowrank -m m.gguf --method svd --keep 0.6 --targets ffn_up -o lr.gguf",
            "  cria lowrank -m lr.gguf --dense -o dense.gguf     (factors multiplied back)"})
final class LowRankCommand extends Verb {

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL.gguf", description = "the model (any weight type Cria reads)")
    Path model;

    @Option(names = "--method", paramLabel = "M", description = "svd or svd-llm (needs --calib)")
    String method;

    @Option(names = "--keep", paramLabel = "P", description = "fraction of each chosen matrix's parameters to keep, 0 < P < 1 (e.g. 0.8)")
    Double keep;

    @Option(names = "--targets", paramLabel = "LIST", split = ",",
            description = "the matrices to factorize (default: all seven: attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down)")
    List<String> targets;

    @Option(names = "--calib", paramLabel = "TEXT", description = "calibration text for svd-llm (a few hundred KB of the kind of text the model sees)")
    Path calib;

    @Option(names = {"-c", "--ctx"}, paramLabel = "N", description = "calibration tokens per chunk (default: ${DEFAULT-VALUE})")
    int ctx = 512;

    @Option(names = "--chunks", paramLabel = "N", description = "calibrate on at most N chunks, 0 = all the text gives (default: 128, as cria prune)")
    int chunks = 128;

    @Option(names = "--backend", paramLabel = "B", description = "where calibration runs: cpu or ref (default: ${DEFAULT-VALUE})")
    String backend = "cpu";

    @Option(names = {"-t", "--threads"}, paramLabel = "N",
            description = "matrices factorized at once, and calibration threads (default: every core, ${DEFAULT-VALUE} here)")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--rank-step", paramLabel = "N",
            description = "ranks are multiples of N (default ${DEFAULT-VALUE}: B's rows, k values long, are then whole pairs of"
                    + " 32-value quant blocks, as the native CPU kernels want; 256 lets K-quants keep their type; smaller for tiny models)")
    int rankStep = 64;

    @Option(names = "--gram-memory", paramLabel = "MIB",
            description = "svd-llm: MiB of Gram matrices held at once; more layers than fit take more calibration passes"
                    + " (default: a third of the Java heap)")
    Long gramMemory;

    @Option(names = "--dense", description = "write B·A back as the dense tensors (F32) instead of the factors")
    boolean dense;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.gguf", description = "the model to write")
    Path output;

    @Override
    public Integer call() {
        if (threads < 1) {
            throw new CriaException("--threads must be at least 1, got " + threads);
        }
        OutputFiles.check(output, "-o", OutputFiles.Kind.FILE); // before any work: GgufWriter renames over it
        notTheInput();
        long t0 = System.nanoTime();
        try (GgufFile in = GgufFile.open(model)) {
            GgufTensorInfo emb = in.tensor("token_embd.weight");
            LlamaConfig config = LlamaConfig.from(in.metadata(), emb == null ? 0 : (int) Math.min(Integer.MAX_VALUE, emb.rows()));
            LlamaWeights.check(in, config); // a model Cria runs: names, shapes, types (factor pairs included)
            if (LowRankTensors.isFactorized(in)) {
                return densify(in, t0);
            }
            if (method == null || keep == null) {
                throw new CriaException("give --method (svd or svd-llm) and --keep (e.g. 0.8); see 'cria lowrank --help'");
            }
            LowRank.Method m = LowRank.Method.parse(method);
            if (m == LowRank.Method.SVD_LLM && calib == null) {
                throw new CriaException("--method svd-llm needs calibration text: --calib FILE (a few hundred KB of typical text)");
            }
            if (m == LowRank.Method.SVD && calib != null) {
                throw new CriaException("--calib is for --method svd-llm; plain svd uses no calibration");
            }
            if (gramMemory != null && (gramMemory < 1 || gramMemory > (1L << 40))) {
                throw new CriaException("--gram-memory " + gramMemory + ": give MiB, at least 1");
            }
            long budget = gramMemory != null ? gramMemory << 20 : Runtime.getRuntime().maxMemory() / 3;
            LowRank.Options o = new LowRank.Options(m, keep, targets == null ? LowRankTensors.ROLES : targets, rankStep, dense, threads,
                    budget);
            LowRank.Plan plan = LowRank.plan(in, config.layers(), o);
            if (plan.items().isEmpty()) {
                throw new CriaException("at --keep " + fmt(keep) + " no chosen matrix has a rank that is a multiple of --rank-step " + rankStep
                        + " and makes its factors smaller than it; use a smaller --rank-step or a larger --keep");
            }
            Calibration cal = null;
            try {
                LowRankGrams grams = null;
                int[][] cs = null;
                if (m == LowRank.Method.SVD_LLM) {
                    cal = Calibration.open(in, new Calibration.Options(backend, threads, ctx, chunks, false), err()::println);
                    cs = cal.chunks(calib);
                }
                for (String note : plan.notes()) {
                    err().println("cria lowrank: " + note);
                }
                err().println("cria lowrank: " + describe(plan, o));
                if (cs != null) {
                    long tokens = (long) cs.length * ctx;
                    err().printf(Locale.ROOT, "cria lowrank: calibration: %d chunks of %d tokens from %s%n", cs.length, ctx, calib);
                    int[] pass = {0};
                    grams = new LowRankGrams(cal, cs, products -> {
                        pass[0]++;
                        Progress p = new Progress(err(), "calibrate (pass " + pass[0] + ")", tokens, "tokens", Progress.stderrIsTerminal());
                        return n -> {
                            p.add(n);
                            if (p.done() >= tokens) {
                                p.finish();
                            }
                        };
                    });
                }
                long values = plan.items().stream().mapToLong(LowRank.Item::params).sum();
                Progress progress = new Progress(err(), "lowrank", values, "values", Progress.stderrIsTerminal());
                LowRank.write(in, plan, o, grams, output, (item, f, secs) -> {
                    progress.status(String.format(Locale.ROOT, "%s rank %d (%.1f s)", item.name(), item.rank(), secs));
                    progress.add(item.params());
                });
                progress.finish();
            } finally {
                if (cal != null) {
                    cal.close();
                }
            }
            out().printf(Locale.ROOT, "%s: %d matrices %s (%s, --keep %s: %.1f%% of their parameters), model %s -> %s parameters (%.1f%%), %s, %.1f s%n",
                    output, plan.items().size(), dense ? "factorized and multiplied back" : "factorized", m.label, fmt(keep),
                    100 * plan.kept(), Units.count(plan.modelBefore()), Units.count(dense ? plan.modelBefore() : plan.modelAfter()),
                    100.0 * (dense ? plan.modelBefore() : plan.modelAfter()) / plan.modelBefore(), Units.bytes(size(output)),
                    (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    /** A factorized input: only --dense makes sense (multiply the factors back). */
    private int densify(GgufFile in, long t0) {
        if (!dense || method != null || keep != null) {
            throw new CriaException(model + " is already factorized (" + LowRankTensors.firstFactor(in) + "); factorize the dense original,"
                    + " or give --dense alone to multiply the factors back");
        }
        int n = LowRank.densify(in, output);
        out().printf(Locale.ROOT, "%s: %d factorized matrices multiplied back (F32), %s, %.1f s%n", output, n, Units.bytes(size(output)),
                (System.nanoTime() - t0) / 1e9);
        return 0;
    }

    /** One line: how many matrices of which roles at which ranks, and the parameter counts. */
    private static String describe(LowRank.Plan plan, LowRank.Options o) {
        Map<String, List<Integer>> ranks = new LinkedHashMap<>();
        for (LowRank.Item it : plan.items()) {
            List<Integer> r = ranks.computeIfAbsent(it.role(), k -> new ArrayList<>());
            if (!r.contains(it.rank())) {
                r.add(it.rank());
            }
        }
        List<String> parts = new ArrayList<>();
        ranks.forEach((role, r) -> parts.add(role + " " + Arrays.toString(r.stream().mapToInt(Integer::intValue).toArray())
                .replace("[", "").replace("]", "")));
        return String.format(Locale.ROOT, "%d matrices by %s at rank %s; their parameters %s -> %s (%.1f%%), the model's %s -> %s (%.1f%%)",
                plan.items().size(), o.method().label, String.join(", ", parts), Units.count(plan.chosenBefore()),
                Units.count(plan.chosenAfter()), 100 * plan.kept(), Units.count(plan.modelBefore()), Units.count(plan.modelAfter()),
                100.0 * plan.modelAfter() / plan.modelBefore());
    }

    private void notTheInput() {
        try {
            if (Files.exists(output) && Files.exists(model) && Files.isSameFile(output, model)) {
                throw new CriaException(output + " is also the input; write the factorized model to another file");
            }
        } catch (IOException e) {
            // cannot tell: opening the input or writing reports the real problem
        }
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return 0;
        }
    }

    private static String fmt(double d) {
        String s = String.format(Locale.ROOT, "%.4f", d);
        return s.replaceAll("0+$", "").replaceAll("\\.$", "");
    }
}
