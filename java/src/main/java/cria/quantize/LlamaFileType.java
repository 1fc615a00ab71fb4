// llama.cpp's file types (LLAMA_FTYPE_*): the names llama-quantize accepts, their ids in general.file_type, their base tensor type.
package cria.quantize;

import cria.CriaException;
import cria.gguf.GgmlType;
import java.util.Locale;
import java.util.StringJoiner;

/**
 * The llama.cpp file types Cria can produce. Each has the numeric id llama.cpp writes to
 * {@code general.file_type} and the tensor type most weights get; the mixes (Q4_K_M and friends)
 * promote some tensors to more bits (see {@link QuantPlan}). {@code Q3_K}, {@code Q4_K} and
 * {@code Q5_K} are accepted as llama-quantize's aliases for the _M mixes.
 */
public enum LlamaFileType {
    F32(0, GgmlType.F32),
    F16(1, GgmlType.F16),
    Q4_0(2, GgmlType.Q4_0),
    Q4_1(3, GgmlType.Q4_1),
    Q8_0(7, GgmlType.Q8_0),
    Q5_0(8, GgmlType.Q5_0),
    Q5_1(9, GgmlType.Q5_1),
    Q2_K(10, GgmlType.Q2_K),
    /** Needs an importance matrix for its Q2_K matrices (llama.cpp refuses it without one). */
    Q2_K_S(21, GgmlType.Q2_K),
    Q3_K_S(11, GgmlType.Q3_K),
    Q3_K_M(12, GgmlType.Q3_K),
    Q3_K_L(13, GgmlType.Q3_K),
    Q4_K_S(14, GgmlType.Q4_K),
    Q4_K_M(15, GgmlType.Q4_K),
    Q5_K_S(16, GgmlType.Q5_K),
    Q5_K_M(17, GgmlType.Q5_K),
    Q6_K(18, GgmlType.Q6_K),
    IQ4_NL(25, GgmlType.IQ4_NL),
    IQ4_XS(30, GgmlType.IQ4_XS),
    BF16(32, GgmlType.BF16);

    private final int id;
    private final GgmlType baseType;

    LlamaFileType(int id, GgmlType baseType) {
        this.id = id;
        this.baseType = baseType;
    }

    /** The LLAMA_FTYPE value written to {@code general.file_type}. */
    public int id() {
        return id;
    }

    /** The tensor type of most weights (every weight with {@code --pure}). */
    public GgmlType baseType() {
        return baseType;
    }

    /**
     * The file type llama-quantize means by {@code name} (case-insensitive; Q3_K, Q4_K, Q5_K are
     * the _M mixes).
     *
     * @throws CriaException for a name Cria cannot produce, listing the ones it can
     */
    public static LlamaFileType parse(String name) {
        String n = name.toUpperCase(Locale.ROOT);
        switch (n) {
            case "Q3_K" -> n = "Q3_K_M";
            case "Q4_K" -> n = "Q4_K_M";
            case "Q5_K" -> n = "Q5_K_M";
            default -> { }
        }
        for (LlamaFileType t : values()) {
            if (t.name().equals(n)) {
                return t;
            }
        }
        throw new CriaException("unknown or unsupported quantization type '" + name + "'; Cria can make: " + names());
    }

    /** Every accepted name, comma-separated. */
    public static String names() {
        StringJoiner j = new StringJoiner(", ");
        for (LlamaFileType t : values()) {
            j.add(t.name());
        }
        return j + " (and Q3_K, Q4_K, Q5_K for the _M mixes)";
    }
}
