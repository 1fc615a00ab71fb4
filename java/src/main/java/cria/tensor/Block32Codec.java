// The formats of 32-value blocks with one scale (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): one quantize loop, a block at a time.
package cria.tensor;

import java.lang.foreign.MemorySegment;

/**
 * What the 32-value block formats share: each quantizes block by block, independently, as
 * ggml's {@code quantize_row_*_ref} do; a format writes one block ({@link #quantizeBlock}). Also
 * the two ways they choose a block's scale: the value of largest magnitude with its sign (the
 * symmetric formats) and the block's minimum and maximum (the formats with an offset).
 */
abstract class Block32Codec implements Codec {
    static final int QK = 32;

    @Override
    public final boolean canQuantize() {
        return true;
    }

    @Override
    public final void quantize(float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        long blockBytes = type().rowBytes(QK);
        for (int b = 0; b < n / QK; b++) {
            quantizeBlock(src, srcOff + b * QK, dst, dstOff + b * blockBytes);
        }
    }

    /** Writes the block of values {@code src[x .. x + 32)} at {@code dst[off ..]}. */
    abstract void quantizeBlock(float[] src, int x, MemorySegment dst, long off);

    /** The value of largest magnitude in {@code src[x .. x + 32)}, with its sign (the first such, as ggml keeps). */
    static float signedMaxAbs(float[] src, int x) {
        return QuantMath.signedMaxAbs(src, x, QK);
    }

    /** The smallest of {@code src[x .. x + 32)} (ggml starts from FLT_MAX). */
    static float min(float[] src, int x) {
        float min = Float.MAX_VALUE;
        for (int j = 0; j < QK; j++) {
            if (src[x + j] < min) {
                min = src[x + j];
            }
        }
        return min;
    }

    /** The largest of {@code src[x .. x + 32)} (ggml starts from -FLT_MAX). */
    static float max(float[] src, int x) {
        float max = -Float.MAX_VALUE;
        for (int j = 0; j < QK; j++) {
            if (src[x + j] > max) {
                max = src[x + j];
            }
        }
        return max;
    }
}
