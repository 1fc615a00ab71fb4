// The registry of block codecs: one per supported ggml type.
package cria.tensor;

import cria.CriaException;
import cria.gguf.GgmlType;
import java.util.EnumMap;
import java.util.Map;

/** Looks up the {@link Codec} of a type. */
public final class Codecs {
    private static final Map<GgmlType, Codec> CODECS = new EnumMap<>(GgmlType.class);

    static {
        register(new F32Codec());
        register(new F16Codec());
        register(new BF16Codec());
        register(new Q4_0Codec());
        register(new Q4_1Codec());
        register(new Q5_0Codec());
        register(new Q5_1Codec());
        register(new Q8_0Codec());
        register(new Q2_KCodec());
        register(new Q3_KCodec());
        register(new Q4_KCodec());
        register(new Q5_KCodec());
        register(new Q6_KCodec());
        register(new Q8_KCodec());
        register(new IQ4_NLCodec());
        register(new IQ4_XSCodec());
    }

    private Codecs() {}

    private static void register(Codec c) {
        CODECS.put(c.type(), c);
    }

    /** True when Cria can decode tensors of this type. */
    public static boolean supports(GgmlType type) {
        return CODECS.containsKey(type);
    }

    /**
     * The codec of {@code type}.
     *
     * @throws CriaException when Cria cannot decode that type
     */
    public static Codec of(GgmlType type) {
        Codec c = CODECS.get(type);
        if (c == null) {
            throw new CriaException("tensor type " + type + " is not supported by Cria; re-quantize the model to a supported type (" + supportedList() + ")");
        }
        return c;
    }

    /** The supported types, comma-separated. */
    public static String supportedList() {
        StringBuilder sb = new StringBuilder();
        for (GgmlType t : CODECS.keySet()) {
            if (!sb.isEmpty()) {
                sb.append(", ");
            }
            sb.append(t);
        }
        return sb.toString();
    }
}
