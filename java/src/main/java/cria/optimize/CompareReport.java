// The rows of `cria compare` (one per model: size, parameters, perplexity, KL divergence, top-1 agreement, speed) and their markdown table.
package cria.optimize;

import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.quantize.LlamaFileType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Formats a comparison of models against a base; also reads the facts about a model file the report shows. */
public final class CompareReport {
    private CompareReport() {}

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * What a model file is: its file type's name (llama.cpp's {@code general.file_type}, or the type
     * holding most matrix elements when that key is absent or unknown), its size in bytes, its
     * parameters (the elements of all tensors, as llama-bench counts them) and how many of them
     * are not zero. Zeros are counted in F32, F16 and BF16 tensors, where a pruned weight is an
     * exact zero; quantized tensors count as dense (a block code that rounds to zero is not a
     * pruned weight, and a pruned model's zeros are kept in a float type).
     */
    public record ModelFacts(String type, long fileBytes, long params, long nonzero) {}

    /**
     * One model's line: its facts; its perplexity (and llama.cpp's uncertainty), PPL / PPL(base),
     * mean KL divergence from the base, the 99th percentile and maximum of the per-token KL
     * divergence, the fraction of tokens with the base's top token, mean and RMS Δp, the tokens
     * scored; prompt processing and generation speed in tokens/s with standard deviations (NaN
     * when not measured).
     */
    public record Row(String name, ModelFacts facts, double ppl, double pplError, double pplRatio, double meanKld,
                      double meanKldError, double kldP99, double kldMax, double sameTop, double meanPDiff, double rmsPDiff,
                      long tokens, double ppTs, double ppSd, double tgTs, double tgSd) {
        /** A row from the statistics of a model scored against the base. */
        public static Row of(String name, ModelFacts facts, CompareStats s, double ppTs, double ppSd, double tgTs, double tgSd) {
            return new Row(name, facts, s.perplexity(), s.perplexityError(), s.perplexityRatio(), s.meanKld(), s.meanKldError(),
                    s.kldPercentile(0.99), s.maxKld(), s.sameTopFraction(), s.meanPDiff(), s.rmsPDiff(), s.count(),
                    ppTs, ppSd, tgTs, tgSd);
        }
    }

    /** Reads the facts the report shows from an open file (one pass over its float tensors to count zeros). */
    public static ModelFacts facts(GgufFile f) {
        long params = 0;
        long zeros = 0;
        Map<GgmlType, Long> matrixElements = new EnumMap<>(GgmlType.class);
        for (GgufTensorInfo t : f.tensors()) {
            params += t.elements();
            if (t.shape().length >= 2) {
                matrixElements.merge(t.type(), t.elements(), Long::sum);
            }
            zeros += zeros(f.data(t), t.type(), t.elements());
        }
        String type = null;
        Long ft = f.metadata().integer("general.file_type").orElse(null);
        if (ft != null) {
            for (LlamaFileType lt : LlamaFileType.values()) {
                if (lt.id() == ft) {
                    type = lt.name();
                }
            }
        }
        if (type == null) {
            type = matrixElements.entrySet().stream().max(Map.Entry.comparingByValue()).map(e -> e.getKey().toString()).orElse("?");
        }
        return new ModelFacts(type, f.fileSize(), params, params - zeros);
    }

    /** Exact zeros (either sign) among the {@code n} values of a float tensor; 0 for other types. */
    static long zeros(MemorySegment data, GgmlType type, long n) {
        long z = 0;
        switch (type) {
            case F32 -> {
                for (long i = 0; i < n; i++) {
                    if (data.get(F32, i * 4) == 0f) {
                        z++;
                    }
                }
            }
            case F16, BF16 -> {
                for (long i = 0; i < n; i++) {
                    if ((data.get(U16, i * 2) & 0x7fff) == 0) {
                        z++;
                    }
                }
            }
            default -> {
                // quantized: counted as dense (see ModelFacts)
            }
        }
        return z;
    }

    /**
     * The markdown table: one line per row, the base first. {@code pp} and {@code tg} name the
     * speed tests in the header (0 leaves the column out).
     */
    public static String markdown(List<Row> rows, int pp, int tg) {
        StringBuilder sb = new StringBuilder();
        sb.append("| model | type | size | params | nonzero | PPL | PPL/base | mean KLD | KLD p99 | top-1 |");
        StringBuilder rule = new StringBuilder("| :-- | :-- | --: | --: | --: | --: | --: | --: | --: | --: |");
        if (pp > 0) {
            sb.append(" pp").append(pp).append(" t/s |");
            rule.append(" --: |");
        }
        if (tg > 0) {
            sb.append(" tg").append(tg).append(" t/s |");
            rule.append(" --: |");
        }
        sb.append('\n').append(rule).append('\n');
        for (Row r : rows) {
            ModelFacts f = r.facts();
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %.4f | %.4f | %.6f | %.6f | %.2f %% |",
                    r.name(), f.type(), size(f.fileBytes()), count(f.params()), nonzero(f), r.ppl(), r.pplRatio(),
                    r.meanKld(), r.kldP99(), 100 * r.sameTop()));
            if (pp > 0) {
                sb.append(' ').append(speed(r.ppTs(), r.ppSd())).append(" |");
            }
            if (tg > 0) {
                sb.append(' ').append(speed(r.tgTs(), r.tgSd())).append(" |");
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    private static String nonzero(ModelFacts f) {
        if (f.nonzero() == f.params()) {
            return "100 %";
        }
        return String.format(Locale.ROOT, "%.1f %%", 100.0 * f.nonzero() / Math.max(1, f.params()));
    }

    private static String speed(double ts, double sd) {
        return Double.isNaN(ts) ? "-" : String.format(Locale.ROOT, "%.1f ± %.1f", ts, sd);
    }

    /** Bytes in MiB (GiB from 1 GiB on), two decimals. */
    static String size(long bytes) {
        double mib = bytes / 1048576.0;
        return mib >= 1024 ? String.format(Locale.ROOT, "%.2f GiB", mib / 1024) : String.format(Locale.ROOT, "%.2f MiB", mib);
    }

    /** 292800 as "292.80K", as llama-bench writes parameter counts. */
    static String count(long n) {
        if (n < 1000) {
            return Long.toString(n);
        }
        String[] u = {"K", "M", "B", "T"};
        double v = n;
        int i = -1;
        while (v >= 1000 && i < u.length - 1) {
            v /= 1000;
            i++;
        }
        return String.format(Locale.ROOT, "%.2f%s", v, u[i]);
    }
}
