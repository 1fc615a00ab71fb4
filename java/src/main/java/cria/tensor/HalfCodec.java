// F16 and BF16: two bytes a value, converted one value at a time.
package cria.tensor;

import java.lang.foreign.MemorySegment;

/** What the two 16-bit float formats share; each says how one value converts. */
abstract class HalfCodec implements Codec {
    /** One stored value as a float. */
    abstract float toFloat(short bits);

    /** A float as one stored value (rounded as ggml rounds). */
    abstract short fromFloat(float v);

    @Override
    public final void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int i = 0; i < n; i++) {
            dst[dstOff + i] = toFloat(src.get(LE.SHORT, srcOff + 2L * i));
        }
    }

    @Override
    public final boolean canQuantize() {
        return true;
    }

    @Override
    public final void quantize(float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        for (int i = 0; i < n; i++) {
            dst.set(LE.SHORT, dstOff + 2L * i, fromFloat(src[srcOff + i]));
        }
    }
}
