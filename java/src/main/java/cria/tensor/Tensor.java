// A tensor: name, type, shape (ggml order) and its bytes as a MemorySegment (a zero-copy slice of the model file).
package cria.tensor;

import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A tensor over off-heap bytes. {@code shape[0]} is the row length (ggml's ne[0]); a weight
 * matrix of shape {@code [in, out]} has {@code out} rows of {@code in} values, so a matrix-vector
 * product computes one output per row.
 */
public record Tensor(String name, GgmlType type, long[] shape, MemorySegment data) {

    /** The tensor {@code info} of an open file, its data a slice of the mapping. */
    public static Tensor of(GgufFile file, GgufTensorInfo info) {
        return new Tensor(info.name(), info.type(), info.shape(), file.data(info));
    }

    /** The named tensor of an open file, or null when absent. */
    public static Tensor of(GgufFile file, String name) {
        GgufTensorInfo info = file.tensor(name);
        return info == null ? null : of(file, info);
    }

    /** Values per row. */
    public int rowLength() {
        return Math.toIntExact(shape[0]);
    }

    /** Number of rows (product of all dimensions but the first). */
    public long rows() {
        long n = 1;
        for (int i = 1; i < shape.length; i++) {
            n *= shape[i];
        }
        return n;
    }

    /** Bytes per row. */
    public long rowBytes() {
        return type.rowBytes(shape[0]);
    }

    /** Row {@code i} as a slice. */
    public MemorySegment row(long i) {
        long rb = rowBytes();
        return data.asSlice(i * rb, rb);
    }

    /** Row {@code i} dequantized into {@code dst[dstOff ..]}. */
    public void dequantizeRow(long i, float[] dst, int dstOff) {
        Codecs.of(type).dequantize(data, i * rowBytes(), dst, dstOff, rowLength());
    }

    /** Row {@code i} dequantized into a new array. */
    public float[] dequantizeRow(long i) {
        float[] out = new float[rowLength()];
        dequantizeRow(i, out, 0);
        return out;
    }

    @Override
    public String toString() {
        return name + " " + type + " " + Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return this == o;
    }

    @Override
    public int hashCode() {
        return System.identityHashCode(this);
    }
}
