// Q3_K: super-blocks of 256 three-bit values in 16 groups with 6-bit signed scales (110 bytes).
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for Q3_K. Layout: hmask[32] (the third bit: value j's bit sits in hmask[j % 32], bit
 * j / 32), qs[64] (low two bits, packed as in Q2_K), scales[12] (sixteen 6-bit scales: low
 * nibbles in bytes 0-7, high bit pairs in bytes 8-11), F16 d. x = d * (sc - 32) * (q - 4).
 * Quantization is ggml's quantize_row_q3_K_ref, or quantize_row_q3_K_impl with an importance matrix.
 */
final class Q3_KCodec implements Codec {
    private static final int QK = 256;
    private static final int BLOCK_BYTES = 110;

    @Override
    public GgmlType type() {
        return GgmlType.Q3_K;
    }

    /** The 6-bit scale of group {@code j} (0..63, not yet offset by -32). */
    private static int scale(int j, int[] s) {
        int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
        int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        return low | high << 4;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        int[] s = new int[12];
        for (int b = 0; b < n / QK; b++) {
            long blk = srcOff + (long) b * BLOCK_BYTES;
            float dAll = Half.f16ToFloat(src.get(LE.SHORT, blk + 108));
            for (int i = 0; i < 12; i++) {
                s[i] = src.get(LE.BYTE, blk + 96 + i) & 0xff;
            }
            int y = dstOff + b * QK;
            int is = 0;
            int m = 1;
            for (int half = 0; half < 2; half++) {
                long q = blk + 32 + half * 32;
                for (int shift = 0; shift < 8; shift += 2) {
                    for (int part = 0; part < 2; part++) {
                        float dl = dAll * (scale(is++, s) - 32);
                        for (int l = 0; l < 16; l++) {
                            int k = part * 16 + l;
                            int lo = ((src.get(LE.BYTE, q + k) & 0xff) >> shift) & 3;
                            int hi = (src.get(LE.BYTE, blk + k) & m) != 0 ? 0 : 4;
                            dst[y++] = dl * (lo - hi);
                        }
                    }
                    m <<= 1;
                }
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        byte[] L = new byte[QK];
        float[] scales = new float[QK / 16];
        int[] ls = new int[QK / 16];
        for (int b = 0; b < n / QK; b++) {
            int x = srcOff + b * QK;
            float maxScale = 0;
            float amax = 0;
            for (int j = 0; j < QK / 16; j++) {
                scales[j] = QuantMath.makeQ3Quants(16, 4, src, x + 16 * j, L, 16 * j);
                float a = Math.abs(scales[j]);
                if (a > amax) {
                    amax = a;
                    maxScale = scales[j];
                }
            }
            short dBits;
            if (maxScale != 0) {
                float iscale = -32f / maxScale;
                for (int j = 0; j < QK / 16; j++) {
                    // ggml stores the rounded value in an int8_t before clamping
                    int l = (byte) QuantMath.nearestInt(iscale * scales[j]);
                    ls[j] = Math.max(-32, Math.min(31, l)) + 32;
                }
                dBits = Half.floatToF16(1 / iscale);
            } else {
                java.util.Arrays.fill(ls, 0);
                dBits = Half.floatToF16(0f);
            }
            finishBlock(src, x, L, ls, dBits, dst, dstOff + (long) b * BLOCK_BYTES);
        }
    }

    @Override
    public boolean usesImportance() {
        return true;
    }

    /**
     * ggml's quantize_row_q3_K_impl: per 16 values make_qx_quants weighted by
     * {@code importance * sqrt(sigma2 + x^2)}, the sixteen scales quantized to 6 bits by
     * make_qx_quants weighted by each group's total weight, then the values re-rounded.
     */
    @Override
    public void quantize(float[] src, int srcOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        if (importance == null) {
            quantize(src, srcOff, n, dst, dstOff);
            return;
        }
        byte[] L = new byte[QK];
        float[] scales = new float[QK / 16];
        float[] weight = new float[16];
        float[] sw = new float[QK / 16];
        byte[] lsb = new byte[QK / 16];
        int[] ls = new int[QK / 16];
        for (int b = 0; b < n / QK; b++) {
            int x = srcOff + b * QK;
            float sigma2 = 2 * QuantMath.sumSquares(src, x, QK) / QK;
            for (int j = 0; j < QK / 16; j++) {
                QuantMath.importanceWeights(src, x + 16 * j, importance, b * QK + 16 * j, sigma2, weight, 16);
                float sumw = 0;
                for (int l = 0; l < 16; l++) {
                    sumw += weight[l];
                }
                sw[j] = sumw;
                scales[j] = QuantMath.makeQxQuants(16, 4, src, x + 16 * j, L, 16 * j, weight, 0);
            }
            float dBlock = QuantMath.makeQxQuants(QK / 16, 32, scales, 0, lsb, 0, sw, 0);
            for (int j = 0; j < QK / 16; j++) {
                ls[j] = lsb[j];
            }
            finishBlock(src, x, L, ls, Half.floatToF16(dBlock), dst, dstOff + (long) b * BLOCK_BYTES);
        }
    }

    /**
     * Packs the sixteen 6-bit scales {@code ls} (0..63, offset by 32) and the block scale,
     * re-rounds every value with the scales as stored (groups whose scale is 0 keep the levels
     * in {@code L}, offset by 4) and writes the block.
     */
    private static void finishBlock(float[] src, int x, byte[] L, int[] ls, short dBits, MemorySegment dst, long blk) {
        int[] s = new int[12];
        for (int j = 0; j < QK / 16; j++) {
            int l = ls[j];
            if (j < 8) {
                s[j] = l & 0xF;
            } else {
                s[j - 8] |= (l & 0xF) << 4;
            }
            l >>= 4;
            s[j % 4 + 8] |= l << (2 * (j / 4));
        }
        float dAll = Half.f16ToFloat(dBits);
        for (int j = 0; j < QK / 16; j++) {
            float d = dAll * (scale(j, s) - 32);
            if (d == 0) {
                continue;
            }
            for (int ii = 0; ii < 16; ii++) {
                int l = QuantMath.nearestInt(src[x + 16 * j + ii] / d);
                L[16 * j + ii] = (byte) (Math.max(-4, Math.min(3, l)) + 4);
            }
        }
        byte[] hmask = new byte[QK / 8];
        int m = 0;
        int hm = 1;
        for (int j = 0; j < QK; j++) {
            if (L[j] > 3) {
                hmask[m] |= (byte) hm;
                L[j] -= 4;
            }
            if (++m == QK / 8) {
                m = 0;
                hm <<= 1;
            }
        }
        MemorySegment.copy(hmask, 0, dst, LE.BYTE, blk, QK / 8);
        Q2_KCodec.pack2Bit(L, dst, blk + 32);
        for (int i = 0; i < 12; i++) {
            dst.set(LE.BYTE, blk + 96 + i, (byte) s[i]);
        }
        dst.set(LE.SHORT, blk + 108, dBits);
    }
}
