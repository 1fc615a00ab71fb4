// `cria bench`: llama-bench's tests (ppN prompt processing, tgN generation) and its table and JSON fields.
package cria.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.engine.Model;
import cria.engine.Session;
import java.nio.file.Files;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Measures what llama-bench measures, the way it measures it: ppN evaluates N random tokens
 * (BOS first) in batches from an empty cache; tgN evaluates N tokens one at a time from an
 * empty cache (no sampling). Untimed warm-up runs precede each test (at least one, and for at
 * least --warmup seconds, so that what is timed is the steady state, not the JIT's start-up); each is repeated -r times
 * and reported as mean ± standard deviation of tokens per second.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Benchmark prompt processing (ppN) and generation (tgN) as llama-bench does; same table, same JSON fields.",
            "With --lora the adapters run unmerged (their cost included); the output says which were applied.",
            "Example: cria bench -m model.gguf -p 128 -n 32 -r 3 -t 2",
            "         cria bench -m model.gguf --lora adapter.gguf -p 128 -n 32",
            "         cria bench -m model.gguf -o json > cria.json"})
final class BenchCommand extends Verb {
    @Mixin
    ModelArgs modelArgs;

    @Option(names = {"-p", "--n-prompt"}, defaultValue = "128", paramLabel = "N", split = ",",
            description = "prompt lengths to test, comma-separated; 0 = none (default: ${DEFAULT-VALUE})")
    int[] prompts;

    @Option(names = {"-n", "--n-gen"}, defaultValue = "32", paramLabel = "N", split = ",",
            description = "generation lengths to test, comma-separated; 0 = none (default: ${DEFAULT-VALUE})")
    int[] gens;

    @Option(names = {"-r", "--repetitions"}, defaultValue = "3", paramLabel = "N", description = "repetitions of each test (default: ${DEFAULT-VALUE})")
    int reps;

    @Option(names = "--warmup", defaultValue = "5", paramLabel = "SECONDS",
            description = {"untimed warm-up runs of each test until this many seconds have passed (at least one run; default: ${DEFAULT-VALUE}):",
                "decoding runs slower in its first seconds, most likely while the JIT compiles it (tg32 of a 0.5B model ran 69-85 t/s",
                "after one warm-up run, mostly 85-89 after 5 s), so llama-bench's single warm-up run would time the start-up; 0 = one run"})
    double warmupSeconds;

    @Option(names = {"-o", "--output"}, defaultValue = "md", paramLabel = "FMT", description = "md, csv or json (default: ${DEFAULT-VALUE})")
    String format;

    @Option(names = "--compare", paramLabel = "LLAMA.json", split = ",",
            description = "llama-bench -o json results to set beside these (comma-separated files are averaged)")
    List<java.nio.file.Path> compare;

    @Option(names = "--from", paramLabel = "CRIA.json", split = ",",
            description = "with --compare: take Cria's numbers from earlier 'cria bench -o json' runs (comma-separated files"
                    + " are averaged) instead of measuring now, so that a chart shows runs made side by side")
    List<java.nio.file.Path> from;

    @Option(names = "--png", paramLabel = "FILE", description = "with --compare: also draw the comparison as a PNG bar chart")
    java.nio.file.Path png;

    record Result(int nPrompt, int nGen, long[] samplesNs) {
        int tokens() {
            return nPrompt + nGen;
        }

        double[] ts() {
            double[] t = new double[samplesNs.length];
            for (int i = 0; i < t.length; i++) {
                t[i] = tokens() * 1e9 / samplesNs[i];
            }
            return t;
        }

        static double mean(double[] a) {
            double s = 0;
            for (double v : a) {
                s += v;
            }
            return s / a.length;
        }

        static double stdev(double[] a) {
            if (a.length < 2) {
                return 0;
            }
            double m = mean(a);
            double s = 0;
            for (double v : a) {
                s += (v - m) * (v - m);
            }
            return Math.sqrt(s / (a.length - 1));
        }
    }

    /** The session the tests run in: a context as long as the longest test (-p and -n are checked by its memory check). */
    private Session session(Model model, int ctx) {
        try {
            return model.newSession(modelArgs.sessionOptions().withContextLength(ctx));
        } catch (CriaException e) {
            throw new CriaException("a test of " + ctx + " tokens (-p, -n, -c): " + e.getMessage(), e);
        }
    }

