// `cria quantize IN.gguf OUT.gguf TYPE`: re-encodes a model's weights the way llama-quantize does (same types, same bytes).
package cria.cli;

import cria.CriaException;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import cria.tensor.Codecs;
import cria.quantize.ImportanceMatrix;
import cria.quantize.ImportanceUse;
import cria.quantize.LlamaFileType;
import cria.quantize.QuantPlan;
import cria.quantize.Quantizer;
import cria.tensor.Tensor;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * Quantizes a GGUF model. Tensor choice, mixes, tensor order and metadata follow llama-quantize,
 * with or without an importance matrix ({@code --imatrix}), so that the output file is
 * byte-identical to llama.cpp's.
 */
@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = {"Quantize a GGUF model as llama-quantize does (same tensor types, same bytes).",
            "Matrices are quantized, norms and other 1-D tensors kept; metadata is copied with general.file_type and "
                + "general.quantization_version set.",
            "TYPE: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q2_K_S, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, "
                + "Q5_K_M, Q6_K, IQ4_NL, IQ4_XS; Q3_K, Q4_K and Q5_K mean the _M mixes; Q2_K_S needs --imatrix.",
            "--imatrix FILE weighs each matrix's columns by how much signal they carried on calibration text (an importance "
                + "matrix from cria imatrix or llama-imatrix, GGUF or .dat), for every type llama.cpp weighs (K-quants, IQ4, "
                + "Q4_0..Q5_1), as llama-quantize --imatrix does.",
            "Without --pure the mixes give some tensors more bits (Q4_K_M: the output matrix and some attn_v and "
                + "ffn_down layers in Q6_K).",
            "Example: cria quantize model-f16.gguf model-Q4_K_M.gguf Q4_K_M",
            "Example: cria quantize --imatrix imatrix.gguf model-f16.gguf model-IQ4_XS.gguf IQ4_XS"})
final class QuantizeCommand extends Verb {

    @Parameters(index = "0", paramLabel = "IN.gguf", description = "the model to quantize (best F32, F16 or BF16)")
    Path input;

    @Parameters(index = "1", paramLabel = "OUT.gguf", description = "the file to write (replaced only once complete)")
    Path output;

    @Parameters(index = "2", paramLabel = "TYPE", description = "the llama.cpp file type to produce, e.g. Q4_K_M or Q8_0")
    String type;

    @Option(names = "--pure", description = "every quantizable weight in TYPE's base type: no mix, output and token_embd included")
    boolean pure;

