// Which ggml weight types the CUDA kernels read, and the suffix of their kernel names.
package cria.backend.cuda;

import cria.gguf.GgmlType;
import java.util.EnumMap;
import java.util.Map;

/** The weight types of the embed and matmul families: F32, F16, BF16 and the block formats. */
public final class CudaTypes {
    private CudaTypes() {}

    private static final Map<GgmlType, String> SUFFIX = new EnumMap<>(GgmlType.class);

    static {
        for (GgmlType t : new GgmlType[] {
            GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
            GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
            GgmlType.IQ4_NL, GgmlType.IQ4_XS,
        }) {
            SUFFIX.put(t, t.name().toLowerCase(java.util.Locale.ROOT));
        }
    }

    /** True when the kernels read this type directly. */
    static boolean supported(GgmlType t) {
        return SUFFIX.containsKey(t);
    }

    /** The kernel-name suffix of a supported type ("q4_k", "bf16", ...). */
    public static String suffix(GgmlType t) {
        String s = SUFFIX.get(t);
        if (s == null) {
            throw new IllegalArgumentException("no CUDA kernels for " + t);
        }
        return s;
    }

    /** The supported types in declaration order. */
    static Iterable<GgmlType> all() {
        return SUFFIX.keySet();
    }

    /** A comma-separated list for messages. */
    static String list() {
        return String.join(", ", SUFFIX.keySet().stream().map(Enum::name).toList());
    }
}
