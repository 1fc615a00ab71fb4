// The metadata value types of GGUF, with their on-disk ids and sizes.
package cria.gguf;

/** A GGUF metadata value type. {@link #size()} is the encoded size, or -1 for STRING and ARRAY. */
public enum GgufValueType {
    UINT8(1), INT8(1), UINT16(2), INT16(2), UINT32(4), INT32(4), FLOAT32(4), BOOL(1),
    STRING(-1), ARRAY(-1), UINT64(8), INT64(8), FLOAT64(8);

    private final int size;

    GgufValueType(int size) {
        this.size = size;
    }

    /** The id used in the file (the enum's ordinal, as the format defines them in this order). */
    public int id() {
        return ordinal();
    }

    /** Encoded size in bytes, or -1 when variable. */
    public int size() {
        return size;
    }

    /** True for the eight integer types. */
    public boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
            default -> false;
        };
    }

    /** The type with this id, or null. */
    public static GgufValueType byId(long id) {
        GgufValueType[] all = values();
        return id >= 0 && id < all.length ? all[(int) id] : null;
    }
}
