// Q6_K: super-blocks of 256 six-bit values in 16 groups with 8-bit signed scales (210 bytes).
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for Q6_K. Layout: ql[128] (low nibbles), qh[64] (high bit pairs), scales[16] (int8),
 * F16 d. Per 128 values: ql byte l holds values l (low) and l+64 (high), ql byte l+32 holds
 * l+32 and l+96; qh byte l holds the high pairs of l, l+32, l+64, l+96. x = d * sc * (q - 32).
 * Quantization is ggml's quantize_row_q6_K_ref (quantize_row_q6_K_impl with importance).
 */
final class Q6_KCodec implements Codec {
    private static final int QK = 256;
    private static final int BLOCK_BYTES = 210;

    @Override
    public GgmlType type() {
        return GgmlType.Q6_K;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        for (int b = 0; b < n / QK; b++) {
            long blk = srcOff + (long) b * BLOCK_BYTES;
            float d = Half.f16ToFloat(src.get(LE.SHORT, blk + 208));
            int y = dstOff + b * QK;
            for (int half = 0; half < 2; half++) {
                long ql = blk + 64 * half;
                long qh = blk + 128 + 32 * half;
                long sc = blk + 192 + 8 * half;
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int lo0 = src.get(LE.BYTE, ql + l) & 0xff;
                    int lo1 = src.get(LE.BYTE, ql + l + 32) & 0xff;
                    int h = src.get(LE.BYTE, qh + l) & 0xff;
                    int q1 = ((lo0 & 0xF) | ((h & 3) << 4)) - 32;
                    int q2 = ((lo1 & 0xF) | (((h >> 2) & 3) << 4)) - 32;
                    int q3 = ((lo0 >> 4) | (((h >> 4) & 3) << 4)) - 32;
                    int q4 = ((lo1 >> 4) | (((h >> 6) & 3) << 4)) - 32;
                    dst[y + l] = d * src.get(LE.BYTE, sc + is) * q1;
                    dst[y + l + 32] = d * src.get(LE.BYTE, sc + is + 2) * q2;
                    dst[y + l + 64] = d * src.get(LE.BYTE, sc + is + 4) * q3;
                    dst[y + l + 96] = d * src.get(LE.BYTE, sc + is + 6) * q4;
                }
                y += 128;
            }
        }
    }

    @Override
    public boolean canQuantize() {
        return true;
    }

    @Override
    public void quantize(float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        quantize(src, srcOff, n, null, dst, dstOff);
    }

    @Override
    public boolean usesImportance() {
        return true;
    }

    /**
     * ggml's quantize_row_q6_K_ref, or with {@code importance} quantize_row_q6_K_impl, which
     * differs only in weighing each group's make_qx_quants fit by the importance itself (not
     * {@code x^2}).
     */
    @Override
    public void quantize(float[] src, int srcOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        byte[] L = new byte[QK];
        float[] scales = new float[QK / 16];
        byte[] sc = new byte[QK / 16];
        for (int b = 0; b < n / QK; b++) {
            int x = srcOff + b * QK;
            long blk = dstOff + (long) b * BLOCK_BYTES;
            float maxScale = 0;
            float maxAbsScale = 0;
            for (int ib = 0; ib < QK / 16; ib++) {
                float scale = QuantMath.makeQxQuants(16, 32, src, x + 16 * ib, L, 16 * ib, importance, b * QK + 16 * ib);
                scales[ib] = scale;
                float abs = Math.abs(scale);
                if (abs > maxAbsScale) {
                    maxAbsScale = abs;
                    maxScale = scale;
                }
            }
            if (maxAbsScale < QuantMath.GROUP_MAX_EPS) {
                dst.asSlice(blk, BLOCK_BYTES).fill((byte) 0);
                continue;
            }
            float iscale = -128f / maxScale;
            short dBits = Half.floatToF16(1 / iscale);
            for (int ib = 0; ib < QK / 16; ib++) {
                sc[ib] = (byte) Math.min(127, QuantMath.nearestInt(iscale * scales[ib]));
            }
            float dAll = Half.f16ToFloat(dBits);
            for (int j = 0; j < QK / 16; j++) {
                float d = dAll * sc[j];
                if (d == 0) {
                    continue;
                }
                for (int ii = 0; ii < 16; ii++) {
                    int l = QuantMath.nearestInt(src[x + 16 * j + ii] / d);
                    L[16 * j + ii] = (byte) (Math.max(-32, Math.min(31, l)) + 32);
                }
            }
            for (int half = 0; half < 2; half++) {
                int j = 128 * half;
                long ql = blk + 64 * half;
                long qh = blk + 128 + 32 * half;
                for (int l = 0; l < 32; l++) {
                    int a = L[j + l];
                    int b2 = L[j + l + 32];
                    int c = L[j + l + 64];
                    int e = L[j + l + 96];
                    dst.set(LE.BYTE, ql + l, (byte) ((a & 0xF) | (c & 0xF) << 4));
                    dst.set(LE.BYTE, ql + l + 32, (byte) ((b2 & 0xF) | (e & 0xF) << 4));
                    dst.set(LE.BYTE, qh + l, (byte) ((a >> 4) | (b2 >> 4) << 2 | (c >> 4) << 4 | (e >> 4) << 6));
                }
            }
            MemorySegment.copy(sc, 0, dst, LE.BYTE, blk + 192, 16);
            dst.set(LE.SHORT, blk + 208, dBits);
        }
    }
}
