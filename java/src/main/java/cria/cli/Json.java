// JSON helpers: the shared Jackson mapper and GGUF values as JSON.
package cria.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.gguf.GgufValue;

/** One {@link ObjectMapper} for the command line, and conversions of metadata values. */
final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper();
    /**
     * For input that must be exactly one JSON value (a batch line): trailing text after it and
     * keys given twice are errors instead of being silently ignored or overwritten.
     */
    static final ObjectReader STRICT = MAPPER.reader()
            .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .with(StreamReadFeature.STRICT_DUPLICATE_DETECTION);
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    private Json() {}

    static String write(JsonNode node) {
        try {
            return MAPPER.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * A metadata value as JSON: scalars as numbers/strings/booleans; arrays as
     * {@code {"type": "array", "element_type": ..., "length": n, "values": [first maxItems]}}.
     */
    static JsonNode value(GgufValue v, int maxItems) {
        if (!v.isArray()) {
            return scalar(v);
        }
        ObjectNode o = F.objectNode();
        o.put("type", "array");
        o.put("element_type", v.elementType().name().toLowerCase());
        int n = v.length();
        o.put("length", n);
        ArrayNode values = o.putArray("values");
        Object a = v.value();
        for (int i = 0; i < Math.min(n, maxItems); i++) {
            switch (v.elementType()) {
                case UINT8 -> values.add(Byte.toUnsignedInt(((byte[]) a)[i]));
                case INT8 -> values.add(((byte[]) a)[i]);
                case UINT16 -> values.add(Short.toUnsignedInt(((short[]) a)[i]));
                case INT16 -> values.add(((short[]) a)[i]);
                case UINT32 -> values.add(Integer.toUnsignedLong(((int[]) a)[i]));
                case INT32 -> values.add(((int[]) a)[i]);
                case UINT64 -> values.add(new java.math.BigInteger(Long.toUnsignedString(((long[]) a)[i])));
                case INT64 -> values.add(((long[]) a)[i]);
                case FLOAT32 -> addFloat(values, ((float[]) a)[i]);
                case FLOAT64 -> addFloat(values, ((double[]) a)[i]);
                case BOOL -> values.add(((boolean[]) a)[i]);
                case STRING -> values.add(((String[]) a)[i]);
                case ARRAY -> values.add(value(((GgufValue[]) a)[i], maxItems));
            }
        }
        return o;
    }

    private static void addFloat(ArrayNode arr, double d) {
        if (Double.isFinite(d)) {
            arr.add(d);
        } else {
            arr.add(Double.toString(d));
        }
    }

    private static JsonNode scalar(GgufValue v) {
        Object o = v.value();
        return switch (v.type()) {
            case UINT64 -> F.numberNode(new java.math.BigInteger(Long.toUnsignedString((Long) o)));
            case UINT8, UINT16, UINT32, INT8, INT16, INT32, INT64 -> F.numberNode(v.asLong());
            case FLOAT32, FLOAT64 -> {
                double d = ((Number) o).doubleValue();
                yield Double.isFinite(d) ? (v.type() == cria.gguf.GgufValueType.FLOAT32 ? F.numberNode((Float) o) : F.numberNode(d)) : F.textNode(Double.toString(d));
            }
            case BOOL -> F.booleanNode((Boolean) o);
            case STRING -> F.textNode((String) o);
            case ARRAY -> throw new IllegalStateException();
        };
    }
}
