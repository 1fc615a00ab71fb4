// Options shared by every verb that runs a model: the file, the backend, threads, context, KV cache type.
package cria.cli;

import cria.backend.KvCache;
import cria.engine.ModelOptions;
import cria.engine.SessionOptions;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** A picocli mixin: {@code -m MODEL [--lora FILE[:SCALE]]... [--backend B] [-t N] [-c N] [--kv-type T] [-b N]}. */
final class ModelArgs {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL", description = "the GGUF model file")
    Path model;

    @Option(names = "--lora", paramLabel = "FILE[:SCALE]",
            description = "apply a LoRA adapter (llama.cpp's GGUF format) at SCALE (default 1), unmerged; repeat to add several, "
                    + "e.g. --lora style.gguf --lora facts.gguf:0.5 ('cria merge' folds them into a model file)")
    java.util.List<String> loras = new java.util.ArrayList<>();

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "B",
            description = "auto (CUDA when usable, else cpu), cpu, ref (scalar reference) or cuda; default: ${DEFAULT-VALUE}")
    String backend;

    @Option(names = {"-t", "--threads"}, defaultValue = "0", paramLabel = "N",
            description = "CPU threads (default: one per core)")
    int threads;

    @Option(names = {"-c", "--ctx"}, defaultValue = "0", paramLabel = "N",
            description = "context length in tokens (default: the model's, at most 4096)")
    int ctx;

    @Option(names = "--kv-type", defaultValue = "F16", paramLabel = "T",
            description = "KV cache type: F16 or F32 (default: ${DEFAULT-VALUE})")
    KvCache.Type kvType;

    @Option(names = {"-b", "--batch-size"}, defaultValue = "256", paramLabel = "N",
            description = "prompt tokens per forward step (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = {"-v", "--verbose"}, description = "log model and backend details on stderr")
    boolean verbose;

    /** The CPU threads a run uses: --threads, at most one per core (the engine clamps the same way). */
    int effectiveThreads() {
        return cria.engine.Backends.cpuThreadCount(threads);
    }

    ModelOptions modelOptions() {
        if (threads < 0) {
            throw new cria.CriaException("--threads must be 0 (all cores) or positive, got " + threads);
        }
        ModelOptions o = new ModelOptions(backend, threads, verbose);
        for (String l : loras) {
            o = o.withLora(cria.engine.LoraSpec.parse(l));
        }
        return o;
    }

    /** The adapters as given, for reports: "FILE (scale S)", comma-separated; empty for none. */
    String loraSummary() {
        java.util.List<String> parts = new java.util.ArrayList<>();
        for (String l : loras) {
            cria.engine.LoraSpec s = cria.engine.LoraSpec.parse(l);
            parts.add(s.file() + " (scale " + s.scale() + ")");
        }
        return String.join(", ", parts);
    }

    SessionOptions sessionOptions() {
        if (ctx < 0) {
            throw new cria.CriaException("--ctx must be positive, got " + ctx);
        }
        if (batchSize <= 0) {
            throw new cria.CriaException("--batch-size must be positive, got " + batchSize);
        }
        return SessionOptions.defaults().withContextLength(ctx).withKvType(kvType).withBatchSize(batchSize);
    }
}