    @Option(names = "--threads", paramLabel = "N", description = "worker threads (default: every core, ${DEFAULT-VALUE} here)")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--imatrix", paramLabel = "FILE",
            description = "importance matrix to weight the quantization by (GGUF or legacy .dat, from cria imatrix or llama-imatrix)")
    String imatrix;

    @Option(names = "--allow-requantize", description = "accept already-quantized input tensors (quality suffers twice)")
    boolean allowRequantize;

    private static final Set<String> DROPPED_KEYS = Set.of("general.quantization_version", "general.file_type",
            "split.no", "split.count", "split.tensors.count");

    @Override
    public Integer call() {
        LlamaFileType ftype = LlamaFileType.parse(type);
        if (threads < 1) {
            throw new CriaException("--threads must be at least 1, got " + threads);
        }
        OutputFiles.check(output, "OUT.gguf", OutputFiles.Kind.FILE); // before any work: GgufWriter renames over it
        long t0 = System.nanoTime();
        ImportanceMatrix im = null;
        if (imatrix != null) {
            try {
                im = ImportanceMatrix.read(Path.of(imatrix));
            } catch (java.nio.file.InvalidPathException e) {
                throw new CriaException("--imatrix '" + imatrix + "' is not a usable path: " + e.getReason());
            }
        }
        try (GgufFile in = GgufFile.open(input); Quantizer q = new Quantizer(threads)) {
            List<QuantPlan.Item> plan = QuantPlan.of(in.metadata(), in.tensors(), ftype, pure, im != null);
            check(plan, input, allowRequantize);
            ImportanceUse use = ImportanceUse.check(plan, ftype, im, imatrix);
            Metadata md = quantizedMetadata(in.metadata(), output, ftype);
            use.addMetadata(md);

            long totalValues = 0;
            for (QuantPlan.Item it : plan) {
                totalValues += it.tensor().elements();
            }
            Progress progress = new Progress(err(), "quantize", totalValues, "values", Progress.stderrIsTerminal());
            GgufWriter w = new GgufWriter(md);
            for (QuantPlan.Item it : plan) {
                GgufTensorInfo ti = it.tensor();
                if (it.note().contains("instead")) {
                    err().println("cria: warning: " + ti.name() + ": " + it.note());
                }
                Tensor src = Tensor.of(in, ti);
                float[] weights = use.weightsFor(it);
                w.addTensor(ti.name(), it.target(), ti.shape(), dst -> q.convert(src, it.target(), weights, dst, progress::add));
            }
            w.write(output, (i, count, name, bytes) -> progress.status("[" + (i + 1) + "/" + count + "] " + name));
            progress.finish();
            if (im != null) {
                err().println(importanceReport(im, use));
            }
            summary(plan, ftype, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    /** The input's metadata for a file of type {@code ftype}: split keys dropped, file type and quantization version set (last, as llama.cpp does). */
    static Metadata quantizedMetadata(Metadata in, Path output, LlamaFileType ftype) {
        Metadata md = new Metadata(output.toString());
        for (Map.Entry<String, GgufValue> e : in.asMap().entrySet()) {
            if (!DROPPED_KEYS.contains(e.getKey())) {
                md.put(e.getKey(), e.getValue());
            }
        }
        // llama.cpp sets these two last, so they come last
        md.put("general.quantization_version", GgufValue.ofU32(2));
        md.put("general.file_type", GgufValue.ofU32(ftype.id()));
        return md;
    }

    /** Refuses a plan Cria cannot carry out: tensors it cannot decode or encode, and quantized inputs without {@code allowRequantize}. */
    static void check(List<QuantPlan.Item> plan, Path input, boolean allowRequantize) {
        for (QuantPlan.Item it : plan) {
            GgufTensorInfo ti = it.tensor();
            if (!it.converts()) {
                continue;
            }
            if (!Codecs.supports(ti.type())) {
                throw new CriaException(input + ": tensor '" + ti.name() + "' is " + ti.type() + ", which Cria cannot decode; start from an F32, F16 or BF16 model");
            }
            if (ti.type().isQuantized() && !allowRequantize) {
                throw new CriaException(input + ": tensor '" + ti.name() + "' is already " + ti.type()
                        + "; quantize from an F32, F16 or BF16 model, or pass --allow-requantize to accept the extra loss");
            }
            if (!Codecs.supports(it.target()) || !Codecs.of(it.target()).canQuantize()) {
                throw new CriaException("Cria cannot produce " + it.target() + " tensors (needed for '" + ti.name() + "'); choose another type");
            }
        }
    }

    /** One line: how much of the importance matrix was used, and which converted tensors had no entry. */
    private String importanceReport(ImportanceMatrix im, ImportanceUse use) {
        List<String> without = use.without();
        StringBuilder sb = new StringBuilder("cria: importance matrix " + imatrix + ": " + im.entries().size() + " entries, "
                + use.used().size() + " used to weight " + (use.used().size() == 1 ? "a tensor" : "tensors"));
        if (!without.isEmpty()) {
            sb.append("; no entry for ").append(without.size()).append(without.size() == 1 ? " tensor: " : " tensors: ");
            sb.append(String.join(", ", without.subList(0, Math.min(4, without.size()))));
            if (without.size() > 4) {
                sb.append(", ...");
            }
        }
        return sb.toString();
    }

    private void summary(List<QuantPlan.Item> plan, LlamaFileType ftype, double seconds) {
        Map<GgmlType, Integer> counts = new EnumMap<>(GgmlType.class);
        long before = 0;
        long after = 0;
        long values = 0;
        for (QuantPlan.Item it : plan) {
            GgufTensorInfo ti = it.tensor();
            counts.merge(it.target(), 1, Integer::sum);
            before += ti.byteSize();
            after += it.target().rowBytes(ti.rowLength()) * ti.rows();
            values += ti.elements();
        }
        StringBuilder types = new StringBuilder();
        counts.forEach((t, c) -> types.append(types.isEmpty() ? "" : ", ").append(c).append(' ').append(t));
        out().printf(Locale.ROOT, "%s: %s (file type %d%s), %d tensors (%s), %s -> %s, %.2f bits per weight, %.1f s%n",
                output, ftype, ftype.id(), pure ? ", pure" : "", plan.size(), types, Units.bytes(before), Units.bytes(after),
                values == 0 ? 0 : after * 8.0 / values, seconds);
    }
}
