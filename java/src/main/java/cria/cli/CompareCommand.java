// `cria compare`: a base model and its variants (quantized, pruned, factorized) side by side: size, perplexity, KL divergence from the base, top-1 agreement, speed.
package cria.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.backend.KvCache;
import cria.engine.Model;
import cria.engine.ModelOptions;
import cria.engine.Session;
import cria.engine.SessionOptions;
import cria.gguf.GgufFile;
import cria.optimize.CompareBaseFile;
import cria.optimize.CompareReport;
import cria.optimize.CompareStats;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * Scores every model on the same chunks of a text, the way {@code cria perplexity} does, and
 * compares each one's next-token distributions with the base's at every scored position, as
 * {@code llama-perplexity --kl-divergence} does. The models run one at a time: the base's logits
 * at the scored positions go to a scratch file (tokens × vocabulary × 4 bytes, in --tmp) that each
 * variant's pass reads back in order, so memory holds one model and one row of logits at a time.
 * After its quality pass each model is timed as {@code cria bench} times it (ppN, tgN).
 */
@Command(name = "compare", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Compare a base model with its variants (quantized, pruned, factorized) on a",
            "text: file size, parameters, perplexity, KL divergence from the base's next-",
            "token distributions (mean, 99th percentile) and top-1 agreement with the base,",
            "as llama-perplexity --kl-divergence reports them, and pp/tg speed as cria",
            "bench measures it. Prints a markdown table; --charts draws perplexity and",
            "speed against file size; --json keeps every number. Models run one at a time;",
            "the base's logits wait in a scratch file (scored tokens x vocabulary x 4",
            "bytes).",
            "Example: cria compare m-F16.gguf m-Q8_0.gguf m-Q4_K_M.gguf -f wiki.test.raw \\",
            "           -c 512 --charts out/compare",
            "         cria compare base.gguf base-Q4_0.gguf -f text.txt -c 128 --no-speed"})
final class CompareCommand extends Verb {
    @Parameters(index = "0", paramLabel = "BASE.gguf", description = "the reference model (its distributions are the targets)")
    Path base;

    @Parameters(index = "1..*", arity = "1..*", paramLabel = "VARIANT.gguf",
            description = "the models to compare with it; they must share its vocabulary")
    List<Path> variants;

    @Option(names = {"-f", "--file"}, required = true, paramLabel = "TEXT", description = "the text to score")
    Path file;

    @Option(names = {"-c", "--ctx"}, defaultValue = "512", paramLabel = "N",
            description = "tokens per chunk; the second half of each is scored (default: ${DEFAULT-VALUE}, as cria perplexity)")
    int ctx;

    @Option(names = "--chunks", defaultValue = "-1", paramLabel = "N", description = "score at most N chunks (default: all)")
    int maxChunks;

    @Option(names = {"-b", "--batch-size"}, defaultValue = "256", paramLabel = "N",
            description = "prompt tokens per forward step (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "B",
            description = "auto (CUDA when usable, else cpu), cpu, ref or cuda; default: ${DEFAULT-VALUE}")
    String backend;

    @Option(names = {"-t", "--threads"}, defaultValue = "0", paramLabel = "N", description = "CPU threads (default: one per core)")
    int threads;

    @Option(names = "--kv-type", defaultValue = "F16", paramLabel = "T", description = "KV cache type: F16 or F32 (default: ${DEFAULT-VALUE})")
    KvCache.Type kvType;

    @Option(names = "--no-speed", description = "skip the speed tests")
    boolean noSpeed;

    @Option(names = {"-p", "--pp"}, defaultValue = "128", paramLabel = "N", description = "prompt-processing test length, 0 = none (default: ${DEFAULT-VALUE})")
    int pp;

    @Option(names = {"-n", "--tg"}, defaultValue = "32", paramLabel = "N", description = "generation test length, 0 = none (default: ${DEFAULT-VALUE})")
    int tg;

    @Option(names = {"-r", "--reps"}, defaultValue = "3", paramLabel = "N", description = "timed repetitions of each speed test (default: ${DEFAULT-VALUE})")
    int reps;

