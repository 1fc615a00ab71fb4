// Q4_K: super-blocks of 256 four-bit values in 8 groups of 32, each with a 6-bit scale and 6-bit min (144 bytes).
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for Q4_K. Layout: F16 d, F16 dmin, scales[12] (eight 6-bit scale/min pairs, see
 * {@link QuantMath#scaleMinK4}), qs[128] (per 64 values: 32 bytes, low nibbles the first 32,
 * high nibbles the next 32). x = d * sc * q - dmin * m. Quantization is ggml's
 * quantize_row_q4_K_ref (llama-quantize without an importance matrix) or quantize_row_q4_K_impl
 * (with one).
 */
final class Q4_KCodec implements Codec {
    private static final int QK = 256;
    private static final int BLOCK_BYTES = 144;

    @Override
    public GgmlType type() {
        return GgmlType.Q4_K;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int b = 0; b < n / QK; b++) {
            long blk = srcOff + (long) b * BLOCK_BYTES;
            float d = Half.f16ToFloat(src.get(LE.SHORT, blk));
            float min = Half.f16ToFloat(src.get(LE.SHORT, blk + 2));
            int y = dstOff + b * QK;
            for (int g = 0; g < 4; g++) {
                long q = blk + 16 + g * 32;
                int sm1 = QuantMath.scaleMinK4(2 * g, src, blk + 4);
                int sm2 = QuantMath.scaleMinK4(2 * g + 1, src, blk + 4);
                float d1 = d * (sm1 & 0xff);
                float m1 = min * (sm1 >> 8);
                float d2 = d * (sm2 & 0xff);
                float m2 = min * (sm2 >> 8);
                for (int l = 0; l < 32; l++) {
                    dst[y + l] = d1 * (src.get(LE.BYTE, q + l) & 0xF) - m1;
                }
                for (int l = 0; l < 32; l++) {
                    dst[y + 32 + l] = d2 * ((src.get(LE.BYTE, q + l) & 0xff) >> 4) - m2;
                }
                y += 64;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        quantizeK(src, srcOff, n, dst, dstOff, 15);
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
            quantizeKWeighted(src, srcOff, n, importance, dst, dstOff, 15);
        }
    }

    /**
     * The shared Q4_K / Q5_K importance-weighted quantizer (ggml's quantize_row_q4_K_impl and
     * quantize_row_q5_K_impl): per 32 values the weighted affine fit of make_qkx3_quants, the
     * eight scales and mins quantized to 6 bits by make_qp_quants weighted by each group's total
     * weight, then every value re-rounded with the scales as stored.
     */
    static void quantizeKWeighted(float[] src, int srcOff, int n, float[] importance, MemorySegment dst, long dstOff, int nmax) {
        boolean five = nmax == 31;
        int blockBytes = five ? 176 : BLOCK_BYTES;
        byte[] L = new byte[QK];
        float[] weights = new float[32];
        float[] mins = new float[QK / 32];
        float[] scales = new float[QK / 32];
        float[] sw = new float[QK / 32];
        int[] ls = new int[QK / 32];
        int[] lm = new int[QK / 32];
        byte[] packed = new byte[12];
        for (int b = 0; b < n / QK; b++) {
            int x = srcOff + b * QK;
            long blk = dstOff + (long) b * blockBytes;
            float sigma2 = 2 * QuantMath.sumSquares(src, x, QK) / QK;
            for (int j = 0; j < QK / 32; j++) {
                QuantMath.importanceWeights(src, x + 32 * j, importance, b * QK + 32 * j, sigma2, weights, 32);
                float sumw = 0;
                for (int l = 0; l < 32; l++) {
                    sumw += weights[l];
                }
                sw[j] = sumw;
                scales[j] = QuantMath.makeQkx3Quants(32, nmax, src, x + 32 * j, weights, L, 32 * j, mins, j, -0.9f, 0.05f, 36, false);
            }
            float dBlock = QuantMath.makeQpQuants(QK / 32, 63, scales, ls, sw);
            float mBlock = QuantMath.makeQpQuants(QK / 32, 63, mins, lm, sw);
            for (int j = 0; j < QK / 32; j++) {
                // Q5_K clamps to 6 bits; Q4_K stores ggml's uint8_t as it is
                int s = five ? Math.min(63, ls[j]) : ls[j];
                int m = five ? Math.min(63, lm[j]) : lm[j];
                QuantMath.packScaleMinK4(j, s, m, packed);
            }
            short dBits = Half.floatToF16(dBlock);
            short dminBits = Half.floatToF16(mBlock);
            requantizeAndStore(src, x, L, packed, dBits, dminBits, nmax, dst, blk);
        }
    }

    /**
     * The shared Q4_K / Q5_K reference quantizer: per 32 values an affine fit with levels in
     * {@code [0, nmax]}, then the eight scales and mins quantized to 6 bits against the block's
     * largest, then every value re-rounded with the scales as stored.
     */
    static void quantizeK(float[] src, int srcOff, int n, MemorySegment dst, long dstOff, int nmax) {
        boolean five = nmax == 31;
        int blockBytes = five ? 176 : BLOCK_BYTES;
        byte[] L = new byte[QK];
        float[] weights = new float[32];
        float[] mins = new float[QK / 32];
        float[] scales = new float[QK / 32];
        byte[] packed = new byte[12];
        for (int b = 0; b < n / QK; b++) {
            int x = srcOff + b * QK;
            long blk = dstOff + (long) b * blockBytes;
            float maxScale = 0;
            float maxMin = 0;
            for (int j = 0; j < QK / 32; j++) {
                int xj = x + 32 * j;
                float sumX2 = 0;
                for (int l = 0; l < 32; l++) {
                    sumX2 += src[xj + l] * src[xj + l];
                }
                float avX = (float) Math.sqrt(sumX2 / 32);
                for (int l = 0; l < 32; l++) {
                    weights[l] = avX + Math.abs(src[xj + l]);
                }
                scales[j] = five
                        ? QuantMath.makeQkx2Quants(32, 31, src, xj, weights, L, 32 * j, mins, j, -0.5f, 0.1f, 15, false)
                        : QuantMath.makeQkx2Quants(32, 15, src, xj, weights, L, 32 * j, mins, j, -1f, 0.1f, 20, false);
                if (scales[j] > maxScale) {
                    maxScale = scales[j];
                }
                if (mins[j] > maxMin) {
                    maxMin = mins[j];
                }
            }
            float invScale = maxScale > 0 ? 63f / maxScale : 0f;
            float invMin = maxMin > 0 ? 63f / maxMin : 0f;
            for (int j = 0; j < QK / 32; j++) {
                // ggml stores the rounded values in uint8_t, then clamps to 63
                int ls = Math.min(63, QuantMath.nearestInt(invScale * scales[j]) & 0xff);
                int lm = Math.min(63, QuantMath.nearestInt(invMin * mins[j]) & 0xff);
                QuantMath.packScaleMinK4(j, ls, lm, packed);
            }
            short dBits = Half.floatToF16(maxScale / 63f);
            short dminBits = Half.floatToF16(maxMin / 63f);
            requantizeAndStore(src, x, L, packed, dBits, dminBits, nmax, dst, blk);
        }
    }

    /**
     * Re-rounds the block's values with the scales and mins as stored ({@code packed}, the
     * F16 {@code dBits} and {@code dminBits}; groups whose scale is 0 keep their levels in
     * {@code L}) and writes the Q4_K ({@code nmax} 15) or Q5_K ({@code nmax} 31) block at {@code blk}.
     */
    private static void requantizeAndStore(float[] src, int x, byte[] L, byte[] packed, short dBits, short dminBits, int nmax,
                                           MemorySegment dst, long blk) {
        float dAll = Half.f16ToFloat(dBits);
        float dminAll = Half.f16ToFloat(dminBits);
        for (int j = 0; j < QK / 32; j++) {
            int sm = QuantMath.scaleMinK4(j, packed);
            float d = dAll * (sm & 0xff);
            if (d == 0) {
                continue;
            }
            float dm = dminAll * (sm >> 8);
            for (int ii = 0; ii < 32; ii++) {
                int l = QuantMath.nearestInt((src[x + 32 * j + ii] + dm) / d);
                L[32 * j + ii] = (byte) Math.max(0, Math.min(nmax, l));
            }
        }
        dst.set(LE.SHORT, blk, dBits);
        dst.set(LE.SHORT, blk + 2, dminBits);
        MemorySegment.copy(packed, 0, dst, LE.BYTE, blk + 4, 12);
        if (nmax == 31) {
            Q5_KCodec.pack5Bit(L, dst, blk + 16);
        } else {
            for (int j = 0; j < QK; j += 64) {
                for (int l = 0; l < 32; l++) {
                    dst.set(LE.BYTE, blk + 16 + j / 2 + l, (byte) (L[j + l] | L[j + l + 32] << 4));
                }
            }
        }
    }
}
