// Q4_0: blocks of 32 four-bit values with one F16 scale (18 bytes), symmetric around 8.
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for Q4_0: x = d * (q - 8), q in [0, 15]; byte j holds value j (low nibble) and value
 * j + 16 (high nibble). Quantization is ggml's quantize_row_q4_0_ref: d = -max/8 where max is
 * the value of largest magnitude, so that value maps exactly onto level 0.
 */
final class Q4_0Codec implements Codec {
    private static final int QK = 32;
    private static final int BLOCK_BYTES = 18;

    @Override
    public GgmlType type() {
        return GgmlType.Q4_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int b = 0; b < n / QK; b++) {
            long off = srcOff + (long) b * BLOCK_BYTES;
            float d = Half.f16ToFloat(src.get(LE.SHORT, off));
            int o = dstOff + b * QK;
            for (int j = 0; j < QK / 2; j++) {
                int q = src.get(LE.BYTE, off + 2 + j) & 0xff;
                dst[o + j] = ((q & 0x0F) - 8) * d;
                dst[o + j + QK / 2] = ((q >> 4) - 8) * d;
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

    @Override
    public boolean usesImportance() {
        return true;
    }

    /** ggml's quantize_row_q4_0_impl: per block the weighted symmetric fit of make_qx_quants. */
    @Override
    public void quantize(float[] src, int srcOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        if (importance == null) {
            quantize(src, srcOff, n, dst, dstOff);
            return;
        }
        float sigma2 = QuantMath.sumSquares(src, srcOff, n) / n;
        float[] weight = new float[QK];
        byte[] L = new byte[QK];
        for (int b = 0; b < n / QK; b++) {
            int x = srcOff + b * QK;
            long off = dstOff + (long) b * BLOCK_BYTES;
            QuantMath.importanceWeights(src, x, importance, b * QK, sigma2, weight, QK);
            float d = QuantMath.makeQxQuants(QK, 8, src, x, L, 0, weight, 0);
            dst.set(LE.SHORT, off, Half.floatToF16(d));
            for (int j = 0; j < QK / 2; j++) {
                dst.set(LE.BYTE, off + 2 + j, (byte) (L[j] | L[j + QK / 2] << 4));
            }
        }
    }

    /** One block of 32 values, as ggml's reference quantizer writes it. */
    private void quantizeBlock(float[] src, int x, MemorySegment dst, long off) {
        float max = QuantMath.signedMaxAbs(src, x, QK);
        float d = max / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        dst.set(LE.SHORT, off, Half.floatToF16(d));
        for (int j = 0; j < QK / 2; j++) {
            // C truncates toward zero when converting to int8_t; Java's (int) cast does the same
            int q0 = Math.min(15, (int) (src[x + j] * id + 8.5f));
            int q1 = Math.min(15, (int) (src[x + j + QK / 2] * id + 8.5f));
            dst.set(LE.BYTE, off + 2 + j, (byte) (q0 | q1 << 4));
        }
    }
}
