// A loaded model: the mapped GGUF file, its configuration, its weights resident in a backend.
package cria.engine;

import cria.CriaException;
import cria.backend.Backend;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.model.Llama;
import cria.model.LlamaConfig;
import cria.model.LlamaWeights;
import cria.model.LoraAdapter;
import cria.model.LoraStack;
import cria.tokenizer.ChatTemplate;
import cria.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;

/**
 * A Llama-family GGUF model, ready to run. Loading maps the file (no copy, no heap) and makes
 * the weights resident in the chosen backend. Open {@link Session}s to evaluate and generate;
 * close the model when done (sessions first).
 *
 * <p>{@code Model} is the public handle on a loaded file (its metadata, tokenizer, chat template,
 * backend and memory); the network it runs is the internal {@code cria.model.Llama}, the forward
 * pass written once against the backend's ops, which programs never meet.
 *
 * <p>Thread-safe: several threads may each use their own session of one model; their forward
 * steps take turns on the backend (for throughput over many sequences use a
 * {@link BatchGenerator}). Loading fails with a {@link CriaException} (one line: what and where)
 * for a missing, corrupt or unsupported file, a model that would not fit this machine, or a
 * missing JVM option, or a LoRA adapter that is not one or was made for another model.
 *
 * <p>LoRA adapters ({@link ModelOptions#withLora}) are applied unmerged, on every backend: each
 * adapted product gets its low-rank correction in the forward pass, and several adapters add up.
 * ({@code cria merge} writes a model with them folded into its weights instead.)
 *
 * <pre>{@code
 * try (Model model = Model.load(Path.of("model.gguf"), ModelOptions.defaults());
 *      Session session = model.newSession(SessionOptions.defaults())) {
 *     float[] logits = session.eval(new int[] {1, 403, 407});
 * }
 * }</pre>
 */
public final class Model implements AutoCloseable {
    private final GgufFile file;
    private final LlamaConfig config;
    private final Backend backend;
    private final Llama llama;
    private final Tokenizer tokenizer;
    private final List<String> warnings;
    private final LoraStack adapters;
    private final List<LoraSpec> loras;

    private Model(GgufFile file, LlamaConfig config, Backend backend, Llama llama, Tokenizer tokenizer, List<String> warnings,
                  LoraStack adapters, List<LoraSpec> loras) {
        this.warnings = List.copyOf(warnings);
        this.adapters = adapters;
        this.loras = List.copyOf(loras);
        this.file = file;
        this.config = config;
        this.backend = backend;
        this.llama = llama;
        this.tokenizer = tokenizer;
    }

    /**
     * Loads a model.
     *
     * @throws CriaException when the file is missing, corrupt, not a supported model, or too large
     */
    public static Model load(Path path, ModelOptions options) {
        return load(path, options, null);
    }

    /** Loads a model, sending log lines (backend choice, details when verbose) to {@code log} (may be null). */
    public static Model load(Path path, ModelOptions options, Consumer<String> log) {
        return load(path, options, log, null);
    }

    /**
     * Loads a model onto a backend the caller made (for tests, or programs that manage backends
     * themselves). The model takes ownership: closing it closes the backend.
     */
    public static Model load(Path path, Backend backend, Consumer<String> log) {
        return load(path, ModelOptions.defaults(), log, backend);
    }

    /**
     * Loads a model onto a backend the caller made, with the options' LoRA adapters (their
     * backend and thread count are not used). The model takes ownership of the backend.
     */
    public static Model load(Path path, ModelOptions options, Backend backend, Consumer<String> log) {
        return load(path, options, log, backend);
    }

