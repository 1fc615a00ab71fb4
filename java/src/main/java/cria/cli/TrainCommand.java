// `cria train`: trains a Llama model (from scratch or from a model's weights) on text, and writes a GGUF that Cria and llama.cpp run.
package cria.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.backend.Backend;
import cria.backend.TrainOps;
import cria.engine.Backends;
import cria.gguf.GgufFile;
import cria.gguf.Metadata;
import cria.model.LlamaConfig;
import cria.tokenizer.Tokenizer;
import cria.tokenizer.TrainedVocab;
import cria.tokenizer.VocabTrainer;
import cria.train.Checkpoint;
import cria.train.ModelExport;
import cria.train.Params;
import cria.train.Schedule;
import cria.train.TokenData;
import cria.train.TrainGraph;
import cria.train.TrainOptions;
import cria.train.Trainer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Trains a model. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train a Llama model on text, on the CPU: from scratch (a shape and a vocabulary it trains itself) or from a",
            "model's weights (--init, full fine-tuning). Prints a progress line on stderr, evaluates on held-out text, keeps",
            "checkpoints, and writes a GGUF that Cria and llama.cpp run. The recipe is exact (README, \"Training\").",
            "Example: cria train --data stories.txt --vocab-size 512 --dim 64 --layers 5 --heads 8 --kv-heads 4 --ffn 172 \\",
            "           --ctx 256 --batch 32 --steps 2000 --lr 1e-3 --warmup 100 --schedule cosine --min-lr 1e-4 -o tiny.gguf"})
final class TrainCommand extends Verb {
    @Option(names = "--data", required = true, paramLabel = "FILE", description = "training text: one document per line, or JSONL of {\"text\": ...}")
    Path data;

    @Option(names = "--val", paramLabel = "FILE", description = "validation text (default: the last --val-split of --data's documents)")
    Path val;

