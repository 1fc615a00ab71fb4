// Q4_1: blocks of 32 four-bit values with an F16 scale and an F16 minimum (20 bytes).
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for Q4_1: x = d * q + m, q in [0, 15], nibbles laid out as in Q4_0. Quantization is
 * ggml's quantize_row_q4_1_ref (d = (max - min) / 15, m = min).
 */
final class Q4_1Codec implements Codec {
    private static final int QK = 32;
    private static final int BLOCK_BYTES = 20;

    @Override
    public GgmlType type() {
        return GgmlType.Q4_1;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int b = 0; b < n / QK; b++) {
            long off = srcOff + (long) b * BLOCK_BYTES;
            float d = Half.f16ToFloat(src.get(LE.SHORT, off));
            float m = Half.f16ToFloat(src.get(LE.SHORT, off + 2));
            int o = dstOff + b * QK;
            for (int j = 0; j < QK / 2; j++) {
                int q = src.get(LE.BYTE, off + 4 + j) & 0xff;
                dst[o + j] = (q & 0x0F) * d + m;
                dst[o + j + QK / 2] = (q >> 4) * d + m;
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

    /** ggml's quantize_row_q4_1_impl: per block the weighted affine fit of make_qkx3_quants. */
    @Override
    public void quantize(float[] src, int srcOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        if (importance == null) {
            quantize(src, srcOff, n, dst, dstOff);
            return;
        }
        float sigma2 = QuantMath.sumSquares(src, srcOff, n) / n;
        float[] weight = new float[QK];
        byte[] L = new byte[QK];
        float[] min = new float[1];
        for (int b = 0; b < n / QK; b++) {
            int x = srcOff + b * QK;
            long off = dstOff + (long) b * BLOCK_BYTES;
            QuantMath.importanceWeights(src, x, importance, b * QK, sigma2, weight, QK);
            float d = QuantMath.makeQkx3Quants(QK, 15, src, x, weight, L, 0, min, 0, -0.9f, 0.05f, 36, false);
            dst.set(LE.SHORT, off, Half.floatToF16(d));
            dst.set(LE.SHORT, off + 2, Half.floatToF16(-min[0]));
            for (int j = 0; j < QK / 2; j++) {
                dst.set(LE.BYTE, off + 4 + j, (byte) (L[j] | L[j + QK / 2] << 4));
            }
        }
    }

    /** One block of 32 values, as ggml's reference quantizer writes it. */
    private void quantizeBlock(float[] src, int x, MemorySegment dst, long off) {
        float min = QuantMath.min(src, x, QK);
        float max = QuantMath.max(src, x, QK);
        float d = (max - min) / 15;
        float id = d != 0 ? 1.0f / d : 0.0f;
        dst.set(LE.SHORT, off, Half.floatToF16(d));
        dst.set(LE.SHORT, off + 2, Half.floatToF16(min));
        for (int j = 0; j < QK / 2; j++) {
            int q0 = Math.min(15, (int) ((src[x + j] - min) * id + 0.5f));
            int q1 = Math.min(15, (int) ((src[x + j + QK / 2] - min) * id + 0.5f));
            dst.set(LE.BYTE, off + 4 + j, (byte) (q0 | q1 << 4));
        }
    }
}
