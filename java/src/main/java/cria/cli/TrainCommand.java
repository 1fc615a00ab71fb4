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
final class TrainCommand extends TrainingVerb {
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

    @Option(names = "--steps", defaultValue = "1000", paramLabel = "N", description = "optimizer steps (default: ${DEFAULT-VALUE})")
    int steps;

    // ---- evaluation and saving
    @Option(names = "--cache-dir", paramLabel = "DIR", description = "where tokenized data is cached when its own folder is read-only (default: ~/.cache/cria)")
    Path cacheDir;

    @Override
    String verb() {
        return "cria train";
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter err = err();
        OutputFiles.check(output, "-o", OutputFiles.Kind.FILE);
        cria.quantize.LlamaFileType.parse(type); // a wrong --type is said now, not after the training
        checkCommon();
        if (init != null && (vocab != null || vocabSize != null)) {
            throw new CriaException("--init brings its own vocabulary: leave out --vocab and --vocab-size");
        }
        if (vocab != null && vocabSize != null) {
            throw new CriaException("give --vocab or --vocab-size, not both");
        }
        if (!(valSplit >= 0 && valSplit <= 0.5)) {
            throw new CriaException("--val-split " + valSplit + ": between 0 and 0.5");
        }
        TrainOptions opts = options(batch, ctx, steps, recompute());
        Schedule sched = opts.schedule();

        // ---- vocabulary and shape
        Metadata vocabMd;
        LlamaConfig config;
        boolean isTied = tied;
        String origin;
        GgufFile initFile = init != null ? GgufFile.open(init) : null;
        try {
            if (initFile != null) {
                cria.model.LowRankTensors.requireDense(initFile, "train --init");
                vocabMd = initFile.metadata();
                LlamaConfig c = LlamaConfig.from(vocabMd, initFile.tensor("token_embd.weight") == null ? 0
                        : (int) Math.min(Integer.MAX_VALUE, initFile.tensor("token_embd.weight").rows()));
                cria.train.Params.requireTrainable(c, initFile);
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
            long need = Params.bytes(config, isTied) + TrainGraph.activationBytes(config, batch, ctx, recompute());
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
                    chart(r, png, "cria train: loss");
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

    private String recipe(LlamaConfig c, boolean isTied, TokenData td, TrainOptions o, Path initPath) {
        return String.format(Locale.ROOT, "shape %d/%d/%d/%d/%d/%d%s; data %s; init %s; ", c.dim(), c.layers(), c.heads(), c.kvHeads(),
                c.ffn(), c.vocab(), isTied ? " tied" : "", String.format("%016x", td.fingerprint()),
                initPath == null ? "random" : initPath.getFileName()) + recipeOptions(o);
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

}
