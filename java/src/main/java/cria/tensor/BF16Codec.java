// BF16: bfloat16, the upper half of an F32.
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/** Codec for BF16 tensors. */
final class BF16Codec implements Codec {
    @Override
    public GgmlType type() {
        return GgmlType.BF16;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int i = 0; i < n; i++) {
            dst[dstOff + i] = Half.bf16ToFloat(src.get(LE.SHORT, srcOff + 2L * i));
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        for (int i = 0; i < n; i++) {
            dst.set(LE.SHORT, dstOff + 2L * i, Half.floatToBf16(src[srcOff + i]));
        }
    }
}