    private static Model load(Path path, ModelOptions options, Consumer<String> log, Backend given) {
        long t0 = System.nanoTime();
        GgufFile file = GgufFile.open(path);
        prefault(file);
        Backend backend = given;
        LoraStack adapters = LoraStack.NONE;
        try {
            GgufTensorInfo emb = file.tensor("token_embd.weight");
            int vocabRows = emb == null ? 0 : (int) Math.min(Integer.MAX_VALUE, emb.rows());
            LlamaConfig config = LlamaConfig.from(file.metadata(), vocabRows);
            checkMemory(file, 0);
            Tokenizer tokenizer = file.metadata().has("tokenizer.ggml.model") ? Tokenizer.fromMetadata(file.metadata()) : null;
            // As llama.cpp: the token list and the embedding rows must agree. More tokens than rows
            // cannot be embedded; fewer leave ids the model can generate but nobody can decode.
            if (tokenizer != null && tokenizer.vocabSize() != config.vocab()) {
                throw new CriaException(path + ": the vocabulary has " + tokenizer.vocabSize() + " tokens but the model has "
                        + config.vocab() + " embedding rows; the file is damaged or its vocabulary belongs to another model");
            }
            LlamaWeights.Checked checked = LlamaWeights.check(file, config);
            List<String> adapterNotes = new ArrayList<>();
            // adapters are checked and read (every value) before a backend exists: a refused one costs no device set-up
            adapters = LoraStack.open(file, options.loras().stream().map(LoraSpec::file).toList(), LoraSpec.scales(options.loras()), adapterNotes::add);
            checkMemory(file, adapters.bytes());
            if (backend == null) {
                backend = Backends.create(options.backend(), options.threads(), log);
            }
            List<String> warnings = new ArrayList<>();
            if (backend instanceof cria.backend.cpu.CpuBackend cpu && cpu.notice() != null) {
                warnings.add(cpu.notice()); // already said on stderr, once per JVM
            }
            LlamaWeights weights = LlamaWeights.load(checked, backend, w -> {
                warnings.add(w);
                if (log != null) {
                    log.accept(w);
                }
            });
            for (String note : adapterNotes) {
                warnings.add(note);
                if (log != null) {
                    log.accept(note);
                }
            }
            Llama llama = new Llama(config, weights, adapters, backend);
            if (log != null && options.verbose()) {
                log.accept(String.format(java.util.Locale.ROOT, "cria: %s; backend %s; loaded in %.0f ms", config.summary(),
                        backend.describe(), (System.nanoTime() - t0) / 1e6));
                if (!adapters.isEmpty()) {
                    log.accept(String.format(java.util.Locale.ROOT, "cria: LoRA: %s; %d tensors adapted, stacked rank %d, %.1f MiB",
                            options.loras(), adapters.products().size(), adapters.rank(), adapters.bytes() / 1048576.0));
                }
            }
            return new Model(file, config, backend, llama, tokenizer, warnings, adapters, options.loras());
        } catch (RuntimeException | Error e) {
            if (backend != null) {
                backend.close();
            }
            adapters.close();
            file.close();
            throw e;
        }
    }


    /**
     * Touches every page of the tensor data on a background thread, so that the first forward
     * pass does not stop on hundreds of thousands of page faults (the mapping is lazy). It runs
     * while the tokenizer and the backend are set up, on a core that is otherwise idle then, and
     * stops quietly if the file is closed first.
     */
    private static void prefault(GgufFile file) {
        java.lang.foreign.MemorySegment seg = file.segment();
        long start = file.dataOffset();
        Thread t = new Thread(() -> {
            try {
                long sum = 0;
                for (long off = start; off < seg.byteSize(); off += 4096) {
                    sum += seg.get(java.lang.foreign.ValueLayout.JAVA_BYTE, off);
                }
                if (sum == 42) {
                    Thread.onSpinWait(); // keeps the reads from being optimized away
                }
            } catch (RuntimeException closed) {
                // the model was closed while warming up: nothing to do
            }
        }, "cria-prefault");
        t.setDaemon(true);
        t.setPriority(Thread.MIN_PRIORITY);
        t.start();
    }