    @Override
    public Integer call() {
        if (!List.of("md", "csv", "json").contains(format)) {
            throw new CriaException("-o must be md, csv or json, got '" + format + "'");
        }
        if (!(warmupSeconds >= 0 && warmupSeconds <= 3600)) {
            throw new CriaException("--warmup must be between 0 and 3600 seconds, got " + warmupSeconds);
        }
        if (reps < 1) {
            throw new CriaException("-r must be at least 1");
        }
        for (int p : prompts) {
            if (p < 0) {
                throw new CriaException("-p must be 0 (none) or a positive prompt length, got " + p);
            }
        }
        for (int g : gens) {
            if (g < 0) {
                throw new CriaException("-n must be 0 (none) or a positive generation length, got " + g);
            }
        }
        if (png != null) {
            OutputFiles.check(png, "--png", OutputFiles.Kind.STREAM); // before the measuring, not after
        }
        List<int[]> tests = new ArrayList<>();
        for (int p : prompts) {
            if (p > 0) {
                tests.add(new int[] {p, 0});
            }
        }
        for (int g : gens) {
            if (g > 0) {
                tests.add(new int[] {0, g});
            }
        }
        if (tests.isEmpty()) {
            throw new CriaException("nothing to test: give -p N and/or -n N above 0");
        }
        int longest = 1;
        for (int[] t : tests) {
            longest = Math.max(longest, t[0] + t[1]);
        }
        if (from != null && !from.isEmpty()) {
            if (compare == null || compare.isEmpty()) {
                throw new CriaException("--from needs --compare (it only sets earlier results beside llama.cpp's)");
            }
            java.util.Map<String, Double> mine = new java.util.LinkedHashMap<>();
            BenchCompare.read(from).forEach((k, v) -> mine.put(k, BenchCompare.mean(v)));
            BenchCompare.report(out(), title(), mine, BenchCompare.read(compare), png);
            return 0;
        }
        List<Result> results = new ArrayList<>();
        try (Model model = Model.load(modelArgs.model, modelArgs.modelOptions(), err()::println);
             Session s = session(model, Math.max(modelArgs.ctx, longest))) {
            if (!modelArgs.loras.isEmpty()) {
                err().println("cria: LoRA adapters applied (unmerged): " + modelArgs.loraSummary());
            }
            Random rnd = new Random(42);
            for (int[] t : tests) {
                Result res = measure(s, t[0], t[1], reps, (long) (warmupSeconds * 1e9), rnd, null);
                results.add(res);
                if (format.equals("md")) {
                    err().printf(Locale.ROOT, "cria: %s%d: %.2f t/s%n", t[0] > 0 ? "pp" : "tg", t[0] > 0 ? t[0] : t[1], Result.mean(res.ts()));
                }
            }
            print(model, results);
            if (compare != null && !compare.isEmpty()) {
                java.util.Map<String, Double> mine = new java.util.LinkedHashMap<>();
                for (Result r : results) {
                    mine.put(r.nPrompt() > 0 ? "pp" + r.nPrompt() : "tg" + r.nGen(), Result.mean(r.ts()));
                }
                BenchCompare.report(format.equals("json") ? err() : out(), title(), mine, BenchCompare.read(compare), png);
            }
        }
        return 0;
    }

    private String title() {
        return modelArgs.model.getFileName() + ", "
                + modelArgs.effectiveThreads() + " threads";
    }

    /**
     * One llama-bench test in {@code s}: ppN when {@code nPrompt > 0}, else tgN with {@code nGen};
     * one untimed warm-up run, then {@code reps} timed ones, each from an empty cache. Random
     * token ids come from {@code rnd}; BOS (when the model has a tokenizer) leads. {@code done}
     * (may be null) is told the tokens of each run as it ends, for a progress bar.
     */
    static Result measure(Session s, int nPrompt, int nGen, int reps, Random rnd, java.util.function.LongConsumer done) {
        return measure(s, nPrompt, nGen, reps, 0, rnd, done);
    }

    /**
     * As {@link #measure(Session, int, int, int, Random, java.util.function.LongConsumer)}, with
     * untimed warm-up runs repeated until {@code warmupNanos} have passed (at least one), so that a
     * test lasting milliseconds is not timed on code the JIT has not compiled yet.
     */
    static Result measure(Session s, int nPrompt, int nGen, int reps, long warmupNanos, Random rnd, java.util.function.LongConsumer done) {
        Model model = s.model();
        int vocab = model.config().vocab();
        int bos = model.hasTokenizer() ? model.tokenizer().bos() : -1;
        long[] samples = new long[reps];
        long warm = 0;
        for (int r = -1; r < reps; r++) { // r = -1: warm-up
            s.reset();
            long ns = nPrompt > 0 ? prompt(s, nPrompt, vocab, bos, rnd) : generate(s, nGen, vocab, bos, rnd);
            if (r >= 0) {
                samples[r] = ns;
            } else {
                warm += ns;
                if (warm < warmupNanos) {
                    r--; // another warm-up run
                    continue;
                }
            }
            if (done != null) {
                done.accept(nPrompt + nGen);
            }
        }
        return new Result(nPrompt, nGen, samples);
    }

