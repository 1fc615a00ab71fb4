// Q5_0: blocks of 32 five-bit values: F16 scale, 32 high bits, 16 bytes of low nibbles (22 bytes).
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for Q5_0: x = d * (q - 16), q in [0, 31]. The fifth bit of value j is bit j of the
 * little-endian u32 after the scale. Quantization is ggml's quantize_row_q5_0_ref (d = -max/16).
 */
final class Q5_0Codec implements Codec {
    private static final int QK = 32;
    private static final int BLOCK_BYTES = 22;

    @Override
    public GgmlType type() {
        return GgmlType.Q5_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int b = 0; b < n / QK; b++) {
            long off = srcOff + (long) b * BLOCK_BYTES;
            float d = Half.f16ToFloat(src.get(LE.SHORT, off));
            int qh = src.get(LE.INT, off + 2);
            int o = dstOff + b * QK;
            for (int j = 0; j < QK / 2; j++) {
                int q = src.get(LE.BYTE, off + 6 + j) & 0xff;
                int h0 = ((qh >>> j) << 4) & 0x10;
                int h1 = (qh >>> (j + 12)) & 0x10;
                dst[o + j] = (((q & 0x0F) | h0) - 16) * d;
                dst[o + j + QK / 2] = (((q >> 4) | h1) - 16) * d;
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

    /** ggml's quantize_row_q5_0_impl: per block the weighted symmetric fit of make_qx_quants. */
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
            float d = QuantMath.makeQxQuants(QK, 16, src, x, L, 0, weight, 0);
            dst.set(LE.SHORT, off, Half.floatToF16(d));
            int qh = 0;
            for (int j = 0; j < QK / 2; j++) {
                int q0 = L[j];
                int q1 = L[j + QK / 2];
                dst.set(LE.BYTE, off + 6 + j, (byte) ((q0 & 0x0F) | (q1 & 0x0F) << 4));
                qh |= ((q0 & 0x10) >> 4) << j;
                qh |= ((q1 & 0x10) >> 4) << (j + QK / 2);
            }
            dst.set(LE.INT, off + 2, qh);
        }
    }

    /** One block of 32 values, as ggml's reference quantizer writes it. */
    private void quantizeBlock(float[] src, int x, MemorySegment dst, long off) {
        float max = QuantMath.signedMaxAbs(src, x, QK);
        float d = max / -16;
        float id = d != 0 ? 1.0f / d : 0.0f;
        dst.set(LE.SHORT, off, Half.floatToF16(d));
        int qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            int q0 = Math.min(31, (int) (src[x + j] * id + 16.5f));
            int q1 = Math.min(31, (int) (src[x + j + QK / 2] * id + 16.5f));
            dst.set(LE.BYTE, off + 6 + j, (byte) ((q0 & 0x0F) | (q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10) >> 4) << j;
            qh |= ((q1 & 0x10) >> 4) << (j + QK / 2);
        }
        dst.set(LE.INT, off + 2, qh);
    }
}
