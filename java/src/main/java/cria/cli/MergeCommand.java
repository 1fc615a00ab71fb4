// `cria merge -m BASE --lora A.gguf[:SCALE] -o OUT [--type T]`: folds LoRA adapters into a model's weights.
package cria.cli;

import cria.CriaException;
import cria.engine.LoraSpec;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufWriter;
import cria.model.LlamaConfig;
import cria.model.LlamaWeights;
import cria.model.LoraAdapter;
import cria.model.LoraStack;
import cria.quantize.LlamaFileType;
import cria.quantize.QuantPlan;
import cria.quantize.Quantizer;
import cria.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Writes a model whose adapted tensors are {@code W + Σ s_i·B_i·A_i}, computed in float row by
 * row (the base row dequantized, the correction added; one row per thread on the heap at a
 * time), so that it runs without the adapters and gives what the base with {@code --lora}
 * gives. Every other tensor and all metadata are copied as they are; the merged tensors are F32
 * (exact) unless {@code --type} sends the whole output through the quantizer.
 */
@Command(name = "merge", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Fold LoRA adapters into a model's weights: each adapted tensor W becomes W + s·B·A",
            "(s = scale · alpha / rank; several adapters add up), so the output runs as the base with --lora does.",
            "Adapted tensors are written F32 (exact); all other tensors and the metadata are copied as they are.",
            "With --type the whole output is quantized as 'cria quantize' would quantize it.",
            "The file is written beside OUT.gguf and renamed over it only when complete.",
            "Examples:",
            "  cria merge -m base.gguf --lora style.gguf --lora facts.gguf:0.5 -o merged.gguf",
            "  cria merge -m base-f16.gguf --lora style.gguf -o merged-Q4_K_M.gguf --type Q4_K_M"})