    @Option(names = "--val-split", defaultValue = "0.05", paramLabel = "F", description = "share of documents held out for validation (default: ${DEFAULT-VALUE})")
    double valSplit;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "the GGUF to write")
    Path output;

    @Option(names = "--type", defaultValue = "F32", paramLabel = "TYPE", description = "type of the written model: F32, F16, Q8_0, Q4_K_M, ... (default: ${DEFAULT-VALUE})")
    String type;

    // ---- the model
    @Option(names = "--init", paramLabel = "MODEL.gguf", description = "start from this model's weights and vocabulary (F32/F16/BF16) instead of random ones")
    Path init;

    @Option(names = "--vocab-size", paramLabel = "N", description = "train a SentencePiece-style BPE vocabulary of N tokens on the data (default: 512 unless --vocab or --init)")
    Integer vocabSize;

    @Option(names = "--mixed-scripts", description = "let vocabulary pieces mix Unicode scripts (e.g. '▁said,'): better compression, fewer shared word tokens")
    boolean mixedScripts;

    @Option(names = "--vocab", paramLabel = "MODEL.gguf", description = "take the vocabulary of this GGUF instead of training one")
    Path vocab;

    @Option(names = "--dim", defaultValue = "64", paramLabel = "N", description = "embedding width (default: ${DEFAULT-VALUE})")
    int dim;

    @Option(names = "--layers", defaultValue = "5", paramLabel = "N", description = "transformer blocks (default: ${DEFAULT-VALUE})")
    int layers;

    @Option(names = "--heads", defaultValue = "8", paramLabel = "N", description = "query heads (default: ${DEFAULT-VALUE})")
    int heads;

    @Option(names = "--kv-heads", paramLabel = "N", description = "key/value heads (default: --heads)")
    Integer kvHeads;

    @Option(names = "--ffn", defaultValue = "172", paramLabel = "N", description = "feed-forward width (default: ${DEFAULT-VALUE})")
    int ffn;

    @Option(names = "--tied", description = "the output product is the embedding (no output.weight)")
    boolean tied;

    @Option(names = "--rope-base", defaultValue = "10000", paramLabel = "B", description = "rope frequency base (default: ${DEFAULT-VALUE})")
    float ropeBase;

    // ---- the recipe
    @Option(names = "--ctx", defaultValue = "256", paramLabel = "N", description = "tokens per training window (default: ${DEFAULT-VALUE})")
    int ctx;

    @Option(names = "--batch", defaultValue = "32", paramLabel = "N", description = "windows per micro-batch (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--grad-accum", defaultValue = "1", paramLabel = "K", description = "micro-batches per optimizer step (default: ${DEFAULT-VALUE})")
    int accum;

    @Option(names = "--steps", defaultValue = "1000", paramLabel = "N", description = "optimizer steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--lr", defaultValue = "1e-3", paramLabel = "LR", description = "peak learning rate (default: ${DEFAULT-VALUE})")
    double lr;

    @Option(names = "--min-lr", paramLabel = "LR", description = "lowest learning rate of cosine, linear and cyclical (default: --lr / 10)")
    Double minLr;

    @Option(names = "--warmup", defaultValue = "0", paramLabel = "N", description = "steps of linear warmup (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--schedule", defaultValue = "cosine", paramLabel = "S", description = "after warmup: cosine, linear, step, constant or cyclical (default: ${DEFAULT-VALUE})")
    String schedule;

    @Option(names = "--gamma", defaultValue = "0.5", paramLabel = "G", description = "factor of each --schedule step (default: ${DEFAULT-VALUE})")
    double gamma;

    @Option(names = "--step-size", defaultValue = "100", paramLabel = "N", description = "steps between --schedule step's drops (default: ${DEFAULT-VALUE})")
    int stepSize;

    @Option(names = "--cycle", defaultValue = "200", paramLabel = "N", description = "steps per cycle of --schedule cyclical (default: ${DEFAULT-VALUE})")
    int cycle;

    @Option(names = "--weight-decay", defaultValue = "0.1", paramLabel = "W", description = "AdamW weight decay on matrices (default: ${DEFAULT-VALUE})")
    double weightDecay;

    @Option(names = "--clip", defaultValue = "1.0", paramLabel = "NORM", description = "global gradient-norm clip, 0 for none (default: ${DEFAULT-VALUE})")
    double clip;

    @Option(names = "--shuffle", defaultValue = "true", arity = "1", paramLabel = "BOOL", description = "windows in a seeded random order (default: ${DEFAULT-VALUE})")
    boolean shuffle;

    @Option(names = {"-s", "--seed"}, defaultValue = "1", paramLabel = "S", description = "seed of the initialization, window order and dropout (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--dropout", defaultValue = "0", paramLabel = "P", description = "dropout on attention weights and residual branches (default: ${DEFAULT-VALUE})")
    float dropout;

    @Option(names = "--freeze", paramLabel = "SPEC", description = "keep weights fixed: layers (0-3, 5) or a tensor-name pattern (regex, e.g. 'token_embd|output.*')")
    String freeze;

    @Option(names = "--recompute", description = "recompute each layer's activations in backward: less memory, slower")
    boolean recompute;

    // ---- evaluation and saving
    @Option(names = "--eval-every", defaultValue = "100", paramLabel = "N", description = "steps between evaluations, 0 for only the end (default: ${DEFAULT-VALUE})")
    int evalEvery;

    @Option(names = "--eval-windows", defaultValue = "64", paramLabel = "N", description = "validation windows per evaluation, at most (default: ${DEFAULT-VALUE})")
    int evalWindows;

    @Option(names = "--patience", defaultValue = "0", paramLabel = "N", description = "stop after N evaluations without improvement (default: never)")
    int patience;

    @Option(names = "--checkpoint", paramLabel = "DIR", description = "save checkpoints into DIR")
    Path checkpoint;

    @Option(names = "--save-every", defaultValue = "100", paramLabel = "N", description = "steps between checkpoints (default: ${DEFAULT-VALUE})")
    int saveEvery;

    @Option(names = "--resume", description = "continue from --checkpoint DIR's checkpoint (same data and options)")
    boolean resume;

    @Option(names = "--log", paramLabel = "FILE.jsonl", description = "metrics, one JSON object per step and evaluation")
    Path log;

    @Option(names = "--png", paramLabel = "FILE.png", description = "chart of the training and validation loss")
    Path png;

    @Option(names = "--print-every", defaultValue = "10", paramLabel = "N", description = "steps between progress lines when stderr is not a terminal (default: ${DEFAULT-VALUE})")
    int printEvery;

    @Option(names = "--cache-dir", paramLabel = "DIR", description = "where tokenized data is cached when its own folder is read-only (default: ~/.cache/cria)")
    Path cacheDir;

    @Option(names = {"-t", "--threads"}, defaultValue = "0", paramLabel = "N", description = "threads (default: all cores)")
    int threads;

    @Option(names = "--backend", defaultValue = "cpu", paramLabel = "NAME", description = "cpu, or ref (float64, slow: the oracle) (default: ${DEFAULT-VALUE})")
    String backendName;

    @Override
    public Integer call() throws Exception {
        PrintWriter err = err();
        OutputFiles.check(output, "-o", OutputFiles.Kind.FILE);
        cria.quantize.LlamaFileType.parse(type); // a wrong --type is said now, not after the training
        if (log != null) {
            OutputFiles.check(log, "--log", OutputFiles.Kind.FILE);
        }
        if (png != null) {
            OutputFiles.check(png, "--png", OutputFiles.Kind.STREAM);
        }
        if (init != null && (vocab != null || vocabSize != null)) {
            throw new CriaException("--init brings its own vocabulary: leave out --vocab and --vocab-size");
        }
        if (vocab != null && vocabSize != null) {
            throw new CriaException("give --vocab or --vocab-size, not both");
        }
        if (resume && checkpoint == null) {
            throw new CriaException("--resume needs --checkpoint DIR (the directory the interrupted run saved into)");
        }
        if (!(valSplit >= 0 && valSplit <= 0.5)) {
            throw new CriaException("--val-split " + valSplit + ": between 0 and 0.5");
        }
        if (printEvery < 1) {
            throw new CriaException("--print-every " + printEvery + ": at least 1");
        }
        Schedule sched = new Schedule(Schedule.Kind.parse(schedule), lr, minLr != null ? minLr : lr / 10, warmup, steps, gamma, stepSize, cycle);
        TrainOptions opts = new TrainOptions(batch, ctx, accum, sched, weightDecay, clip, shuffle, seed, dropout, recompute, evalEvery,
                evalWindows, patience, checkpoint, saveEvery);

        // ---- vocabulary and shape
        Metadata vocabMd;
        LlamaConfig config;
        boolean isTied = tied;
        String origin;
        GgufFile initFile = init != null ? GgufFile.open(init) : null;
        try {
            if (initFile != null) {
                vocabMd = initFile.metadata();
                LlamaConfig c = LlamaConfig.from(vocabMd, initFile.tensor("token_embd.weight") == null ? 0
                        : (int) initFile.tensor("token_embd.weight").shape()[1]);
                config = c;
                isTied = initFile.tensor("output.weight") == null;
                origin = "fine-tuned from " + init.getFileName();
            } else {
                if (vocab != null) {
                    try (GgufFile v = GgufFile.open(vocab)) {
                        vocabMd = copyTokenizerKeys(v.metadata());
                    }
                } else {
                    vocabMd = trainVocabulary(vocabSize != null ? vocabSize : 512, err);
                }
                Tokenizer t = Tokenizer.fromMetadata(vocabMd);
                int kv = kvHeads != null ? kvHeads : heads;
                if (heads < 1 || dim % heads != 0) {
                    throw new CriaException("--dim " + dim + " must be a multiple of --heads " + heads);
                }
                if (kv < 1 || heads % kv != 0) {
                    throw new CriaException("--heads " + heads + " must be a multiple of --kv-heads " + kv);
                }
                if (layers < 1 || ffn < 1 || dim > 1 << 16 || ffn > 1 << 18 || layers > 1024) {
                    throw new CriaException("shape out of range: --dim 1..65536, --layers 1..1024, --ffn 1..262144");
                }
                if ((dim / heads) % 2 != 0) {
                    throw new CriaException("--dim / --heads = " + dim / heads + ": the head size must be even for rope");
                }
                config = new LlamaConfig("llama", dim, layers, heads, kv, dim / heads, ffn, t.vocabSize(), ctx, 1e-5f, dim / heads,
                        ropeBase, 1f, false);
                origin = "trained from scratch";
            }
            TokenData.Vocabulary vocabulary = TokenData.Vocabulary.of(vocabMd);
            Tokenizer tokenizer = vocabulary.tokenizer();
            Progress tp = progressFor(err, "tokenize", data);
            double split = val != null ? 0 : valSplit;
            TokenData td = TokenData.load(data, val, split, vocabulary, cacheDir != null ? cacheDir : defaultCacheDir(),
                    new TokenData.Progress() {
                        private long last;

                        @Override
                        public void tokenized(long done, long total) {
                            tp.add(done - last);
                            last = done;
                        }

                        @Override
                        public void notice(String line) {
                            err.println(line);
                        }
                    });
            tp.finish();
            err.println("cria train: " + td.summary());
            err.flush();

            // ---- memory, then the run
            long need = Params.bytes(config, isTied) + TrainGraph.activationBytes(config, batch, ctx, recompute);
            if (need > physicalMemory() * 0.9) {
                throw new CriaException("training this shape needs about " + Units.bytes(need) + " of memory, more than this machine's "
                        + Units.bytes(physicalMemory()) + "; use a smaller --batch or --ctx, or --recompute");
            }
            try (Backend backend = Backends.create(backendName, threads, err::println); TrainOps ops = backend.trainOps()) {
                Params params = new Params(config, isTied, ops);
                if (initFile != null) {
                    params.load(ops, initFile);
                } else {
                    params.initRandom(ops, seed);
                }
                if (freeze != null) {
                    int n = params.freeze(freezeSpec(freeze, config.layers()));
                    if (n == 0) {
                        throw new CriaException("--freeze " + freeze + " matches no tensor; tensor names look like blk.0.attn_q.weight");
                    }
                    if (params.trainableCount() == 0) {
                        throw new CriaException("--freeze " + freeze + " freezes every tensor: nothing would train");
                    }
                }
                String recipe = recipe(config, isTied, td, opts, init);
                err.printf(Locale.ROOT, "cria train: %s, %s parameters (%s trainable), dim %d, %d layers, %d/%d heads, ffn %d, vocab %d;"
                                + " %d steps of %s tokens on %s (%s)%n", origin, Units.count(Params.count(config, isTied)),
                        Units.count(params.trainableCount()), config.dim(), config.layers(), config.heads(), config.kvHeads(), config.ffn(),
                        config.vocab(), steps, Units.count(opts.tokensPerStep()), backend.describe(), Units.bytes(need) + " for weights,"
                                + " optimizer and activations");
                err.flush();
                Trainer trainer = new Trainer(params, ops, opts, td.train(), td.validation(), recipe);
                Metrics metrics = new Metrics(err, log, resume, steps);
                Trainer.Result r;
                try {
                    r = trainer.run(resume, metrics);
                } finally {
                    metrics.close();
                }
                // ---- write the model
                String description = origin + " by cria train on " + data.getFileName() + ": " + r.steps() + " steps of "
                        + Units.count(opts.tokensPerStep()) + " tokens (batch " + batch + " x ctx " + ctx + (accum > 1 ? " x " + accum : "")
                        + "), AdamW lr " + lr + " " + sched.kind() + (r.best() != null ? String.format(Locale.ROOT, ", validation loss %.4f",
                        r.best().loss()) : "") + ", seed " + seed;
                writeModel(ops, params, vocabMd, description, err);
                if (r.best() != null) {
                    double ppl = Math.exp(r.best().loss());
                    out().printf(Locale.ROOT, "trained %s: %d steps, final loss %.4f, validation loss %.4f (perplexity %.3f) at step %d%s%n",
                            output, r.steps(), r.finalLoss(), r.best().loss(), ppl, r.best().step(), r.stoppedEarly() ? " (stopped early)" : "");
                    reportPerplexity(trainer, tokenizer, split);
                } else {
                    out().printf(Locale.ROOT, "trained %s: %d steps, final loss %.4f (no validation text)%n", output, r.steps(), r.finalLoss());
                }
                if (png != null) {
                    chart(r, png);
                    out().println("wrote " + png);
                }
            }
        } finally {
            if (initFile != null) {
                initFile.close();
            }
        }
        return 0;
    }

    /** The validation text as a file and its perplexity measured as `cria perplexity` measures it, so the two can be compared. */
    private void reportPerplexity(Trainer trainer, Tokenizer tokenizer, double split) {
        String text = TokenData.validationText(data, val, split);
        if (text == null) {
            return;
        }
        int[] tokens = tokenizer.encode(text, true, false);
        if (tokens.length < 2L * ctx) {
            return; // cria perplexity itself needs two windows
        }
        double ppl = trainer.perplexityLikeLlamaCpp(tokens, tokenizer.addsBos() ? tokenizer.bos() : -1);
        Path valText = Path.of(output + ".val.txt");
        try {
            Files.writeString(valText, text, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw OutputFiles.failed(valText, e);
        }
        out().printf(Locale.ROOT, "perplexity of %s on its validation text (%s, -c %d, as cria perplexity and llama-perplexity count): %.4f%s%n",
                output, valText, ctx, ppl, type.equalsIgnoreCase("F32") ? "" : " (of the F32 weights, before conversion to " + type + ")");
    }

    private Metadata trainVocabulary(int size, PrintWriter err) {
        Progress progress = new Progress(err, "vocabulary", size, "tokens", Progress.stderrIsTerminal());
        long[] last = {0};
        TrainedVocab v = new VocabTrainer(size).splitByScript(!mixedScripts).progress(n -> {
            progress.add(n - last[0]);
            last[0] = n;
        }).train(TokenData.trainingDocuments(data, val, val != null ? 0 : valSplit)); // never the held-out text
        progress.finish();
        Metadata md = new Metadata("vocabulary trained on " + data);
        v.writeTo(md);
        return md;
    }

    private static Metadata copyTokenizerKeys(Metadata src) {
        Metadata md = new Metadata(src.source());
        src.asMap().forEach((k, v) -> {
            if (k.startsWith("tokenizer.")) {
                md.put(k, v);
            }
        });
        return md;
    }

    private Progress progressFor(PrintWriter err, String label, Path file) {
        long size;
        try {
            size = Files.size(file);
        } catch (IOException e) {
            throw new CriaException(file + ": " + OutputFiles.reason(e));
        }
        return new Progress(err, label, size, "bytes", Progress.stderrIsTerminal());
    }

    private static Path defaultCacheDir() {
        return Path.of(System.getProperty("user.home"), ".cache", "cria");
    }

    private static long physicalMemory() {
        if (java.lang.management.ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getTotalMemorySize();
        }
        return Long.MAX_VALUE / 4;
    }

    /** Layers ("0-3", "0,2,5-7") or a regular expression over tensor names. */
    static Predicate<String> freezeSpec(String spec, int layers) {
        if (spec.matches("[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*")) {
            boolean[] frozen = new boolean[layers];
            for (String part : spec.split(",")) {
                String[] ab = part.split("-");
                long a = Long.parseLong(ab[0]);
                long b = ab.length > 1 ? Long.parseLong(ab[1]) : a;
                if (a > b || b >= layers) {
                    throw new CriaException("--freeze " + spec + ": layers run from 0 to " + (layers - 1));
                }
                for (long l = a; l <= b; l++) {
                    frozen[(int) l] = true;
                }
            }
            return name -> {
                if (!name.startsWith("blk.")) {
                    return false;
                }
                int dot = name.indexOf('.', 4);
                return frozen[Integer.parseInt(name.substring(4, dot))];
            };
        }
        try {
            Pattern p = Pattern.compile(spec);
            return name -> p.matcher(name).matches();
        } catch (java.util.regex.PatternSyntaxException e) {
            throw new CriaException("--freeze " + spec + ": neither layers (0-3) nor a valid pattern: " + e.getDescription());
        }
    }

    private String recipe(LlamaConfig c, boolean isTied, TokenData td, TrainOptions o, Path initPath) {
        return String.format(Locale.ROOT, "shape %d/%d/%d/%d/%d/%d%s; data %s; init %s; batch %d ctx %d accum %d steps %d lr %s min %s warmup %d %s"
                        + " gamma %s size %d cycle %d wd %s clip %s shuffle %b seed %d dropout %s freeze %s threads %d backend %s",
                c.dim(), c.layers(), c.heads(), c.kvHeads(), c.ffn(), c.vocab(), isTied ? " tied" : "", String.format("%016x", td.fingerprint()),
                initPath == null ? "random" : initPath.getFileName(), o.batch(), o.ctx(), o.accum(), o.schedule().steps(), o.schedule().lr(),
                o.schedule().minLr(), o.schedule().warmup(), o.schedule().kind(), o.schedule().gamma(), o.schedule().stepSize(),
                o.schedule().cycle(), o.weightDecay(), o.clip(), o.shuffle(), o.seed(), o.dropout(), freeze, Backends.cpuThreadCount(threads),
                backendName);
    }

    private void writeModel(TrainOps ops, Params params, Metadata vocabMd, String description, PrintWriter err) throws Exception {
        String name = output.getFileName().toString().replaceFirst("\\.gguf$", "");
        if (type.equalsIgnoreCase("F32")) {
            ModelExport.write(output, params, ops, vocabMd, name, description);
            return;
        }
        Path tmp = Path.of(output + ".f32.tmp");
        try {
            ModelExport.write(tmp, params, ops, vocabMd, name, description);
            picocli.CommandLine q = new picocli.CommandLine(new QuantizeCommand()).setOut(new PrintWriter(OutputStream.nullOutputStream()))
                    .setErr(err);
            q.setExecutionExceptionHandler((ex, line, parsed) -> {
                throw ex; // one line from Main, as for any verb
            });
            int rc = q.execute(tmp.toString(), output.toString(), type);
            if (rc != 0) {
                throw new CriaException("could not write " + output + " as " + type + " (see above)");
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static void chart(Trainer.Result r, Path png) {
        XYChart chart = new XYChartBuilder().width(900).height(500).title("cria train: loss").xAxisTitle("step").yAxisTitle("cross-entropy").build();
        List<Integer> xs = new ArrayList<>();
        List<Double> ys = new ArrayList<>();
        for (Trainer.StepResult s : r.history()) {
            xs.add(s.step());
            ys.add(s.loss());
        }
        chart.addSeries("training", xs, ys).setMarker(org.knowm.xchart.style.markers.SeriesMarkers.NONE);
        if (!r.evals().isEmpty()) {
            List<Integer> ex = new ArrayList<>();
            List<Double> ey = new ArrayList<>();
            for (Trainer.EvalResult e : r.evals()) {
                ex.add(e.step());
                ey.add(e.loss());
            }
            chart.addSeries("validation", ex, ey);
        }
        OutputFiles.write(png, "--png", OutputFiles.Kind.STREAM, o -> BitmapEncoder.saveBitmap(chart, o, BitmapEncoder.BitmapFormat.PNG));
    }

    /** The progress line on stderr and the JSONL metrics. */
    private final class Metrics implements Trainer.Listener, AutoCloseable {
        private final PrintWriter err;
        private final boolean tty = Progress.stderrIsTerminal();
        private final int steps;
        private final ObjectMapper json = new ObjectMapper();
        private OutputStream logOut;

        Metrics(PrintWriter err, Path logFile, boolean resuming, int steps) throws IOException {
            this.err = err;
            this.steps = steps;
            if (logFile != null) {
                logOut = resuming && Files.exists(logFile)
                        ? Files.newOutputStream(logFile, StandardOpenOption.WRITE, StandardOpenOption.APPEND)
                        : Files.newOutputStream(logFile, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
            }
        }

        @Override
        public void onResume(int step) {
            err.println("cria train: resuming after step " + step + " from " + Checkpoint.file(checkpoint));
            if (log != null) {
                trimLog(step);
            }
        }

        private void trimLog(int step) {
            try {
                logOut.close();
                List<String> keep = new ArrayList<>();
                for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
                    var node = line.isBlank() ? null : json.readTree(line);
                    if (node != null && node.path("step").asInt(Integer.MAX_VALUE) <= step) {
                        keep.add(line);
                    }
                }
                Files.write(log, keep, StandardCharsets.UTF_8);
                logOut = Files.newOutputStream(log, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
            } catch (IOException e) {
                throw OutputFiles.failed(log, e);
            }
        }

        @Override
        public void onStep(Trainer.StepResult r) {
            double eta = r.tokensPerSecond() > 0 ? (double) (steps - r.step()) * (r.elapsedSeconds() / Math.max(1, r.step())) : 0;
            String line = String.format(Locale.ROOT, "step %d/%d  loss %.6f  lr %.3e  %s tok/s  ETA %s", r.step(), steps, r.loss(), r.lr(),
                    Units.count((long) r.tokensPerSecond()), Progress.clock(eta));
            if (tty) {
                err.print("\r" + line + "   ");
                if (r.step() == steps) {
                    err.println();
                }
            } else if (r.step() % printEvery == 0 || r.step() == steps || r.step() == 1) {
                err.println(line);
            }
            err.flush();
            ObjectNode o = json.createObjectNode();
            o.put("step", r.step()).put("loss", r.loss()).put("lr", r.lr()).put("grad_norm", r.gradNorm())
                    .put("tokens_per_s", r.tokensPerSecond()).put("seconds", r.elapsedSeconds());
            write(o);
        }

        @Override
        public void onEval(Trainer.EvalResult e) {
            if (tty) {
                err.println();
            }
            err.printf(Locale.ROOT, "eval after step %d: validation loss %.6f, perplexity %.4f%s%n", e.step(), e.loss(), e.perplexity(),
                    e.best() ? " (best)" : "");
            err.flush();
            ObjectNode o = json.createObjectNode();
            o.put("step", e.step()).put("val_loss", e.loss()).put("val_ppl", e.perplexity()).put("best", e.best());
            write(o);
        }

        @Override
        public void onCheckpoint(Path file, int step) {
            if (!tty) {
                err.println("checkpoint after step " + step + ": " + file);
            }
        }

        private void write(ObjectNode o) {
            if (logOut == null) {
                return;
            }
            try {
                logOut.write(json.writeValueAsBytes(o));
                logOut.write('\n');
                logOut.flush();
            } catch (IOException ex) {
                throw OutputFiles.failed(log, ex);
            }
        }

        @Override
        public void close() throws IOException {
            if (logOut != null) {
                logOut.close();
            }
        }
    }
}
