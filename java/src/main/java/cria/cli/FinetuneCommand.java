// `cria finetune`: LoRA adapters trained over a frozen base of any weight type, written as a llama.cpp LoRA GGUF.
package cria.cli;

import cria.CriaException;
import cria.backend.Backend;
import cria.backend.TrainOps;
import cria.engine.Backends;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.model.LlamaConfig;
import cria.model.LlamaWeights;
import cria.tokenizer.ChatTemplate;
import cria.tokenizer.Tokenizer;
import cria.train.AdapterExport;
import cria.train.Augment;
import cria.train.Example;
import cria.train.ExampleWindows;
import cria.train.Examples;
import cria.train.LoraTarget;
import cria.train.Params;
import cria.train.TrainGraph;
import cria.train.TrainOptions;
import cria.train.TrainSource;
import cria.train.Trainer;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Predicate;
import java.util.zip.CRC32;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Fine-tunes a model with LoRA. */
@Command(name = "finetune", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Fine-tune a model with LoRA on the CPU: small low-rank adapters train beside the frozen base, which stays in its",
            "file (F32 to Q2_K: a quantized base is never dequantized whole). Data is JSONL, one example per line:",
            "{\"text\"} (learn every token), {\"prompt\",\"completion\"} (learn the completion), {\"messages\":[...]} (the",
            "model's chat template; learn the assistant turns) or {\"text\",\"label\"} (classification). Writes an adapter",
            "in llama.cpp's LoRA GGUF format: use it with --lora on any verb, in llama.cpp, or merge it with `cria merge`.",
            "Every option of the training recipe applies (schedules, accumulation, clipping, checkpoints, --resume ...).",
            "Bases: llama, mistral, qwen2 (its q/k/v biases stay frozen) and qwen3 (its q/k norms stay frozen).",
            "Example: cria finetune -m model.gguf --data train.jsonl --val val.jsonl --rank 8 --alpha 16 \\",
            "           --steps 300 --lr 1e-3 --warmup 20 -o adapter.gguf"})
