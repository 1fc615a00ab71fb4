// Q2_K: super-blocks of 256 two-bit values in 16 groups, each with a 4-bit scale and a 4-bit min (84 bytes).
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for Q2_K. Layout: scales[16] (low nibble scale, high nibble min), qs[64] (four 2-bit
 * values per byte, 32 bytes per 128 values), F16 d, F16 dmin. x = d * sc * q - dmin * m.
 * Quantization is ggml's quantize_row_q2_K_ref (llama-quantize without an importance matrix) or
 * quantize_row_q2_K_impl (with one).
 */
final class Q2_KCodec implements Codec {
    private static final int QK = 256;
    private static final int BLOCK_BYTES = 84;

    @Override
    public GgmlType type() {
        return GgmlType.Q2_K;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int b = 0; b < n / QK; b++) {
            long blk = srcOff + (long) b * BLOCK_BYTES;
            float d = Half.f16ToFloat(src.get(LE.SHORT, blk + 80));
            float min = Half.f16ToFloat(src.get(LE.SHORT, blk + 82));
            int y = dstOff + b * QK;
            int is = 0;
            for (int half = 0; half < 2; half++) {
                long q = blk + 16 + half * 32;
                for (int shift = 0; shift < 8; shift += 2) {
                    for (int part = 0; part < 2; part++) {
                        int sc = src.get(LE.BYTE, blk + is++) & 0xff;
                        float dl = d * (sc & 0xF);
                        float ml = min * (sc >> 4);
                        for (int l = 0; l < 16; l++) {
                            int v = ((src.get(LE.BYTE, q + part * 16 + l) & 0xff) >> shift) & 3;
                            dst[y++] = dl * v - ml;
                        }
                    }
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
        float[] weights = new float[16];
        float[] mins = new float[QK / 16];
        float[] scales = new float[QK / 16];
        byte[] sc = new byte[QK / 16];
        for (int b = 0; b < n / QK; b++) {
            int x = srcOff + b * QK;
            long blk = dstOff + (long) b * BLOCK_BYTES;
            float maxScale = 0;
            float maxMin = 0;
            for (int j = 0; j < QK / 16; j++) {
                for (int l = 0; l < 16; l++) {
                    weights[l] = Math.abs(src[x + 16 * j + l]);
                }
                scales[j] = QuantMath.makeQkx2Quants(16, 3, src, x + 16 * j, weights, L, 16 * j, mins, j, -0.5f, 0.1f, 15, true);
                if (scales[j] > maxScale) {
                    maxScale = scales[j];
                }
                if (mins[j] > maxMin) {
                    maxMin = mins[j];
                }
            }
            short dBits;
            short dminBits;
            if (maxScale > 0) {
                float iscale = 15f / maxScale;
                for (int j = 0; j < QK / 16; j++) {
                    sc[j] = (byte) QuantMath.nearestInt(iscale * scales[j]);
                }
                dBits = Half.floatToF16(maxScale / 15f);
            } else {
                java.util.Arrays.fill(sc, (byte) 0);
                dBits = Half.floatToF16(0f);
            }
            if (maxMin > 0) {
                float iscale = 15f / maxMin;
                for (int j = 0; j < QK / 16; j++) {
                    sc[j] |= (byte) (QuantMath.nearestInt(iscale * mins[j]) << 4);
                }
                dminBits = Half.floatToF16(maxMin / 15f);
            } else {
                dminBits = Half.floatToF16(0f);
            }
            float dAll = Half.f16ToFloat(dBits);
            float dminAll = Half.f16ToFloat(dminBits);
            for (int j = 0; j < QK / 16; j++) {
                float d = dAll * (sc[j] & 0xF);
                if (d == 0) {
                    continue;
                }
                float dm = dminAll * ((sc[j] & 0xff) >> 4);
                for (int ii = 0; ii < 16; ii++) {
                    int l = QuantMath.nearestInt((src[x + 16 * j + ii] + dm) / d);
                    L[16 * j + ii] = (byte) Math.max(0, Math.min(3, l));
                }
            }
            MemorySegment.copy(sc, 0, dst, LE.BYTE, blk, 16);
            pack2Bit(L, dst, blk + 16);
            dst.set(LE.SHORT, blk + 80, dBits);
            dst.set(LE.SHORT, blk + 82, dminBits);
        }
    }

    @Override
    public boolean usesImportance() {
        return true;
    }

    /**
     * ggml's quantize_row_q2_K_impl: per 16 values the weighted affine fit of make_qkx3_quants,
     * the sixteen scales and mins quantized to 4 bits by make_qp_quants (weighted by each
     * group's total weight), then every value re-rounded with the stored scales.
     */
    @Override
    public void quantize(float[] src, int srcOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        if (importance == null) {
            quantize(src, srcOff, n, dst, dstOff);
            return;
        }
        byte[] L = new byte[QK];
        float[] weight = new float[16];
        float[] mins = new float[QK / 16];
        float[] scales = new float[QK / 16];
        float[] sw = new float[QK / 16];
        int[] ls = new int[QK / 16];
        int[] lm = new int[QK / 16];
        byte[] sc = new byte[QK / 16];
        for (int b = 0; b < n / QK; b++) {
            int x = srcOff + b * QK;
            long blk = dstOff + (long) b * BLOCK_BYTES;
            float sigma2 = QuantMath.sumSquares(src, x, QK) / QK;
            for (int j = 0; j < QK / 16; j++) {
                QuantMath.importanceWeights(src, x + 16 * j, importance, b * QK + 16 * j, sigma2, weight, 16);
                float s = 0;
                for (int l = 0; l < 16; l++) {
                    s += weight[l];
                }
                sw[j] = s;
                scales[j] = QuantMath.makeQkx3Quants(16, 3, src, x + 16 * j, weight, L, 16 * j, mins, j, -0.9f, 0.05f, 36, false);
            }
            float dm = QuantMath.makeQpQuants(QK / 16, 15, scales, ls, sw);
            float mm = QuantMath.makeQpQuants(QK / 16, 15, mins, lm, sw);
            short dBits = Half.floatToF16(dm);
            short dminBits = Half.floatToF16(mm);
            dm = Half.f16ToFloat(dBits);
            mm = Half.f16ToFloat(dminBits);
            for (int j = 0; j < QK / 16; j++) {
                sc[j] = (byte) (ls[j] | lm[j] << 4);
            }
            for (int j = 0; j < QK / 16; j++) {
                float d = dm * (sc[j] & 0xF);
                if (d == 0) {
                    continue;
                }
                float m = mm * ((sc[j] & 0xff) >> 4);
                for (int ii = 0; ii < 16; ii++) {
                    int l = QuantMath.nearestInt((src[x + 16 * j + ii] + m) / d);
                    L[16 * j + ii] = (byte) Math.max(0, Math.min(3, l));
                }
            }
            MemorySegment.copy(sc, 0, dst, LE.BYTE, blk, 16);
            pack2Bit(L, dst, blk + 16);
            dst.set(LE.SHORT, blk + 80, dBits);
            dst.set(LE.SHORT, blk + 82, dminBits);
        }
    }

    /** Packs 256 two-bit levels: byte l of each 32-byte group holds values l, l+32, l+64, l+96 of its 128. */
    static void pack2Bit(byte[] L, MemorySegment dst, long off) {
        for (int j = 0; j < QK; j += 128) {
            for (int l = 0; l < 32; l++) {
                int v = L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6;
                dst.set(LE.BYTE, off + j / 4 + l, (byte) v);
            }
        }
    }
}
