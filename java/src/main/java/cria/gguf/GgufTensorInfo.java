// One entry of a GGUF tensor table: name, type, shape (ggml order: ne[0] is the row length) and where its bytes are.
package cria.gguf;

import java.util.Arrays;

/**
 * A tensor as the file describes it. {@code shape[0]} is the number of values in a row (ggml's
 * ne[0]); a 2-D weight of shape {@code [in, out]} has {@code out} rows of {@code in} values.
 * {@code offset} is relative to the start of the data section.
 */
public record GgufTensorInfo(String name, GgmlType type, long[] shape, long offset, long byteSize) {

    /** Number of values. */
    public long elements() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** Values per row (ne[0]). */
    public long rowLength() {
        return shape[0];
    }

    /** Number of rows (the product of every dimension but the first). */
    public long rows() {
        long n = 1;
        for (int i = 1; i < shape.length; i++) {
            n *= shape[i];
        }
        return n;
    }

    /** Shape as text, e.g. {@code [256, 768]}. */
    public String shapeText() {
        return Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufTensorInfo t && t.name.equals(name) && t.type == type
                && Arrays.equals(t.shape, shape) && t.offset == offset && t.byteSize == byteSize;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + type + " " + shapeText();
    }
}