final class FinetuneCommand extends TrainingVerb {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "BASE.gguf", description = "the base model (any weight type)")
    Path model;

    @Option(names = "--data", required = true, paramLabel = "FILE.jsonl", description = "training examples, one JSON object per line")
    Path data;

    @Option(names = "--val", paramLabel = "FILE.jsonl", description = "validation examples (default: the last --val-split of --data)")
    Path val;

    @Option(names = "--val-split", defaultValue = "0.05", paramLabel = "F", description = "share of --data held out when there is no --val (default: ${DEFAULT-VALUE})")
    double valSplit;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "ADAPTER.gguf", description = "the adapter to write")
    Path output;

    @Option(names = "--rank", defaultValue = "8", paramLabel = "R", description = "rank of each adapter (default: ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--alpha", paramLabel = "A", description = "the adapters' alpha: outputs are scaled by alpha / rank (default: 2 x --rank)")
    Float alpha;

    @Option(names = "--lora-dropout", defaultValue = "0", paramLabel = "P", description = "dropout on each adapter's input (default: ${DEFAULT-VALUE})")
    float loraDropout;

    @Option(names = "--targets", defaultValue = "q,k,v,o,gate,up,down", paramLabel = "LIST",
            description = "products to adapt: q, k, v, o, gate, up, down or all (default: ${DEFAULT-VALUE})")
    String targets;

    @Option(names = "--labels", paramLabel = "A,B,...", split = ",", description = "the label set of {\"text\",\"label\"} data (default: the labels in the data)")
    List<String> labels;

    @Option(names = "--augment", defaultValue = "0", paramLabel = "RATE",
            description = "text augmentation of training examples (word dropout and neighbour swaps, seeded, new each epoch) (default: ${DEFAULT-VALUE})")
    double augment;

    @Option(names = "--pack", description = "pack several examples into each window (faster on short examples) instead of one per window")
    boolean pack;

    @Option(names = "--ctx", paramLabel = "N", description = "tokens per window (default: the longest example, at most 512 and the model's context)")
    Integer ctx;

    @Option(names = "--batch", paramLabel = "N",
            description = "windows per micro-batch (default: 8, split into smaller micro-batches with accumulation when memory is short)")
    Integer batchOption;

    /** Windows per micro-batch of this run (after an automatic split). */
    private int batch;

    @Option(names = "--steps", paramLabel = "N", description = "optimizer steps; 0 writes the initial adapter (default: --epochs worth)")
    Integer steps;

    @Option(names = "--epochs", defaultValue = "1", paramLabel = "E", description = "passes over the training examples when --steps is not given (default: ${DEFAULT-VALUE})")
    double epochs;

    @Option(names = "--exact-forward",
            description = "compute a quantized base's forward products on its dequantized weights in float (exact, slower) rather than as inference does (8-bit activations)")
    boolean exactForward;

    @Option(names = "--dump-batches", paramLabel = "FILE", hidden = true, description = "write every training window's inputs and targets (for peer implementations)")
    Path dumpBatches;

    /**
     * Activation memory above which layers are recomputed in backward (unless --recompute or
     * --no-recompute is given) and, without --batch, the batch is split into accumulated micro-batches: a 1B model at
     * --ctx 256 then fine-tunes within its file's size and 1 GB.
     */
    private static final long ACTIVATION_BUDGET = 384L << 20;
    private static final int DEFAULT_BATCH = 8;

    @Override
    String verb() {
        return "cria finetune";
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter err = err();
        checkCommon();
        OutputFiles.check(output, "-o", OutputFiles.Kind.FILE);
        if (rank < 1 || rank > 4096) {
            throw new CriaException("--rank " + rank + ": between 1 and 4096");
        }
        float a = alpha != null ? alpha : 2f * rank;
        if (!(a > 0 && a < 1e6)) {
            throw new CriaException("--alpha " + a + ": a positive number (e.g. 16)");
        }
        if (!(loraDropout >= 0 && loraDropout < 1)) {
            throw new CriaException("--lora-dropout " + loraDropout + ": a probability from 0 up to (not including) 1");
        }
        if (!(augment >= 0 && augment <= Augment.MAX_RATE)) {
            throw new CriaException("--augment " + augment + ": between 0 and " + Augment.MAX_RATE);
        }
        if (!(valSplit >= 0 && valSplit <= 0.5)) {
            throw new CriaException("--val-split " + valSplit + ": between 0 and 0.5");
        }
        if (!(epochs > 0 && epochs <= 1e6)) {
            throw new CriaException("--epochs " + epochs + ": above 0, at most 1000000");
        }
        if (steps != null && steps < 0) {
            throw new CriaException("--steps " + steps + ": 0 or more");
        }
        Set<LoraTarget> targetSet = LoraTarget.parse(targets);
        try (GgufFile base = GgufFile.open(model)) {
            GgufTensorInfo emb = base.tensor("token_embd.weight");
            LlamaConfig config = LlamaConfig.from(base.metadata(), emb == null ? 0 : (int) Math.min(Integer.MAX_VALUE, emb.rows()));
            LlamaWeights.check(base, config); // every tensor's presence, shape and type, as inference checks them
            cria.model.LowRankTensors.requireDense(base, "fine-tuning");
            cria.train.Params.requireFineTunable(config, base);
            Tokenizer tok = Tokenizer.fromMetadata(base.metadata());
            if (tok.vocabSize() != config.vocab()) {
                throw new CriaException(model + ": the vocabulary has " + tok.vocabSize() + " tokens but the model has " + config.vocab()
                        + " embedding rows; the file is damaged or its vocabulary belongs to another model");
            }
            ChatTemplate chat = Examples.chatTemplate(base.metadata(), tok);

            // ---- data
            Examples train = Examples.load(data, tok, chat, labels);
            Examples held = val != null ? Examples.load(val, tok, chat, labels != null ? labels : train.labels().isEmpty() ? null : train.labels())
                    : null;
            List<Example> trainList = new ArrayList<>(train.examples());
            List<Example> valList = new ArrayList<>();
            if (held != null) {
                valList.addAll(held.examples());
            } else if (valSplit > 0 && trainList.size() >= 2) {
                int k = (int) Math.max(1, Math.round(trainList.size() * valSplit));
                valList.addAll(trainList.subList(trainList.size() - k, trainList.size()));
                trainList = new ArrayList<>(trainList.subList(0, trainList.size() - k));
            }
            if (trainList.isEmpty()) {
                throw new CriaException(data + ": no training examples left (" + train.examples().size() + " in the file, held out "
                        + valList.size() + "); give --val or a smaller --val-split");
            }
            // each example encoded once whole; only one longer than the window is encoded again, cut to fit
            List<Examples.Encoded> trainEnc = new ArrayList<>();
            int longest = 0;
            for (Example e : trainList) {
                Examples.Encoded whole = train.encode(e, Integer.MAX_VALUE, 0, 0);
                longest = Math.max(longest, whole.tokens().length);
                trainEnc.add(whole);
            }
            int modelCtx = Math.max(2, config.trainedContextLength());
            int windowCtx = ctx != null ? ctx : Math.max(1, Math.min(Math.min(longest - 1, 512), modelCtx));
            if (windowCtx < 1 || windowCtx > modelCtx) {
                throw new CriaException("--ctx " + windowCtx + ": between 1 and the model's context of " + modelCtx);
            }
            int maxTokens = windowCtx + 1;
            int cut = 0;
            for (int i = 0; i < trainEnc.size(); i++) {
                if (trainEnc.get(i).tokens().length > maxTokens) {
                    Examples.Encoded x = train.encode(trainList.get(i), maxTokens, 0, 0);
                    cut += x.truncated() ? 1 : 0;
                    trainEnc.set(i, x);
                }
            }
            Examples valSource = held != null ? held : train;
            List<Examples.Encoded> valEnc = new ArrayList<>();
            for (Example e : valList) {
                Examples.Encoded x = valSource.encode(e, maxTokens, 0, 0);
                cut += x.truncated() ? 1 : 0;
                valEnc.add(x);
            }
            if (cut > 0) {
                err.println("cria finetune: warning: " + cut + " example" + (cut == 1 ? " is" : "s are") + " longer than --ctx " + windowCtx
                        + " + 1 tokens and " + (cut == 1 ? "was" : "were") + " truncated (the longest has " + longest + " tokens)");
            }
            final List<Example> exs = trainList;
            ExampleWindows.Encoder encoder = augment > 0
                    ? (i, epoch) -> train.encode(exs.get(i), maxTokens, augment, Augment.seed(seed, i, epoch))
                    : (i, epoch) -> trainEnc.get(i);
            int pad = tok.eos() >= 0 ? tok.eos() : 0;
            ExampleWindows windows = new ExampleWindows(trainList.size(), encoder, windowCtx, shuffle, seed, pack, pad);

            // ---- memory: recompute layers, then split the batch into accumulated micro-batches, when activations are large
            batch = batchOption != null ? batchOption : DEFAULT_BATCH;
            boolean recomputeNow = recompute();
            long acts = TrainGraph.activationBytes(config, batch, windowCtx, false);
            if (recomputeOption == null && acts > ACTIVATION_BUDGET) {
                recomputeNow = true;
                err.println("cria finetune: keeping every layer's activations would take " + Units.bytes(acts)
                        + "; recomputing them in backward instead (as --recompute)");
            }
            if (batchOption == null && TrainGraph.activationBytes(config, batch, windowCtx, recomputeNow) > ACTIVATION_BUDGET) {
                int micro = batch;
                while (micro > 1 && (batch % micro != 0 || TrainGraph.activationBytes(config, micro, windowCtx, recomputeNow) > ACTIVATION_BUDGET)) {
                    micro--;
                }
                if (micro < batch) {
                    err.println("cria finetune: " + batch + " windows of " + windowCtx + " at once would need "
                            + Units.bytes(TrainGraph.activationBytes(config, batch, windowCtx, recomputeNow)) + " of activations; training "
                            + batch / micro + " micro-batches of " + micro + " per step instead (the same steps, as --batch " + micro
                            + " --grad-accum " + accum * (batch / micro) + ")");
                    accum *= batch / micro;
                    batch = micro;
                }
            }
            long need = TrainGraph.activationBytes(config, batch, windowCtx, recomputeNow)
                    + TrainGraph.loraActivationBytes(config, batch, windowCtx, rank, targetSet.size(), loraDropout > 0)
                    + 16L * adapterValues(config, targetSet, rank);
            if (need > physicalMemory() * 0.9) {
                throw new CriaException("fine-tuning at --batch " + batch + " --ctx " + windowCtx + " needs about " + Units.bytes(need)
                        + " besides the mapped model, more than this machine's " + Units.bytes(physicalMemory()) + "; use a smaller --batch or --ctx");
            }
            int runSteps = steps != null ? steps
                    : (int) Math.max(1, Math.min(Integer.MAX_VALUE, Math.ceil(epochs * windows.perEpoch() / ((double) batch * accum))));
            // --steps 0 writes the initial adapter: no schedule is run, so the options are checked as for one step without warmup
            TrainOptions opts = runSteps == 0 ? null : options(batch, windowCtx, runSteps, recomputeNow);
            Predicate<String> frozen = freeze == null ? n -> false : freezeSpec(freeze, config.layers());

            try (Backend backend = Backends.create(backendName, threads, err::println); TrainOps ops = backend.trainOps()) {
                ops.frozenForwardExact(exactForward);
                Params params = Params.frozenBase(config, base, ops);
                int adapters = 0;
                for (int l = 0; l < config.layers(); l++) {
                    for (LoraTarget t : targetSet) {
                        if (!frozen.test(params.product(l, t).name)) {
                            params.addLora(ops, l, t, rank, a, seed);
                            adapters++;
                        }
                    }
                }
                if (adapters == 0) {
                    throw new CriaException("--freeze " + freeze + " leaves no product to adapt");
                }
                long trainable = params.trainableCount();
                err.printf(Locale.ROOT, "cria finetune: %s (%s, %s parameters, frozen); %d adapters of rank %d (alpha %s) on %s: %s trainable;"
                                + " %s; %d training / %d validation examples, ctx %d%s; %d steps of %d x %d windows on %s%n",
                        model.getFileName(), fileType(base), Units.count(Params.count(config, params.tied())), adapters, rank, fmt(a), targets,
                        Units.count(trainable), train.summary(), trainList.size(), valList.size(), windowCtx, pack ? " packed" : "", runSteps,
                        batch, accum, backend.describe());
                err.flush();
                if (runSteps == 0) {
                    AdapterExport.write(output, params, ops, config.arch(), a, description(0, null));
                    out().println("wrote " + output + " (the initial adapter: B = 0, the base model unchanged)");
                    return 0;
                }
                TrainSource source = dumpBatches != null ? new BatchDump(windows, dumpBatches, windowCtx) : windows;
                TrainSource.Validation valWindows = valEnc.isEmpty() ? null : ExampleWindows.validation(valEnc, windowCtx, evalWindows, pad);
                String recipe = String.format(Locale.ROOT, "base %s %d bytes; data %s; val %s; rank %d alpha %s targets %s lora-dropout %s augment %s"
                                + " pack %b; ", model.getFileName(), Files.size(model), fingerprint(data), val == null ? "split " + valSplit
                                : fingerprint(val), rank, fmt(a), targets, loraDropout, augment, pack) + recipeOptions(opts);
                Trainer trainer = new Trainer(params, ops, opts, source, valWindows, recipe, loraDropout);
                Metrics metrics = new Metrics(err, log, resume, runSteps);
                Trainer.Result r;
                try {
                    r = trainer.run(resume, metrics);
                } finally {
                    metrics.close();
                    if (source instanceof BatchDump d) {
                        d.close();
                    }
                }
                AdapterExport.write(output, params, ops, config.arch(), a, description(r.steps(), r));
                if (r.best() != null) {
                    out().printf(Locale.ROOT, "wrote %s: %d steps, final loss %.4f, validation loss %.4f (perplexity %.3f) at step %d%s%n", output,
                            r.steps(), r.finalLoss(), r.best().loss(), r.best().perplexity(), r.best().step(), r.stoppedEarly() ? " (stopped early)" : "");
                } else {
                    out().printf(Locale.ROOT, "wrote %s: %d steps, final loss %.4f (no validation examples)%n", output, r.steps(), r.finalLoss());
                }
                if (png != null) {
                    chart(r, png, "cria finetune: loss");
                    out().println("wrote " + png);
                }
            }
        }
        return 0;
    }

    private String description(int done, Trainer.Result r) {
        return String.format(Locale.ROOT, "LoRA adapter of %s by cria finetune on %s: rank %d, targets %s, %d steps, lr %s, seed %d%s",
                model.getFileName(), data.getFileName(), rank, targets, done, lr, seed,
                r != null && r.best() != null ? String.format(Locale.ROOT, ", validation loss %.4f", r.best().loss()) : "");
    }

    private static String fmt(float f) {
        return f == Math.rint(f) ? String.valueOf((long) f) : String.valueOf(f);
    }

    private static String fileType(GgufFile f) {
        GgufTensorInfo t = f.tensor("blk.0.attn_q.weight");
        return t == null ? "?" : t.type().toString();
    }

    private static long adapterValues(LlamaConfig c, Set<LoraTarget> targets, int rank) {
        long per = 0;
        for (LoraTarget t : targets) {
            per += switch (t) {
                case Q -> c.dim() + c.qDim();
                case K, V -> c.dim() + c.kvDim();
                case O -> c.qDim() + c.dim();
                case GATE, UP, DOWN -> c.dim() + c.ffn();
            };
        }
        return per * rank * c.layers();
    }

    /** CRC-32 and size of a data file: what the checkpoint's recipe compares on resume. */
    private static String fingerprint(Path p) throws IOException {
        CRC32 crc = new CRC32();
        byte[] buf = new byte[1 << 16];
        try (InputStream in = Files.newInputStream(p)) {
            for (int n; (n = in.read(buf)) > 0; ) {
                crc.update(buf, 0, n);
            }
        }
        return String.format(Locale.ROOT, "%s %08x/%d", p.getFileName(), crc.getValue(), Files.size(p));
    }

    /** Writes each training window once, in order, as the trainer fills it: int32 inputs then targets (little-endian). */
    private static final class BatchDump implements TrainSource, AutoCloseable {
        private final TrainSource inner;
        private final java.io.DataOutputStream out;
        private final int ctx;
        private long next;

        BatchDump(TrainSource inner, Path file, int ctx) throws IOException {
            this.inner = inner;
            this.ctx = ctx;
            this.out = new java.io.DataOutputStream(new java.io.BufferedOutputStream(Files.newOutputStream(file)));
        }

        @Override
        public void fill(long k, int[] inputs, int[] targets, int offset) {
            inner.fill(k, inputs, targets, offset);
            if (k != next) {
                return; // the trainer fills each micro-batch twice (counting, then running): the first time is written
            }
            next++;
            try {
                for (int[] a : new int[][] {inputs, targets}) {
                    for (int t = 0; t < ctx; t++) {
                        out.writeInt(Integer.reverseBytes(a[offset + t]));
                    }
                }
            } catch (IOException e) {
                throw new CriaException("cannot write --dump-batches: " + e.getMessage());
            }
        }

        @Override
        public void close() throws IOException {
            out.close();
        }
    }
}
