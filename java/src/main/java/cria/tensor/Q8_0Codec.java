// Q8_0: blocks of 32 signed bytes with one F16 scale (34 bytes), llama.cpp's 8-bit format.
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/** Codec for Q8_0: x = d * q, q in [-127, 127]. Quantization is ggml's quantize_row_q8_0_ref. */
final class Q8_0Codec implements Codec {
    private static final int QK = 32;
    private static final int BLOCK_BYTES = 34;

    @Override
    public GgmlType type() {
        return GgmlType.Q8_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int b = 0; b < n / QK; b++) {
            long off = srcOff + (long) b * BLOCK_BYTES;
            float d = Half.f16ToFloat(src.get(LE.SHORT, off));
            int o = dstOff + b * QK;
            for (int j = 0; j < QK; j++) {
                dst[o + j] = src.get(LE.BYTE, off + 2 + j) * d;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        QuantMath.quantizeBlocks(src, srcOff, n, dst, dstOff, QK, BLOCK_BYTES, this::quantizeBlock);
    }

    /** One block of 32 values, as ggml's reference quantizer writes it. */
    private void quantizeBlock(float[] src, int x, MemorySegment dst, long off) {
        float amax = 0;
        for (int j = 0; j < QK; j++) {
            amax = Math.max(amax, Math.abs(src[x + j]));
        }
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        dst.set(LE.SHORT, off, Half.floatToF16(d));
        for (int j = 0; j < QK; j++) {
            // roundf, then the float-to-int8 conversion C performs on assignment
            dst.set(LE.BYTE, off + 2 + j, (byte) (int) QuantMath.roundf(src[x + j] * id));
        }
    }
}