    @Option(names = "--charts", paramLabel = "PREFIX",
            description = "write PREFIX-ppl.png and PREFIX-speed.png (in a folder PREFIX: compare-ppl.png, compare-speed.png)")
    Path charts;

    @Option(names = "--json", paramLabel = "FILE", description = "also write every number (and the settings) as JSON")
    Path json;

    @Option(names = "--tmp", paramLabel = "DIR", description = "folder for the scratch file of the base's logits (default: the system's temp folder)")
    Path tmp;

    @Option(names = {"-v", "--verbose"}, description = "log model and backend details on stderr")
    boolean verbose;

    /** Untimed warm-up per speed test: small models' tests last milliseconds, too short to time on code not yet compiled. */
    private static final long WARMUP_NANOS = 500_000_000L;

    /** Whether the decode path has run once in this JVM (see the first speed test). */
    private boolean warmedUp;

    @Override
    public Integer call() {
        checkOptions();
        List<Path> models = new ArrayList<>();
        models.add(base);
        models.addAll(variants);
        List<CompareReport.ModelFacts> facts = checkFiles(models);
        if (json != null) {
            OutputFiles.check(json, "--json", OutputFiles.Kind.STREAM);
        }
        if (charts != null) {
            OutputFiles.check(CompareCharts.pplPath(charts), "--charts", OutputFiles.Kind.FILE);
            OutputFiles.check(CompareCharts.speedPath(charts), "--charts", OutputFiles.Kind.FILE);
        }
        String text = TextChunks.read(file);
        ModelOptions mo = new ModelOptions(backend, threads, verbose);
        int ppN = noSpeed ? 0 : pp;
        int tgN = noSpeed ? 0 : tg;
        List<CompareReport.Row> rows = new ArrayList<>();
        TextChunks chunks;
        String backendName;
        Progress progress;
        CompareBaseFile baseLogits = null;
        try {
            // the base first: it fixes the chunks and fills the scratch file; then each variant alone
            try (Model first = Model.load(base, mo, err()::println)) {
                chunks = TextChunks.of(first.tokenizer(), text, file, ctx, maxChunks);
                if (chunks.count() < 1) {
                    throw new CriaException("--chunks " + maxChunks + " leaves nothing to score; give at least 1");
                }
                backendName = first.backend().name();
                long perModel = (long) chunks.count() * ctx + (long) (reps + 1) * (ppN + tgN);
                progress = new Progress(err(), "compare", perModel * models.size(), "tokens", Progress.stderrIsTerminal());
                Path dir = tmp != null ? tmp : Path.of(System.getProperty("java.io.tmpdir"));
                baseLogits = CompareBaseFile.create(dir, chunks.scored(), first.config().vocab());
                long scratch = CompareBaseFile.bytesFor(chunks.scored(), first.config().vocab());
                if (verbose || scratch >= (1L << 30)) {
                    err().printf(Locale.ROOT, "cria: the base's logits at %d scored positions take %.1f MiB of scratch space in %s%n",
                            chunks.scored(), scratch / 1048576.0, dir);
                }
                progress.status(base.getFileName().toString());
                rows.add(run(first, true, baseLogits, chunks, facts.get(0), progress));
            }
            for (int m = 1; m < models.size(); m++) {
                progress.status(models.get(m).getFileName().toString());
                try (Model model = Model.load(models.get(m), mo, verbose ? err()::println : null)) {
                    rows.add(run(model, false, baseLogits, chunks, facts.get(m), progress));
                }
            }
        } finally {
            if (baseLogits != null) {
                baseLogits.close();
            }
        }
        progress.finish();
        out().print(CompareReport.markdown(rows, ppN, tgN));
        out().flush();
        String title = String.format(Locale.ROOT, "%s, %d chunks of %d tokens", file.getFileName(), chunks.count(), ctx);
        if (charts != null) {
            CompareCharts.writePerplexity(CompareCharts.pplPath(charts), "Perplexity against size (" + title + ")", rows);
            if (ppN > 0 || tgN > 0) {
                CompareCharts.writeSpeed(CompareCharts.speedPath(charts), "Speed against size (" + backendName + ", "
                        + threadsText() + ")", rows, ppN, tgN);
            } else {
                err().println("cria: no speed chart (--no-speed)");
            }
        }
        if (json != null) {
            writeJson(rows, chunks, backendName, ppN, tgN);
        }
        return 0;
    }

