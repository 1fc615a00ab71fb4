// One block format: turns its bytes into floats exactly as ggml does, and (for some types) floats into bytes.
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * The codec of one ggml block format. {@code n} is always a multiple of the type's block size;
 * offsets are in bytes into the segment. Dequantization is bit-for-bit what ggml produces
 * (checked against ggml's own output in the tests). Quantization, where supported, produces the
 * bytes llama-quantize writes without an importance matrix (checked byte for byte in the tests).
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
}
