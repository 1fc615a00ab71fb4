// One block format: turns its bytes into floats exactly as ggml does, and (for some types) floats into bytes.
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * The codec of one ggml block format. {@code n} is always a multiple of the type's block size;
 * offsets are in bytes into the segment. Dequantization is bit-for-bit what ggml produces
 * (checked against ggml's own output in the tests). Quantization, where supported, produces the
 * bytes llama-quantize writes, without an importance matrix or with one (checked byte for byte
 * in the tests).
 * Codecs hold no state: one instance serves any number of threads.
 */
public interface Codec {

    GgmlType type();

    /** Decodes {@code n} values starting at byte {@code srcOff} of {@code src} into {@code dst[dstOff ..]}. */
    void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n);

    /** True when {@link #quantize} is implemented. */
    default boolean canQuantize() {
        return false;
    }

    /**
     * Encodes {@code n} values of {@code src[srcOff ..]} into {@code dst} at byte {@code dstOff}.
     *
     * @throws UnsupportedOperationException when this type cannot be produced (see {@link #canQuantize()})
     */
    default void quantize(float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        throw new UnsupportedOperationException("quantizing to " + type() + " is not supported");
    }

    /**
     * True when ggml's quantizer of this type reads an importance matrix (llama.cpp's
     * {@code quant_weights}), so that {@link #quantize(float[], int, int, float[], MemorySegment, long)}
     * with weights can differ from the plain {@link #quantize}.
     */
    default boolean usesImportance() {
        return false;
    }

    /**
     * Encodes one row of {@code n} values of {@code src[srcOff ..]} into {@code dst} at byte
     * {@code dstOff} as llama-quantize does with an importance matrix: {@code importance[j]}
     * (index 0 is the row's first column; at least {@code n} values) weighs column {@code j}.
     * {@code n} must be a whole row, because some formats look at the row's overall spread.
     * With {@code importance} null, or for a type that ignores it ({@link #usesImportance()}
     * false), the bytes are those of the plain {@link #quantize}.
     *
     * @throws UnsupportedOperationException when this type cannot be produced (see {@link #canQuantize()})
     */
    default void quantize(float[] src, int srcOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        quantize(src, srcOff, n, dst, dstOff);
    }
}