    private void checkOptions() {
        TextChunks.checkCtx(ctx);
        if (batchSize <= 0) {
            throw new CriaException("--batch-size must be positive, got " + batchSize);
        }
        if (threads < 0) {
            throw new CriaException("--threads must be 0 (all cores) or positive, got " + threads);
        }
        if (!noSpeed) {
            if (reps < 1) {
                throw new CriaException("--reps must be at least 1, got " + reps);
            }
            if (pp < 0 || tg < 0) {
                throw new CriaException("--pp and --tg must be 0 (none) or positive, got " + pp + " and " + tg);
            }
            if (pp == 0 && tg == 0) {
                throw new CriaException("--pp 0 --tg 0 leaves no speed test; use --no-speed to skip them");
            }
        }
    }

    /**
     * Opens every file's header before any model runs: a missing or broken file, or a variant
     * whose vocabulary is not the base's, is a one-line error before minutes are spent. Returns
     * each file's facts for the report.
     */
    private static List<CompareReport.ModelFacts> checkFiles(List<Path> models) {
        List<CompareReport.ModelFacts> facts = new ArrayList<>();
        String[] baseTokens = null;
        long baseRows = -1;
        for (Path p : models) {
            try (GgufFile f = GgufFile.open(p)) {
                String[] tokens = f.metadata().strings("tokenizer.ggml.tokens").orElse(null);
                var emb = f.tensor("token_embd.weight");
                long rows = emb == null ? -1 : emb.rows();
                if (tokens == null) {
                    throw new CriaException(p + ": the file has no vocabulary (tokenizer.ggml.tokens); compare needs one to tokenize the text");
                }
                if (baseTokens == null) {
                    baseTokens = tokens;
                    baseRows = rows;
                } else {
                    String diff = vocabularyDifference(baseTokens, baseRows, tokens, rows);
                    if (diff != null) {
                        throw new CriaException(p + ": its vocabulary differs from " + models.get(0).getFileName() + "'s (" + diff
                                + "); KL divergence needs the same vocabulary");
                    }
                }
                facts.add(CompareReport.facts(f));
            }
        }
        return facts;
    }

    /** Null when the two vocabularies are the same token list with as many embedding rows; else what differs. */
    static String vocabularyDifference(String[] a, long aRows, String[] b, long bRows) {
        if (a.length != b.length) {
            return a.length + " vs " + b.length + " tokens";
        }
        if (aRows != bRows) {
            return aRows + " vs " + bRows + " embedding rows";
        }
        int i = Arrays.mismatch(a, b);
        return i < 0 ? null : "token " + i + " is " + cria.gguf.GgufValue.quote(a[i]) + " vs " + cria.gguf.GgufValue.quote(b[i]);
    }

