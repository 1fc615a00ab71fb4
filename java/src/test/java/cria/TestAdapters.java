// Random LoRA adapters for a base model, and the merged model written independently (in double), for tests and tools.
package cria;

import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import cria.model.LoraAdapterWriter;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Predicate;

/**
 * {@link #random} draws factors for the products of a base (A ~ N(0, 1/n_in), B scaled so that
 * {@code s·B·A} has an RMS of {@code size} times the base tensor's RMS at factor {@code s});
 * {@link #mergedModel} writes base + corrections computed here, in double, from the factors
 * themselves: the oracle that {@code cria merge} and the unmerged forward pass are checked against.
 */
public final class TestAdapters {
    private TestAdapters() {}

    /** Every per-layer product and output.weight. */
    public static final Predicate<String> ALL = n -> n.equals("output.weight")
            || n.matches("blk\\.\\d+\\.(attn_q|attn_k|attn_v|attn_qkv|attn_output|ffn_gate|ffn_up|ffn_down)\\.weight");

    /** An adapter's factors and the factor s its correction is applied at. */
    public record Applied(Map<String, LoraAdapterWriter.Factors> factors, double s) {}

    /** Random factors of rank {@code rank} for the base's tensors that {@code which} accepts. */
    public static Map<String, LoraAdapterWriter.Factors> random(Path base, int rank, long seed, double size, double s,
                                                                Predicate<String> which) {
        Random r = new Random(seed);
        Map<String, LoraAdapterWriter.Factors> out = new LinkedHashMap<>();
        try (GgufFile f = GgufFile.open(base)) {
            for (GgufTensorInfo t : f.tensors()) {
                if (!which.test(t.name())) {
                    continue;
                }
                int in = (int) t.shape()[0];
                int outs = (int) t.shape()[1];
                double rms = rms(Tensor.of(f, t));
                float[] a = new float[rank * in];
                float[] b = new float[outs * rank];
                for (int i = 0; i < a.length; i++) {
                    a[i] = (float) (r.nextGaussian() / Math.sqrt(in));
                }
                // (B·A)[o][c] = Σ_k B[o][k] A[k][c] has variance rank · σ_b² / in
                double sb = size * rms * Math.sqrt((double) in / rank) / Math.abs(s);
                for (int i = 0; i < b.length; i++) {
                    b[i] = (float) (r.nextGaussian() * sb);
                }
                out.put(t.name(), new LoraAdapterWriter.Factors(a, b, rank));
            }
        }
        return out;
    }

    /** Writes factors as an adapter for architecture "llama". */
    public static Path write(Path out, float alpha, Map<String, LoraAdapterWriter.Factors> factors) {
        return write(out, "llama", alpha, factors);
    }

    /** Writes factors as an adapter for architecture {@code arch} (the base's general.architecture). */
    public static Path write(Path out, String arch, float alpha, Map<String, LoraAdapterWriter.Factors> factors) {
        Metadata extra = new Metadata(out.toString());
        extra.put("general.name", cria.gguf.GgufValue.ofString("random test adapter"));
        LoraAdapterWriter.write(out, arch, alpha, factors, extra);
        return out;
    }

    /** The base with every adapted tensor replaced by {@code W + Σ s·B·A} (F32), sums in double. */
    public static Path mergedModel(Path base, Path out, List<Applied> adapters) {
        try (GgufFile f = GgufFile.open(base)) {
            Metadata md = new Metadata(out.toString());
            f.metadata().asMap().forEach(md::put);
            GgufWriter w = new GgufWriter(md);
            for (GgufTensorInfo t : f.tensors()) {
                Tensor src = Tensor.of(f, t);
                boolean adapted = adapters.stream().anyMatch(a -> a.factors().containsKey(t.name()));
                if (!adapted) {
                    w.addTensor(t.name(), t.type(), t.shape(), src.data());
                    continue;
                }
                int in = src.rowLength();
                int rows = (int) src.rows();
                float[] merged = new float[in * rows];
                for (int o = 0; o < rows; o++) {
                    float[] row = src.dequantizeRow(o);
                    for (int c = 0; c < in; c++) {
                        double v = row[c];
                        for (Applied a : adapters) {
                            LoraAdapterWriter.Factors fa = a.factors().get(t.name());
                            if (fa != null) {
                                double d = 0;
                                for (int k = 0; k < fa.rank(); k++) {
                                    d += (double) fa.b()[o * fa.rank() + k] * fa.a()[k * in + c];
                                }
                                v += a.s() * d;
                            }
                        }
                        merged[o * in + c] = (float) v;
                    }
                }
                w.addTensor(t.name(), GgmlType.F32, t.shape(), MemorySegment.ofArray(merged));
            }
            w.write(out);
        }
        return out;
    }

    private static double rms(Tensor t) {
        double ss = 0;
        long n = 0;
        for (long r = 0; r < t.rows(); r++) {
            for (float v : t.dequantizeRow(r)) {
                ss += (double) v * v;
                n++;
            }
        }
        return Math.sqrt(ss / Math.max(1, n));
    }
}
