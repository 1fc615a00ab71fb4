// One metadata value: its GGUF type and a Java value (boxed scalar, String, or array).
package cria.gguf;

import java.util.Arrays;

/**
 * A metadata value as stored in the file. Scalars hold {@link Byte}, {@link Short},
 * {@link Integer}, {@link Long} (unsigned types keep their bits), {@link Float}, {@link Double},
 * {@link Boolean} or {@link String}. Arrays hold a Java array matching {@code elementType}:
 * byte[] (UINT8, INT8), short[], int[], long[], float[], double[], boolean[], String[], or
 * GgufValue[] for arrays of arrays.
 */
public record GgufValue(GgufValueType type, GgufValueType elementType, Object value) {

    /** A string value. */
    public static GgufValue ofString(String s) {
        return new GgufValue(GgufValueType.STRING, null, s);
    }

    /** An unsigned 32-bit value (the int's bits). */
    public static GgufValue ofU32(int v) {
        return new GgufValue(GgufValueType.UINT32, null, v);
    }

    /** A signed 32-bit value. */
    public static GgufValue ofI32(int v) {
        return new GgufValue(GgufValueType.INT32, null, v);
    }

    /** An unsigned 64-bit value (the long's bits). */
    public static GgufValue ofU64(long v) {
        return new GgufValue(GgufValueType.UINT64, null, v);
    }

    /** A 32-bit float value. */
    public static GgufValue ofF32(float v) {
        return new GgufValue(GgufValueType.FLOAT32, null, v);
    }

    /** A bool value. */
    public static GgufValue ofBool(boolean v) {
        return new GgufValue(GgufValueType.BOOL, null, v);
    }

    /** An array of strings. */
    public static GgufValue ofStrings(String[] v) {
        return new GgufValue(GgufValueType.ARRAY, GgufValueType.STRING, v);
    }

    /** An array of 32-bit floats. */
    public static GgufValue ofFloats(float[] v) {
        return new GgufValue(GgufValueType.ARRAY, GgufValueType.FLOAT32, v);
    }

    /** An array of signed 32-bit integers. */
    public static GgufValue ofInts(int[] v) {
        return new GgufValue(GgufValueType.ARRAY, GgufValueType.INT32, v);
    }

    /** True for arrays. */
    public boolean isArray() {
        return type == GgufValueType.ARRAY;
    }

    /** Number of elements of an array value. */
    public int length() {
        if (!isArray()) {
            throw new IllegalStateException("not an array: " + type);
        }
        return java.lang.reflect.Array.getLength(value);
    }

    /** An integer scalar as a long (unsigned types zero-extended), or null if not an integer. */
    public Long asLong() {
        return switch (type) {
            case UINT8 -> (long) Byte.toUnsignedInt((Byte) value);
            case UINT16 -> (long) Short.toUnsignedInt((Short) value);
            case UINT32 -> Integer.toUnsignedLong((Integer) value);
            case INT8, INT16, INT32, INT64, UINT64 -> ((Number) value).longValue();
            default -> null;
        };
    }

    /** A numeric scalar as a double, or null. */
    public Double asDouble() {
        return switch (type) {
            case FLOAT32, FLOAT64 -> ((Number) value).doubleValue();
            case UINT64 -> {
                long v = (Long) value;
                yield v >= 0 ? (double) v : Double.parseDouble(Long.toUnsignedString(v));
            }
            default -> type.isInteger() ? (double) asLong() : null;
        };
    }

    /** A short human-readable rendering; arrays longer than {@code maxItems} are summarized. */
    public String display(int maxItems) {
        if (!isArray()) {
            return scalarText(type, value);
        }
        int n = length();
        StringBuilder sb = new StringBuilder();
        sb.append('[').append(elementType.name().toLowerCase()).append(" x ").append(n).append("] [");
        int shown = Math.min(n, maxItems);
        for (int i = 0; i < shown; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(elementText(i));
        }
        if (shown < n) {
            sb.append(", ...");
        }
        return sb.append(']').toString();
    }

    private String elementText(int i) {
        Object v = value;
        return switch (elementType) {
            case UINT8 -> Integer.toString(Byte.toUnsignedInt(((byte[]) v)[i]));
            case INT8 -> Byte.toString(((byte[]) v)[i]);
            case UINT16 -> Integer.toString(Short.toUnsignedInt(((short[]) v)[i]));
            case INT16 -> Short.toString(((short[]) v)[i]);
            case UINT32 -> Integer.toUnsignedString(((int[]) v)[i]);
            case INT32 -> Integer.toString(((int[]) v)[i]);
            case UINT64 -> Long.toUnsignedString(((long[]) v)[i]);
            case INT64 -> Long.toString(((long[]) v)[i]);
            case FLOAT32 -> Float.toString(((float[]) v)[i]);
            case FLOAT64 -> Double.toString(((double[]) v)[i]);
            case BOOL -> Boolean.toString(((boolean[]) v)[i]);
            case STRING -> quote(((String[]) v)[i]);
            case ARRAY -> ((GgufValue[]) v)[i].display(4);
        };
    }

    static String scalarText(GgufValueType type, Object v) {
        return switch (type) {
            case UINT8 -> Integer.toString(Byte.toUnsignedInt((Byte) v));
            case UINT16 -> Integer.toString(Short.toUnsignedInt((Short) v));
            case UINT32 -> Integer.toUnsignedString((Integer) v);
            case UINT64 -> Long.toUnsignedString((Long) v);
            case STRING -> quote((String) v);
            default -> String.valueOf(v);
        };
    }

    /** Quotes a string for display, escaping control characters and cutting very long ones. */
    public static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        int limit = 200;
        for (int i = 0; i < s.length() && i < limit; i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20 || c == 0x7f) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        if (s.length() > limit) {
            sb.append("...(").append(s.length()).append(" chars)");
        }
        return sb.append('"').toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufValue g && g.type == type && g.elementType == elementType
                && Arrays.deepEquals(new Object[] {value}, new Object[] {g.value});
    }

    @Override
    public int hashCode() {
        return Arrays.deepHashCode(new Object[] {type, elementType, value});
    }
}
