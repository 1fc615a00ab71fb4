// Q8_K: super-blocks of 256 signed bytes with an F32 scale and 16 group sums (292 bytes); ggml's intermediate format.
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for Q8_K: F32 d, qs[256] (int8), bsums[16] (int16 sums of each 16 values, used by
 * K-quant dot products). x = d * q. Quantization is ggml's quantize_row_q8_K_ref.
 */
final class Q8_KCodec implements Codec {
    private static final int QK = 256;
    private static final int BLOCK_BYTES = 292;

    @Override
    public GgmlType type() {
        return GgmlType.Q8_K;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int b = 0; b < n / QK; b++) {
            long blk = srcOff + (long) b * BLOCK_BYTES;
            float d = src.get(LE.FLOAT, blk);
            int y = dstOff + b * QK;
            for (int j = 0; j < QK; j++) {
                dst[y + j] = d * src.get(LE.BYTE, blk + 4 + j);
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        byte[] qs = new byte[QK];
        for (int b = 0; b < n / QK; b++) {
            int x = srcOff + b * QK;
            long blk = dstOff + (long) b * BLOCK_BYTES;
            float max = QuantMath.signedMaxAbs(src, x, QK);
            if (max == 0) {
                // ggml leaves bsums untouched here; zeros are what a fresh buffer holds
                dst.asSlice(blk, BLOCK_BYTES).fill((byte) 0);
                continue;
            }
            // -127 rather than -128 keeps every level symmetric (ggml's choice, for its SIMD dot products)
            float iscale = -127f / max;
            for (int j = 0; j < QK; j++) {
                qs[j] = (byte) Math.min(127, QuantMath.nearestInt(iscale * src[x + j]));
            }
            for (int j = 0; j < QK / 16; j++) {
                int sum = 0;
                for (int ii = 0; ii < 16; ii++) {
                    sum += qs[16 * j + ii];
                }
                dst.set(LE.SHORT, blk + 260 + 2L * j, (short) sum);
            }
            MemorySegment.copy(qs, 0, dst, LE.BYTE, blk + 4, QK);
            dst.set(LE.FLOAT, blk, 1 / iscale);
        }
    }
}