final class MergeCommand extends Verb {

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "BASE.gguf", description = "the base model the adapters were trained on")
    Path model;

    @Option(names = "--lora", required = true, paramLabel = "FILE[:SCALE]",
            description = "a LoRA adapter (llama.cpp's GGUF format) and its scale (default 1); repeat for several")
    List<String> loras;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.gguf", description = "the merged model to write")
    Path output;

    @Option(names = "--type", paramLabel = "T",
            description = "quantize the whole output to this llama.cpp file type (e.g. Q8_0, Q4_K_M, F16; see 'cria quantize --help')")
    String type;

    @Option(names = "--allow-requantize", description = "with --type: accept already-quantized base tensors (quality suffers twice)")
    boolean allowRequantize;

    @Option(names = "--threads", paramLabel = "N", description = "worker threads (default: every core, ${DEFAULT-VALUE} here)")
    int threads = Runtime.getRuntime().availableProcessors();

    /** Rows merged per task. */
    private static final int CHUNK_ROWS = 64;

    /** The merge's worker threads (null with one thread). */
    private ExecutorService pool;

    @Override
    public Integer call() {
        List<LoraSpec> specs = new ArrayList<>();
        for (String s : loras) {
            specs.add(LoraSpec.parse(s));
        }
        LlamaFileType ftype = type == null ? null : LlamaFileType.parse(type);
        if (threads < 1) {
            throw new CriaException("--threads must be at least 1, got " + threads);
        }
        OutputFiles.check(output, "-o", OutputFiles.Kind.FILE); // before any work: GgufWriter renames over it
        notAnInput(model);
        specs.forEach(s -> notAnInput(s.file()));
        long t0 = System.nanoTime();
        try (GgufFile base = GgufFile.open(model)) {
            GgufTensorInfo emb = base.tensor("token_embd.weight");
            LlamaConfig config = LlamaConfig.from(base.metadata(), emb == null ? 0 : (int) Math.min(Integer.MAX_VALUE, emb.rows()));
            LlamaWeights.check(base, config); // a model Cria runs: names, shapes, types
            pool = threads == 1 ? null : Executors.newFixedThreadPool(threads, r -> {
                Thread t = new Thread(r, "cria-merge");
                t.setDaemon(true);
                return t;
            });
            try (LoraStack stack = LoraStack.open(base, specs.stream().map(LoraSpec::file).toList(), LoraSpec.scales(specs), err()::println); Quantizer q = new Quantizer(threads)) {
                for (String name : stack.products().keySet()) {
                    if (base.tensor(name) == null) { // adapted, but stored as low-rank factors (cria lowrank)
                        throw new CriaException(model + ": " + name + " is factorized (low-rank factors), which merge cannot fold an adapter into;"
                                + " multiply the factors back first: cria lowrank -m " + model + " --dense -o dense.gguf");
                    }
                }
                List<GgufTensorInfo> tensors = new ArrayList<>();
                for (GgufTensorInfo t : base.tensors()) {
                    // an adapted tensor leaves the merge as F32 rows (the quantizer may take it further)
                    tensors.add(stack.product(t.name()) == null ? t
                            : new GgufTensorInfo(t.name(), GgmlType.F32, t.shape(), 0, 4 * t.elements()));
                }
                long values = 0;
                for (GgufTensorInfo t : tensors) {
                    values += ftype != null || stack.product(t.name()) != null ? t.elements() : 0;
                }
                Progress progress = new Progress(err(), "merge", values, "values", Progress.stderrIsTerminal());
                GgufWriter w;
                if (ftype == null) {
                    w = new GgufWriter(copyOf(base));
                    for (GgufTensorInfo t : tensors) {
                        Tensor src = Tensor.of(base, base.tensor(t.name()));
                        LoraStack.Product p = stack.product(t.name());
                        if (p == null) {
                            w.addTensor(t.name(), t.type(), t.shape(), src.data());
                        } else {
                            w.addTensor(t.name(), GgmlType.F32, t.shape(), dst -> merge(src, stack, p, dst, progress));
                        }
                    }
                } else {
                    List<QuantPlan.Item> plan = QuantPlan.of(base.metadata(), tensors, ftype, false);
                    QuantizeCommand.check(plan, model, allowRequantize);
                    w = new GgufWriter(QuantizeCommand.quantizedMetadata(base.metadata(), output, ftype));
                    for (QuantPlan.Item it : plan) {
                        GgufTensorInfo t = it.tensor();
                        Tensor src = Tensor.of(base, base.tensor(t.name()));
                        LoraStack.Product p = stack.product(t.name());
                        w.addTensor(t.name(), it.target(), t.shape(), dst -> {
                            if (p == null) {
                                q.convert(src, it.target(), dst, progress::add);
                            } else {
                                mergeAndConvert(src, stack, p, it.target(), dst, q, progress);
                            }
                        });
                    }
                }
                w.write(output, (i, count, name, bytes) -> progress.status("[" + (i + 1) + "/" + count + "] " + name));
                progress.finish();
                out().printf(Locale.ROOT, "%s: %d tensor%s merged from %d adapter%s (%s), %d copied%s, %s, %.1f s%n", output,
                        stack.products().size(), stack.products().size() == 1 ? "" : "s", specs.size(), specs.size() == 1 ? "" : "s",
                        ftype == null ? "F32" : "then " + ftype, tensors.size() - stack.products().size(),
                        ftype == null ? " as they are" : "", Units.bytes(fileSize()), (System.nanoTime() - t0) / 1e9);
            } finally {
                if (pool != null) {
                    pool.shutdownNow();
                }
            }
        }
        return 0;
    }

    /** The base's metadata, in order, for the output. */
    private cria.gguf.Metadata copyOf(GgufFile base) {
        cria.gguf.Metadata md = new cria.gguf.Metadata(output.toString());
        base.metadata().asMap().forEach(md::put);
        return md;
    }

    private long fileSize() {
        try {
            return Files.size(output);
        } catch (IOException e) {
            return 0;
        }
    }

    /** Refuses to write over an input (the model or an adapter is mapped while the output is written). */
    private void notAnInput(Path in) {
        try {
            if (Files.exists(output) && Files.exists(in) && Files.isSameFile(output, in)) {
                throw new CriaException(output + " is also an input (" + in + "); write the merged model to another file");
            }
        } catch (IOException e) {
            // cannot tell: the open of the input or the write reports the real problem
        }
    }


    /** dst (F32 rows) = the base tensor's rows plus the correction's, in parallel chunks of rows. */
    private void merge(Tensor src, LoraStack stack, LoraStack.Product p, MemorySegment dst, Progress progress) {
        int n = src.rowLength();
        long rows = src.rows();
        List<Runnable> tasks = new ArrayList<>();
        for (long r0 = 0; r0 < rows; r0 += CHUNK_ROWS) {
            long first = r0;
            long last = Math.min(rows, r0 + CHUNK_ROWS);
            tasks.add(() -> {
                float[] row = new float[n];
                for (long r = first; r < last; r++) {
                    src.dequantizeRow(r, row, 0);
                    stack.addTo(p, r, row);
                    MemorySegment.copy(row, 0, dst, ValueLayout.JAVA_FLOAT_UNALIGNED, 4L * n * r, n);
                }
                progress.add((last - first) * n);
            });
        }
        run(tasks);
    }

    /** The merged tensor in a temporary F32 buffer (this tensor only, off the heap), then converted to its target type. */
    private void mergeAndConvert(Tensor src, LoraStack stack, LoraStack.Product p, GgmlType target, MemorySegment dst, Quantizer q,
                                 Progress progress) {
        long bytes = 4L * src.rows() * src.rowLength();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment tmp;
            try {
                tmp = arena.allocate(Math.max(bytes, 64), 64).asSlice(0, bytes);
            } catch (OutOfMemoryError e) {
                throw new CriaException("merging " + src.name() + " needs " + (bytes >> 20) + " MiB of memory, which this machine cannot give");
            }
            merge(src, stack, p, tmp, progress);
            q.convert(new Tensor(src.name(), GgmlType.F32, src.shape(), tmp), target, dst, null);
        }
    }

    private void run(List<Runnable> tasks) {
        if (pool == null || tasks.size() == 1) {
            tasks.forEach(Runnable::run);
            return;
        }
        List<Future<?>> futures = new ArrayList<>();
        try {
            for (Runnable t : tasks) {
                futures.add(pool.submit(t));
            }
            for (Future<?> f : futures) {
                f.get();
            }
        } catch (InterruptedException e) {
            futures.forEach(f -> f.cancel(true));
            Thread.currentThread().interrupt();
            throw new CriaException("merge interrupted");
        } catch (ExecutionException e) {
            futures.forEach(f -> f.cancel(true));
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            if (e.getCause() instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(e.getCause());
        }
    }
}