    private static long prompt(Session s, int n, int vocab, int bos, Random rnd) {
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = rnd.nextInt(vocab);
        }
        if (bos >= 0) {
            tokens[0] = bos;
        }
        long t0 = System.nanoTime();
        s.eval(tokens);
        return System.nanoTime() - t0;
    }

    private static long generate(Session s, int n, int vocab, int bos, Random rnd) {
        int[] one = {bos >= 0 ? bos : rnd.nextInt(vocab)};
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            s.eval(one);
            one[0] = rnd.nextInt(vocab);
        }
        return System.nanoTime() - t0;
    }

    private void print(Model model, List<Result> results) {
        String modelName = modelArgs.model.getFileName().toString();
        long size = model.file().fileSize();
        long params = 0;
        for (var t : model.file().tensors()) {
            params += t.elements();
        }
        String backend = model.backend().name().toUpperCase(Locale.ROOT);
        int threads = modelArgs.effectiveThreads();
        switch (format) {
            case "json" -> {
                ArrayNode arr = Json.MAPPER.createArrayNode();
                for (Result r : results) {
                    ObjectNode o = arr.addObject();
                    o.put("build_commit", Main.class.getPackage().getImplementationVersion() == null ? "dev" : Main.class.getPackage().getImplementationVersion());
                    o.put("build_number", 0);
                    o.put("cpu_info", cpuInfo());
                    o.put("gpu_info", "");
                    o.put("backends", backend);
                    o.put("model_filename", modelArgs.model.toString());
                    o.put("model_type", model.config().arch() + " " + Units.count(params));
                    o.put("model_size", size);
                    o.put("model_n_params", params);
                    o.put("n_batch", modelArgs.batchSize);
                    o.put("n_ubatch", modelArgs.batchSize);
                    o.put("n_threads", threads);
                    o.put("type_k", modelArgs.kvType.name().toLowerCase(Locale.ROOT));
                    o.put("type_v", modelArgs.kvType.name().toLowerCase(Locale.ROOT));
                    o.put("use_mmap", true);
                    o.put("flash_attn", false);
                    if (!modelArgs.loras.isEmpty()) {
                        o.put("lora", modelArgs.loraSummary());  // not a llama-bench field: only when adapters ran
                    }
                    o.put("n_prompt", r.nPrompt());
                    o.put("n_gen", r.nGen());
                    o.put("n_depth", 0);
                    o.put("test_time", Instant.now().toString());
                    double[] ts = r.ts();
                    double[] ns = new double[r.samplesNs().length];
                    for (int i = 0; i < ns.length; i++) {
                        ns[i] = r.samplesNs()[i];
                    }
                    o.put("avg_ns", (long) Result.mean(ns));
                    o.put("stddev_ns", (long) Result.stdev(ns));
                    o.put("avg_ts", Result.mean(ts));
                    o.put("stddev_ts", Result.stdev(ts));
                    ArrayNode sn = o.putArray("samples_ns");
                    for (long v : r.samplesNs()) {
                        sn.add(v);
                    }
                    ArrayNode st = o.putArray("samples_ts");
                    for (double v : ts) {
                        st.add(v);
                    }
                }
                out().println(Json.write(arr));
            }
            case "csv" -> {
                out().println("model_filename,model_size,model_n_params,backends,n_threads,n_prompt,n_gen,avg_ts,stddev_ts");
                for (Result r : results) {
                    out().printf(Locale.ROOT, "%s,%d,%d,%s,%d,%d,%d,%.6f,%.6f%n", modelName, size, params, backend, threads,
                            r.nPrompt(), r.nGen(), Result.mean(r.ts()), Result.stdev(r.ts()));
                }
            }
            default -> {
                out().println("| model                          |       size |     params | backend    | threads |            test |                  t/s |");
                out().println("| ------------------------------ | ---------: | ---------: | ---------- | ------: | --------------: | -------------------: |");
                for (Result r : results) {
                    String test = r.nPrompt() > 0 ? "pp" + r.nPrompt() : "tg" + r.nGen();
                    out().printf(Locale.ROOT, "| %-30s | %10s | %10s | %-10s | %7d | %15s | %20s |%n", trim(modelName, 30),
                            Units.bytes(size).replace("i", "i"), Units.count(params), backend, threads, test,
                            String.format(Locale.ROOT, "%.2f ± %.2f", Result.mean(r.ts()), Result.stdev(r.ts())));
                }
                if (!modelArgs.loras.isEmpty()) {
                    out().println();
                    out().println("LoRA adapters applied (unmerged): " + modelArgs.loraSummary());
                }
            }
        }
        out().flush();
    }

    private static String trim(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 3) + "...";
    }

    private static String cpuInfo() {
        try {
            for (String line : Files.readAllLines(java.nio.file.Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (Exception e) {
            // not Linux: leave it out
        }
        return System.getProperty("os.arch");
    }
}
