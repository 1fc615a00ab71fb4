// GGUF metadata: an ordered key -> value map with typed getters that fail with clear messages.
package cria.gguf;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The key/value metadata of a GGUF file, in file order. Typed getters accept any integer width
 * for integers and either float width for floats, as llama.cpp does; a key of the wrong kind is
 * a {@link GgufException} naming the key.
 */
public final class Metadata {
    private final Map<String, GgufValue> values = new LinkedHashMap<>();
    private final String source;

    /** Empty metadata; {@code source} names where it comes from in error messages. */
    public Metadata(String source) {
        this.source = source;
    }

    /** Where these values come from (a file name), used in error messages. */
    public String source() {
        return source;
    }

    /** Every key and value, in order (read-only). */
    public Map<String, GgufValue> asMap() {
        return Collections.unmodifiableMap(values);
    }

    /** True when the key is present. */
    public boolean has(String key) {
        return values.containsKey(key);
    }

    /** The value of a key, or null. */
    public GgufValue get(String key) {
        return values.get(key);
    }

    /** Sets a key (kept in its first position when it exists). */
    public void put(String key, GgufValue value) {
        values.put(key, value);
    }

    /** Removes a key; returns its value or null. */
    public GgufValue remove(String key) {
        return values.remove(key);
    }

    /** The number of keys. */
    public int size() {
        return values.size();
    }

    /** A string value, if present; a {@link GgufException} when the key holds something else. */
    public Optional<String> string(String key) {
        GgufValue v = values.get(key);
        if (v == null) {
            return Optional.empty();
        }
        if (v.type() != GgufValueType.STRING) {
            throw wrongKind(key, v, "a string");
        }
        return Optional.of((String) v.value());
    }

    /** An integer value of any width, if present; a {@link GgufException} when the key holds something else. */
    public Optional<Long> integer(String key) {
        GgufValue v = values.get(key);
        if (v == null) {
            return Optional.empty();
        }
        Long l = v.asLong();
        if (l == null) {
            throw wrongKind(key, v, "an integer");
        }
        return Optional.of(l);
    }

    /** An integer that must fit in a non-negative int. */
    public Optional<Integer> count(String key) {
        return integer(key).map(l -> {
            if (l < 0 || l > Integer.MAX_VALUE) {
                throw new GgufException(source + ": metadata " + key + " = " + l + " is out of range");
            }
            return l.intValue();
        });
    }

    /** A number (integer or float), if present; a {@link GgufException} when the key holds something else. */
    public Optional<Double> number(String key) {
        GgufValue v = values.get(key);
        if (v == null) {
            return Optional.empty();
        }
        Double d = v.asDouble();
        if (d == null) {
            throw wrongKind(key, v, "a number");
        }
        return Optional.of(d);
    }

    /** A bool value, if present; a {@link GgufException} when the key holds something else. */
    public Optional<Boolean> bool(String key) {
        GgufValue v = values.get(key);
        if (v == null) {
            return Optional.empty();
        }
        if (v.type() != GgufValueType.BOOL) {
            throw wrongKind(key, v, "a bool");
        }
        return Optional.of((Boolean) v.value());
    }

    /** An array of strings, if present; a {@link GgufException} when the key holds something else. */
    public Optional<String[]> strings(String key) {
        return array(key, GgufValueType.STRING, "an array of strings").map(v -> (String[]) v.value());
    }

    /** An array of floats (FLOAT32 or FLOAT64 elements), as float[]. */
    public Optional<float[]> floats(String key) {
        GgufValue v = values.get(key);
        if (v == null) {
            return Optional.empty();
        }
        if (v.isArray() && v.elementType() == GgufValueType.FLOAT32) {
            return Optional.of((float[]) v.value());
        }
        if (v.isArray() && v.elementType() == GgufValueType.FLOAT64) {
            double[] d = (double[]) v.value();
            float[] f = new float[d.length];
            for (int i = 0; i < d.length; i++) {
                f[i] = (float) d[i];
            }
            return Optional.of(f);
        }
        throw wrongKind(key, v, "an array of floats");
    }

    /** An array of integers of any width, as int[] (values must fit). */
    public Optional<int[]> ints(String key) {
        GgufValue v = values.get(key);
        if (v == null) {
            return Optional.empty();
        }
        if (!v.isArray() || !v.elementType().isInteger()) {
            throw wrongKind(key, v, "an array of integers");
        }
        Object a = v.value();
        int n = v.length();
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            long x = switch (v.elementType()) {
                case UINT8 -> Byte.toUnsignedInt(((byte[]) a)[i]);
                case INT8 -> ((byte[]) a)[i];
                case UINT16 -> Short.toUnsignedInt(((short[]) a)[i]);
                case INT16 -> ((short[]) a)[i];
                case UINT32 -> Integer.toUnsignedLong(((int[]) a)[i]);
                case INT32 -> ((int[]) a)[i];
                default -> ((long[]) a)[i];
            };
            if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
                throw new GgufException(source + ": metadata " + key + "[" + i + "] = " + x + " is out of range");
            }
            out[i] = (int) x;
        }
        return Optional.of(out);
    }

    private Optional<GgufValue> array(String key, GgufValueType element, String what) {
        GgufValue v = values.get(key);
        if (v == null) {
            return Optional.empty();
        }
        if (!v.isArray() || v.elementType() != element) {
            throw wrongKind(key, v, what);
        }
        return Optional.of(v);
    }

    private GgufException wrongKind(String key, GgufValue v, String what) {
        String got = v.isArray() ? "an array of " + v.elementType().name().toLowerCase() : v.type().name().toLowerCase();
        return new GgufException(source + ": metadata " + key + " should be " + what + " but is " + got);
    }
}
