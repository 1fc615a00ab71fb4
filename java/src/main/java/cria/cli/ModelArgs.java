// Options shared by every verb that runs a model: the file, the backend, threads, context, KV cache type.
package cria.cli;

import cria.backend.KvCache;
import cria.engine.ModelOptions;
import cria.engine.SessionOptions;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** A picocli mixin: {@code -m MODEL [--backend B] [-t N] [-c N] [--kv-type T] [-b N]}. */
final class ModelArgs {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL", description = "the GGUF model file")
    Path model;

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
        return new ModelOptions(backend, threads, verbose);
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