    private static void checkMemory(GgufFile file, long adapterBytes) {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            long total = os.getTotalMemorySize();
            long need = file.fileSize() + adapterBytes;
            if (total > 0 && need > total) {
                throw new CriaException(file.path() + ": the model takes " + (file.fileSize() >> 20) + " MiB"
                        + (adapterBytes > 0 ? " and its adapters " + (adapterBytes >> 20) + " MiB" : "") + " but this machine has "
                        + (total >> 20) + " MiB of memory; use a smaller or more strongly quantized model");
            }
        }
    }

    /**
     * Warnings found while loading, one line each; usually empty: tensors the model does not use,
     * or the CPU backend running its pure-Java path (much slower) because no native library fits
     * this host.
     */
    public List<String> warnings() {
        return warnings;
    }

    /**
     * One line for logs: the model's shape and where it runs, e.g. {@code llama: dim 2048, 16
     * layers, ...; cpu (2 threads, native kernels AVX-512 VNNI, Vector API 512-bit)}. Says when
     * the CPU runs without its native kernels, and why.
     */
    public String describe() {
        return config.summary() + "; " + backend.describe();
    }

    /** The model's shape (dimensions, layers, heads, vocabulary, context). */
    public LlamaConfig config() {
        return config;
    }

    /**
     * The model's tokenizer.
     *
     * @throws CriaException when the file carries no vocabulary
     */
    public Tokenizer tokenizer() {
        if (tokenizer == null) {
            throw new CriaException(file.path() + ": this model file has no vocabulary (tokenizer.ggml.*); pass token ids instead of text");
        }
        return tokenizer;
    }

    /** True when the file carries a vocabulary. */
    public boolean hasTokenizer() {
        return tokenizer != null;
    }

    /** The chat template of the file (or the Llama 2/3 format its vocabulary suggests). */
    public ChatTemplate chatTemplate() {
        return ChatTemplate.fromMetadata(file.metadata(), tokenizer());
    }

    /**
     * The token ids of a conversation rendered with the model's chat template, ready to
     * generate the assistant's turn (BOS once, even when the template writes it itself).
     */
    public int[] chatTokens(java.util.List<ChatTemplate.Message> messages) {
        String rendered = chatTemplate().render(messages, true);
        int[] ids = tokenizer().encode(rendered, true, true);
        int bos = tokenizer().bos();
        if (ids.length >= 2 && ids[0] == bos && ids[1] == bos) {
            ids = java.util.Arrays.copyOfRange(ids, 1, ids.length);
        }
        return ids;
    }

    /** The mapped file (metadata, tensor table); valid until the model is closed. */
    public GgufFile file() {
        return file;
    }

    /** The backend the weights live in (an internal type, for tools and tests). */
    public Backend backend() {
        return backend;
    }

    /** The model graph (for engine internals and tests). */
    public Llama llama() {
        return llama;
    }

    /** The LoRA adapters applied (unmerged), with their scales, in the order given; empty for none. */
    public List<LoraSpec> loras() {
        return loras;
    }

    /** Bytes of host memory the adapters' corrections take (F32 copies; also resident on a GPU). */
    long adapterBytes() {
        return adapters.bytes();
    }

    /** Opens a session (its own KV cache and activations). */
    public Session newSession(SessionOptions options) {
        return new Session(this, options);
    }

    /**
     * Runs one token through the model in a throwaway session, so that what a backend does on
     * first use (the CPU kernels pack each quantized weight into their layout; the JIT compiles
     * the step) happens now and not in the first request a server answers.
     */
    public void warmUp() {
        try (Session s = newSession(SessionOptions.defaults().withContextLength(Math.min(16, config().trainedContextLength())).withBatchSize(1))) {
            s.eval(new int[] {0});
        }
    }

    @Override
    /** Frees the weights' backend memory and unmaps the file; close its sessions and batch generators first. */
    public void close() {
        backend.close();
        adapters.close();
        file.close();
    }
}