    /** One model's quality pass against the base's logits (written when {@code isBase}) and its speed tests. */
    private CompareReport.Row run(Model model, boolean isBase, CompareBaseFile baseLogits, TextChunks chunks, CompareReport.ModelFacts facts,
                                  Progress progress) {
        int vocab = model.config().vocab();
        CompareStats stats = new CompareStats(chunks.scored());
        SessionOptions so = SessionOptions.defaults().withKvType(kvType);
        try (Session s = model.newSession(so.withContextLength(ctx).withBatchSize(Math.min(batchSize, ctx)).withAllLogits(true))) {
            if (isBase) {
                for (int c = 0; c < chunks.count(); c++) {
                    chunks.eval(s, c, (k, logits, target) -> {
                        baseLogits.write(logits);
                        stats.add(logits, logits, vocab, target);
                    });
                    progress.add(ctx);
                }
            } else {
                baseLogits.rewind();
                for (int c = 0; c < chunks.count(); c++) {
                    chunks.eval(s, c, (k, logits, target) -> stats.add(baseLogits.next(), logits, vocab, target));
                    progress.add(ctx);
                }
            }
        }
        double[] ppS = {Double.NaN, Double.NaN};
        double[] tgS = {Double.NaN, Double.NaN};
        if (!noSpeed) {
            int longest = Math.max(pp, tg);
            Session s;
            try {
                s = model.newSession(so.withContextLength(longest).withBatchSize(batchSize));
            } catch (CriaException e) {
                throw new CriaException("a speed test of " + longest + " tokens (--pp, --tg): " + e.getMessage(), e);
            }
            try (s) {
                Random rnd = new Random(42);
                if (!warmedUp) {
                    // the first model timed would otherwise pay for compiling the whole decode path (a
                    // tiny model's base row came out several times slower than its own copy): one
                    // untimed round of both tests first, on whichever model comes first
                    BenchCommand.measure(s, Math.max(pp, 1), 0, 1, 4 * WARMUP_NANOS, new Random(7), null);
                    BenchCommand.measure(s, 0, Math.max(tg, 1), 1, 4 * WARMUP_NANOS, new Random(7), null);
                    warmedUp = true;
                }
                if (pp > 0) {
                    ppS = meanSd(BenchCommand.measure(s, pp, 0, reps, WARMUP_NANOS, rnd, progress::add));
                }
                if (tg > 0) {
                    tgS = meanSd(BenchCommand.measure(s, 0, tg, reps, WARMUP_NANOS, rnd, progress::add));
                }
            }
        }
        String name = model.file().path().getFileName().toString();
        return CompareReport.Row.of(name, facts, stats, ppS[0], ppS[1], tgS[0], tgS[1]);
    }

    private String threadsText() {
        int n = cria.engine.Backends.cpuThreadCount(threads);
        return n + (n == 1 ? " thread" : " threads");
    }

    private static double[] meanSd(BenchCommand.Result r) {
        double[] ts = r.ts();
        return new double[] {BenchCommand.Result.mean(ts), BenchCommand.Result.stdev(ts)};
    }

    private void writeJson(List<CompareReport.Row> rows, TextChunks chunks, String backendName, int ppN, int tgN) {
        ObjectNode root = Json.MAPPER.createObjectNode();
        root.put("text", file.toString());
        root.put("ctx", ctx);
        root.put("chunks", chunks.count());
        root.put("scored_tokens", chunks.scored());
        root.put("backend", backendName);
        root.put("threads", cria.engine.Backends.cpuThreadCount(threads));
        root.put("n_prompt", ppN);
        root.put("n_gen", tgN);
        root.put("repetitions", noSpeed ? 0 : reps);
        ArrayNode arr = root.putArray("models");
        for (CompareReport.Row r : rows) {
            ObjectNode o = arr.addObject();
            o.put("model", r.name());
            o.put("type", r.facts().type());
            o.put("size_bytes", r.facts().fileBytes());
            o.put("params", r.facts().params());
            o.put("nonzero_params", r.facts().nonzero());
            o.put("ppl", r.ppl());
            o.put("ppl_error", r.pplError());
            o.put("ppl_ratio", r.pplRatio());
            o.put("kld_mean", r.meanKld());
            o.put("kld_mean_error", r.meanKldError());
            o.put("kld_p99", r.kldP99());
            o.put("kld_max", r.kldMax());
            o.put("same_top", r.sameTop());
            o.put("delta_p_mean", r.meanPDiff());
            o.put("delta_p_rms", r.rmsPDiff());
            o.put("tokens", r.tokens());
            putSpeed(o, "pp_ts", r.ppTs());
            putSpeed(o, "pp_stddev_ts", r.ppSd());
            putSpeed(o, "tg_ts", r.tgTs());
            putSpeed(o, "tg_stddev_ts", r.tgSd());
        }
        String body = Json.write(root) + "\n";
        OutputFiles.write(json, "--json", OutputFiles.Kind.STREAM, o -> o.write(body.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }

    private static void putSpeed(ObjectNode o, String key, double v) {
        if (Double.isNaN(v)) {
            o.putNull(key);
        } else {
            o.put(key, v);
        }
    }
}
