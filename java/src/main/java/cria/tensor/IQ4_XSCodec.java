// IQ4_XS: super-blocks of 256 IQ4_NL-grid indices in 8 groups of 32 with 6-bit group scales (136 bytes).
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for IQ4_XS. Layout: F16 d, u16 scales_h (2 high bits per group), scales_l[4] (4 low bits
 * per group), qs[128] (16 bytes per group, nibbles as in Q4_0). x = d * (ls - 32) * grid[q].
 * Quantization follows ggml's quantize_iq4_xs, without or with an importance matrix.
 */
final class IQ4_XSCodec implements Codec {
    private static final int QK = 256;
    private static final int BLOCK_BYTES = 136;

    @Override
    public GgmlType type() {
        return GgmlType.IQ4_XS;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        byte[] v = QuantMath.IQ4NL_VALUES;
        for (int b = 0; b < n / QK; b++) {
            long blk = srcOff + (long) b * BLOCK_BYTES;
            float d = Half.f16ToFloat(src.get(LE.SHORT, blk));
            int scalesH = src.get(LE.SHORT, blk + 2) & 0xffff;
            int y = dstOff + b * QK;
            for (int ib = 0; ib < QK / 32; ib++) {
                int sl = src.get(LE.BYTE, blk + 4 + ib / 2) & 0xff;
                int ls = ((sl >> (4 * (ib % 2))) & 0xF) | (((scalesH >> (2 * ib)) & 3) << 4);
                float dl = d * (ls - 32);
                long qs = blk + 8 + 16L * ib;
                for (int j = 0; j < 16; j++) {
                    int q = src.get(LE.BYTE, qs + j) & 0xff;
                    dst[y + j] = dl * v[q & 0xF];
                    dst[y + j + 16] = dl * v[q >> 4];
                }
                y += 32;
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

    /** ggml's quantize_iq4_xs, with or without importance weights. */
    @Override
    public void quantize(float[] src, int srcOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        IQ4_NLCodec.Scratch s = new IQ4_NLCodec.Scratch(QK);
        for (int b = 0; b < n / QK; b++) {
            long blk = dstOff + (long) b * BLOCK_BYTES;
            short d = IQ4_NLCodec.quantizeSuperBlock(src, srcOff + b * QK, QK, s, 7, importance, b * QK);
            dst.set(LE.SHORT, blk, d);
            dst.set(LE.SHORT, blk + 2, (short) s.scalesH);
            MemorySegment.copy(s.scalesL, 0, dst, LE.BYTE, blk + 4, 4);
            MemorySegment.copy(s.q4, 0, dst, LE.BYTE, blk + 8, QK / 2);
        }
    }
}
