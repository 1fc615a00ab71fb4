// IQ4_NL: blocks of 32 four-bit indices into a fixed non-linear grid, with one F16 scale (18 bytes).
package cria.tensor;

import cria.gguf.GgmlType;
import java.lang.foreign.MemorySegment;

/**
 * Codec for IQ4_NL: x = d * grid[q] with the 16-value grid {@link QuantMath#IQ4NL_VALUES};
 * nibbles laid out as in Q4_0. Quantization follows ggml's quantize_iq4_nl (weights x*x, 15
 * trial scales), or with an importance matrix its weighted form, as llama-quantize runs it.
 */
final class IQ4_NLCodec implements Codec {
    private static final int QK = 32;
    private static final int BLOCK_BYTES = 18;

    @Override
    public GgmlType type() {
        return GgmlType.IQ4_NL;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOff, float[] dst, int dstOff, int n) {
        byte[] v = QuantMath.IQ4NL_VALUES;
        for (int b = 0; b < n / QK; b++) {
            long off = srcOff + (long) b * BLOCK_BYTES;
            float d = Half.f16ToFloat(src.get(LE.SHORT, off));
            int o = dstOff + b * QK;
            for (int j = 0; j < QK / 2; j++) {
                int q = src.get(LE.BYTE, off + 2 + j) & 0xff;
                dst[o + j] = d * v[q & 0xF];
                dst[o + j + QK / 2] = d * v[q >> 4];
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

    /** ggml's quantize_iq4_nl, with or without importance weights. */
    @Override
    public void quantize(float[] src, int srcOff, int n, float[] importance, MemorySegment dst, long dstOff) {
        Scratch s = new Scratch(QK);
        for (int b = 0; b < n / QK; b++) {
            long off = dstOff + (long) b * BLOCK_BYTES;
            short d = quantizeSuperBlock(src, srcOff + b * QK, QK, s, 7, importance, b * QK);
            dst.set(LE.SHORT, off, d);
            MemorySegment.copy(s.q4, 0, dst, LE.BYTE, off + 2, QK / 2);
        }
    }

    /** Work arrays for one super-block; {@code q4}, {@code scalesH}, {@code scalesL} hold the result. */
    static final class Scratch {
        final byte[] L;
        final float[] weight = new float[32];
        final float[] scales;
        final byte[] q4;
        final byte[] scalesL;
        int scalesH;

        Scratch(int superBlock) {
            L = new byte[superBlock];
            scales = new float[superBlock / 32];
            q4 = new byte[superBlock / 2];
            scalesL = new byte[Math.max(1, superBlock / 64)];
        }
    }

    /**
     * ggml's quantize_row_iq4_nl_impl for a super-block of {@code size} values (32 for IQ4_NL,
     * 256 for IQ4_XS) in groups of 32: each group's best scale over {@code 2 * ntry + 1} trials,
     * then (for several groups) 6-bit group scales against the largest. Values are weighted by
     * x^2, or with an importance matrix {@code qw} (from {@code qwOff}, null for none) by
     * {@code qw * sqrt(sigma2 + x^2)}. Returns the F16 super-block scale; levels land in {@code s.q4}.
     */
    static short quantizeSuperBlock(float[] x, int xOff, int size, Scratch s, int ntry, float[] qw, int qwOff) {
        byte[] values = QuantMath.IQ4NL_VALUES;
        float sigma2 = 0;
        if (qw != null) {
            sigma2 = QuantMath.sumSquares(x, xOff, size) * (2f / size);
        }
        java.util.Arrays.fill(s.q4, (byte) 0);
        short dh = Half.floatToF16(0f);
        float maxScale = 0;
        float amaxScale = 0;
        int nb = size / 32;
        for (int ib = 0; ib < nb; ib++) {
            int xb = xOff + 32 * ib;
            if (qw != null) {
                QuantMath.importanceWeights(x, xb, qw, qwOff + 32 * ib, sigma2, s.weight, 32);
            } else {
                for (int j = 0; j < 32; j++) {
                    s.weight[j] = x[xb + j] * x[xb + j];
                }
            }
            float amax = 0;
            float max = 0;
            for (int j = 0; j < 32; j++) {
                float ax = Math.abs(x[xb + j]);
                if (ax > amax) {
                    amax = ax;
                    max = x[xb + j];
                }
            }
            if (amax < QuantMath.GROUP_MAX_EPS) {
                s.scales[ib] = 0;
                continue;
            }
            float d = ntry > 0 ? -max / values[0] : max / values[0];
            float id = 1 / d;
            float sumqx = 0;
            float sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                int l = QuantMath.bestIndexInt8(values, id * x[xb + j]);
                s.L[32 * ib + j] = (byte) l;
                float q = values[l];
                float w = s.weight[j];
                sumqx += w * q * x[xb + j];
                sumq2 += w * q * q;
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0f;
            float best = d * sumqx;
            for (int itry = -ntry; itry <= ntry; itry++) {
                id = (itry + values[0]) / max;
                sumqx = 0;
                sumq2 = 0;
                for (int j = 0; j < 32; j++) {
                    int l = QuantMath.bestIndexInt8(values, id * x[xb + j]);
                    float q = values[l];
                    float w = s.weight[j];
                    sumqx += w * q * x[xb + j];
                    sumq2 += w * q * q;
                }
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
            s.scales[ib] = d;
            float absD = Math.abs(d);
            if (absD > amaxScale) {
                amaxScale = absD;
                maxScale = d;
            }
        }
        if (nb > 1) {
            s.scalesH = 0;
            float d = -maxScale / 32;
            dh = Half.floatToF16(d);
            float id = d != 0 ? 1 / d : 0f;
            for (int ib = 0; ib < nb; ib++) {
                int l = QuantMath.nearestInt(id * s.scales[ib]);
                l = Math.max(-32, Math.min(31, l));
                float dl = d * l;
                float idl = dl != 0 ? 1 / dl : 0f;
                int xb = xOff + 32 * ib;
                for (int j = 0; j < 32; j++) {
                    s.L[32 * ib + j] = (byte) QuantMath.bestIndexInt8(values, idl * x[xb + j]);
                }
                l += 32;
                int lo = l & 0xF;
                int hi = l >> 4;
                if (ib % 2 == 0) {
                    s.scalesL[ib / 2] = (byte) lo;
                } else {
                    s.scalesL[ib / 2] |= (byte) (lo << 4);
                }
                s.scalesH |= hi << (2 * (ib % 8));
            }
        } else {
            dh = Half.floatToF16(s.scales[0]);
            if (ntry > 0) {
                float id = s.scales[0] != 0 ? 1 / s.scales[0] : 0f;
                for (int j = 0; j < size; j++) {
                    s.L[j] = (byte) QuantMath.bestIndexInt8(values, id * x[xOff + j]);
                }
            }
        }
        for (int i = 0; i < size / 32; i++) {
            for (int j = 0; j < 16; j++) {
                s.q4[16 * i + j] = (byte) (s.L[32 * i + j] | s.L[32 * i + 16 + j] << 4);
            }
        }
        return dh;
    }
}
