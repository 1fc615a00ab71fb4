// Q5_K: super-blocks of 256 five-bit values in 8 groups of 32, each with a 6-bit scale and 6-bit min (176 bytes).
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for Q5_K. Layout: F16 d, F16 dmin, scales[12] (as Q4_K), qh[32] (fifth bits: value
 * 64*g + l has its bit in qh[l] bit 2g, value 64*g + 32 + l in bit 2g+1), qs[128] (low nibbles
 * as Q4_K). Quantization is ggml's quantize_row_q5_K_ref (quantize_row_q5_K_impl with importance).
 */
final class Q5_KCodec implements Codec {
    private static final int QK = 256;
    private static final int BLOCK_BYTES = 176;

    @Override
    public GgmlType type() {
        return GgmlType.Q5_K;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int b = 0; b < n / QK; b++) {
            long blk = srcOff + (long) b * BLOCK_BYTES;
            float d = Half.f16ToFloat(src.get(LE.SHORT, blk));
            float min = Half.f16ToFloat(src.get(LE.SHORT, blk + 2));
            long qh = blk + 16;
            int y = dstOff + b * QK;
            int u1 = 1;
            int u2 = 2;
            for (int g = 0; g < 4; g++) {
                long ql = blk + 48 + g * 32;
                int sm1 = QuantMath.scaleMinK4(2 * g, src, blk + 4);
                int sm2 = QuantMath.scaleMinK4(2 * g + 1, src, blk + 4);
                float d1 = d * (sm1 & 0xff);
                float m1 = min * (sm1 >> 8);
                float d2 = d * (sm2 & 0xff);
                float m2 = min * (sm2 >> 8);
                for (int l = 0; l < 32; l++) {
                    int h = (src.get(LE.BYTE, qh + l) & u1) != 0 ? 16 : 0;
                    dst[y + l] = d1 * ((src.get(LE.BYTE, ql + l) & 0xF) + h) - m1;
                }
                for (int l = 0; l < 32; l++) {
                    int h = (src.get(LE.BYTE, qh + l) & u2) != 0 ? 16 : 0;
                    dst[y + 32 + l] = d2 * (((src.get(LE.BYTE, ql + l) & 0xff) >> 4) + h) - m2;
                }
                y += 64;
                u1 <<= 2;
                u2 <<= 2;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        Q4_KCodec.quantizeK(src, srcOff, n, dst, dstOff, 31);
    }

    @Override
    public boolean usesImportance() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        if (importance == null) {
            quantize(src, srcOff, n, dst, dstOff);
        } else {
            Q4_KCodec.quantizeKWeighted(src, srcOff, n, importance, dst, dstOff, 31);
        }
    }

    /** Stores 256 five-bit levels as qh[32] then qs[128], starting at {@code off}. */
    static void pack5Bit(byte[] L, MemorySegment dst, long off) {
        byte[] qh = new byte[32];
        int m1 = 1;
        int m2 = 2;
        for (int g = 0; g < 4; g++) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[64 * g + j];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= (byte) m1;
                }
                int l2 = L[64 * g + j + 32];
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= (byte) m2;
                }
                dst.set(LE.BYTE, off + 32 + 32 * g + j, (byte) (l1 | l2 << 4));
            }
            m1 <<= 2;
            m2 <<= 2;
        }
        MemorySegment.copy(qh, 0, dst, LE.BYTE, off, 32);
    }
}
