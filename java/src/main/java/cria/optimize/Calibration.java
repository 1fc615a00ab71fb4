// A calibration pass: text through a model on a host backend, every product's input rows shown to a tap.
package cria.optimize;

import cria.CriaException;
import cria.backend.AttnSpec;
import cria.backend.Backend;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.KvCache;
import cria.backend.Ops;
import cria.backend.Rope;
import cria.backend.TrainOps;
import cria.backend.Weight;
import cria.backend.cpu.CpuBackend;
import cria.backend.ref.RefBackend;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.model.Llama;
import cria.model.LlamaConfig;
import cria.model.LlamaWeights;
import cria.tensor.Tensor;
import cria.tokenizer.Tokenizer;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * Runs calibration text through a model and shows a {@link Tap} the input rows of every weight
 * product, as llama.cpp's {@code llama-imatrix} observes its matrix multiplications. The text is
 * cut into chunks of {@code ctx} tokens whose first token is BOS (as {@code llama-imatrix} and
 * {@code llama-perplexity} cut it); each chunk runs as one batch, so a product's input holds one
 * row per token of the chunk.
 * <p>The model runs on a host backend ({@code cpu} or {@code ref}) whose weights are the file's
 * mapping itself, used in place: a caller that opened the file writable
 * ({@link GgufFile#open(Path, boolean)}) and changes an F32 tensor between runs (pruning layer by
 * layer) sees the next run go through the changed weights.
 */
public final class Calibration implements AutoCloseable {
    /** Longest text read for calibration. */
    public static final long MAX_TEXT_BYTES = 1L << 30;

    /**
     * Sees the input of one product. {@code x} holds {@code n} rows of {@code weight.cols()}
     * float32 values (row-major), valid only during the call. Weights that share an input (q, k
     * and v; gate and up) are shown the same rows once each.
     */
    @FunctionalInterface
    public interface Tap {
        void accept(Weight weight, MemorySegment x, int n);
    }

    /**
     * How to run.
     *
     * @param backend       "cpu" (fast) or "ref" (the scalar oracle)
     * @param threads       CPU threads, 0 = one per core
     * @param ctx           tokens per chunk
     * @param maxChunks     most chunks to run, 0 or less = all the text gives
     * @param processOutput also show the output (logits) product, which needs every row's logits
     */
    public record Options(String backend, int threads, int ctx, int maxChunks, boolean processOutput) {
        public Options {
            if (!"cpu".equals(backend) && !"ref".equals(backend)) {
                throw new CriaException("calibration runs on the cpu or ref backend, not '" + backend + "'; use --backend cpu");
            }
            if (ctx < 2 || ctx > 1 << 16) {
                throw new CriaException("calibration chunks of " + ctx + " tokens: use 2 to 65536 (e.g. --ctx 512)");
            }
            if (threads < 0 || threads > CpuBackend.MAX_THREADS) {
                throw new CriaException("--threads " + threads + ": use 0 (one per core) to " + CpuBackend.MAX_THREADS);
            }
        }
    }

    private final GgufFile file;
    private final Options options;
    private final LlamaConfig config;
    private final Tokenizer tokenizer;
    private final Backend inner;
    private final TapBackend backend;
    private final Llama llama;

    private Calibration(GgufFile file, Options options, Consumer<String> log) {
        this.file = file;
        this.options = options;
        GgufTensorInfo emb = file.tensor("token_embd.weight");
        int vocabRows = emb == null ? 0 : (int) Math.min(Integer.MAX_VALUE, emb.rows());
        this.config = LlamaConfig.from(file.metadata(), vocabRows);
        if (!file.metadata().has("tokenizer.ggml.model")) {
            throw new CriaException(file.path() + ": the model has no tokenizer, so calibration text cannot be read");
        }
        this.tokenizer = Tokenizer.fromMetadata(file.metadata());
        if (tokenizer.vocabSize() != config.vocab()) {
            throw new CriaException(file.path() + ": the vocabulary has " + tokenizer.vocabSize() + " tokens but the model has "
                    + config.vocab() + " embedding rows; the file is damaged");
        }
        LlamaWeights.Checked checked = LlamaWeights.check(file, config);
        this.inner = "ref".equals(options.backend()) ? new RefBackend() : new CpuBackend(options.threads());
        try {
            this.backend = new TapBackend(inner);
            LlamaWeights weights = LlamaWeights.load(checked, backend, log == null ? w -> { } : log);
            this.llama = new Llama(config, weights, backend);
        } catch (RuntimeException | Error e) {
            inner.close();
            throw e;
        }
    }

    /**
     * A calibration runner over a model file (the caller keeps ownership of {@code file}).
     *
     * @param log receives one-line warnings (unused tensors), or null
     * @throws CriaException when the file is not a model Cria runs or has no tokenizer
     */
    public static Calibration open(GgufFile file, Options options, Consumer<String> log) {
        return new Calibration(file, options, log);
    }

    public LlamaConfig config() {
        return config;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /**
     * The text tokenized (with BOS) and cut into chunks of {@code ctx} tokens whose first token is
     * BOS; at most {@code maxChunks}. A remainder shorter than a chunk is not used.
     *
     * @throws CriaException when the file cannot be read or gives fewer than {@code ctx} tokens
     */
    public int[][] chunks(Path text) {
        String s;
        try {
            long size = Files.size(text);
            if (size > MAX_TEXT_BYTES) {
                throw new CriaException(text + ": " + (size >> 20) + " MiB of calibration text; use at most "
                        + (MAX_TEXT_BYTES >> 20) + " MiB (a few hundred KB is plenty)");
            }
            s = Files.readString(text);
        } catch (NoSuchFileException e) {
            throw new CriaException(text + ": no such file");
        } catch (java.nio.charset.MalformedInputException e) {
            throw new CriaException(text + ": not UTF-8 text");
        } catch (IOException e) {
            throw new CriaException(text + ": cannot read: " + e.getMessage());
        }
        return chunks(tokenizer.encode(s, true, false), text.toString());
    }

    /** As {@link #chunks(Path)} for tokens already encoded ({@code source} names them in errors). */
    public int[][] chunks(int[] tokens, String source) {
        int ctx = options.ctx();
        int n = tokens.length / ctx;
        if (n == 0) {
            throw new CriaException(source + ": " + tokens.length + " tokens, fewer than one chunk of " + ctx
                    + "; give more calibration text or a smaller --ctx");
        }
        if (options.maxChunks() > 0) {
            n = Math.min(n, options.maxChunks());
        }
        int bos = tokenizer.bos();
        int[][] out = new int[n][];
        for (int c = 0; c < n; c++) {
            out[c] = java.util.Arrays.copyOfRange(tokens, c * ctx, (c + 1) * ctx);
            if (bos >= 0 && tokenizer.addsBos()) {
                out[c][0] = bos;
            }
        }
        return out;
    }

    /**
     * Runs each chunk through the model as one batch; {@code tap} sees the inputs of every weight
     * product (not the output product unless {@link Options#processOutput}). {@code progress}
     * (may be null) is told the tokens of each chunk when it is done.
     */
    public void run(int[][] chunks, Tap tap, LongConsumer progress) {
        int ctx = options.ctx();
        boolean all = options.processOutput();
        Llama.Scratch scratch = llama.newScratch(ctx, all ? ctx : 1);
        try (KvCache cache = backend.kvCache(KvCache.Config.single(config.layers(), config.kvDim(), KvCache.Type.F32, ctx))) {
            Batch batch = new Batch(ctx);
            backend.ops.tap = tap;
            backend.ops.skip = all ? null : llama.weights().output;
            for (int[] chunk : chunks) {
                if (chunk.length != ctx) {
                    throw new IllegalArgumentException("chunk of " + chunk.length + " tokens, expected " + ctx);
                }
                int seq = cache.newSequence();
                try {
                    cache.reserve(seq, ctx);
                    batch.clear();
                    for (int i = 0; i < ctx; i++) {
                        batch.add(chunk[i], i, seq, all || i == ctx - 1);
                    }
                    llama.forward(batch, cache, scratch);
                } finally {
                    cache.freeSequence(seq);
                }
                if (progress != null) {
                    progress.accept(ctx);
                }
            }
        } finally {
            backend.ops.tap = null;
        }
    }

    @Override
    public void close() {
        inner.close();
    }

    /** The host backend with its ops wrapped so that every product's input passes the tap first. */
    private static final class TapBackend implements Backend {
        private final Backend inner;
        private final TapOps ops;

        TapBackend(Backend inner) {
            this.inner = inner;
            this.ops = new TapOps(inner);
        }

        @Override
        public String name() {
            return inner.name();
        }

        @Override
        public String describe() {
            return inner.describe();
        }

        @Override
        public Ops ops() {
            return ops;
        }

        @Override
        public TrainOps trainOps() {
            return inner.trainOps();
        }

        @Override
        public Buf allocate(String name, int rows, int cols) {
            return inner.allocate(name, rows, cols);
        }

        @Override
        public Weight weight(Tensor tensor) {
            return inner.weight(tensor);
        }

        @Override
        public KvCache kvCache(KvCache.Config config) {
            return inner.kvCache(config);
        }

        @Override
        public void download(Buf src, int rows, float[] dst) {
            inner.download(src, rows, dst);
        }

        @Override
        public void sync() {
            inner.sync();
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    /**
     * The backend's plain ops, with the tap in front of {@code matmul}. The fused ops are left to
     * their default bodies (the plain ops one after another), so every product passes here.
     */
    private static final class TapOps implements Ops {
        private final Backend backend;
        private final Ops ops;
        Tap tap;
        Weight skip;
        private float[] copy = new float[0];

        TapOps(Backend backend) {
            this.backend = backend;
            this.ops = backend.ops();
        }

        @Override
        public void matmul(Buf x, int n, Weight[] w, Buf[] out) {
            if (tap != null) {
                MemorySegment rows;
                if (x instanceof HostBuf h) {
                    rows = h.segment();
                } else {
                    int len = Math.multiplyExact(n, x.cols());
                    if (copy.length < len) {
                        copy = new float[len];
                    }
                    backend.download(x, n, copy);
                    rows = MemorySegment.ofArray(copy);
                }
                for (Weight weight : w) {
                    if (weight != skip) {
                        tap.accept(weight, rows, n);
                    }
                }
            }
            ops.matmul(x, n, w, out);
        }

        @Override
        public void beginStep(Batch batch, KvCache cache) {
            ops.beginStep(batch, cache);
        }

        @Override
        public void endStep() {
            ops.endStep();
        }

        @Override
        public void embed(Weight table, Batch batch, Buf x) {
            ops.embed(table, batch, x);
        }

        @Override
        public void rmsnorm(Buf x, Weight w, float eps, int n, Buf out) {
            ops.rmsnorm(x, w, eps, n, out);
        }

        @Override
        public void rope(Buf q, Buf k, int headDim, Batch batch, Rope rope) {
            ops.rope(q, k, headDim, batch, rope);
        }

        @Override
        public void storeKv(KvCache cache, int layer, Buf k, Buf v, Batch batch) {
            ops.storeKv(cache, layer, k, v, batch);
        }

        @Override
        public void attention(Buf q, KvCache cache, int layer, int heads, int kvHeads, int headDim, AttnSpec spec, Batch batch, Buf out) {
            ops.attention(q, cache, layer, heads, kvHeads, headDim, spec, batch, out);
        }

        @Override
        public void swiglu(Buf a, Buf b, int n) {
            ops.swiglu(a, b, n);
        }

        @Override
        public void add(Buf x, Buf y, int n) {
            ops.add(x, y, n);
        }

        @Override
        public void gather(Buf x, int[] rows, int m, Buf out) {
            ops.gather(x, rows, m, out);
        }

        @Override
        public void addBias(Buf x, Weight bias, int n) {
            ops.addBias(x, bias, n);
        }

        @Override
        public void rmsnormHeads(Buf x, Weight w, float eps, int headDim, int n) {
            ops.rmsnormHeads(x, w, eps, headDim, n);
        }

        @Override
        public void geglu(Buf a, Buf b, int n) {
            ops.geglu(a, b, n);
        }

        @Override
        public void scale(Buf x, float s, int n) {
            ops.scale(x, s, n);
        }

        @Override
        public void softcap(Buf x, float cap, int n) {
            ops.softcap(x, cap, n);
        }
    }
}
