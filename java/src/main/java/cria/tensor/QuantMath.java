// The scalar helpers ggml's quantizers share (rounding, scale searches), reproduced operation by operation.
package cria.tensor;

import java.lang.foreign.MemorySegment;

/**
 * Building blocks of ggml's reference quantizers. Each method follows ggml's float operations in
 * the same order (Java float arithmetic is IEEE single precision with no fused multiply-add, as
 * ggml's base library is compiled), so that the quantized bytes come out identical. Scratch arrays
 * are passed in so that a row can be quantized without allocating per block.
 */
final class QuantMath {
    /** Groups whose largest magnitude is below this count as all zero. */
    static final float GROUP_MAX_EPS = 1e-15f;

    /** The non-linear 4-bit grid of IQ4_NL and IQ4_XS. */
    static final byte[] IQ4NL_VALUES = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    private QuantMath() {}

    /**
     * Rounds to the nearest integer, ties to even, the way ggml does it: adding 1.5 * 2^23 pushes
     * the fraction out of the mantissa, whose low bits are then the integer. Valid for |x| < 2^22.
     */
    static int nearestInt(float x) {
        float v = x + 12582912f;
        return (Float.floatToRawIntBits(v) & 0x007fffff) - 0x00400000;
    }

    /** C's roundf: to the nearest integer, halves away from zero. */
    static float roundf(float x) {
        double r = Math.floor(Math.abs((double) x) + 0.5);
        return (float) Math.copySign(r, x);
    }

    /** Float to IEEE half and back: the value a stored F16 scale really has. */
    static float viaF16(float x) {
        return Half.f16ToFloat(Half.floatToF16(x));
    }

    /** Writes one block of values {@code src[x ..]} at {@code dst[off ..]} (one format's block layout). */
    @FunctionalInterface
    interface BlockWriter {
        void write(float[] src, int x, MemorySegment dst, long off);
    }

    /**
     * Quantizes {@code n} values block by block, independently, as ggml's {@code quantize_row_*_ref}
     * do for the formats with one scale per block: {@code qk} values become {@code blockBytes} bytes.
     */
    static void quantizeBlocks(float[] src, int srcOff, int n, MemorySegment dst, long dstOff, int qk, int blockBytes, BlockWriter w) {
        for (int b = 0; b < n / qk; b++) {
            w.write(src, srcOff + b * qk, dst, dstOff + (long) b * blockBytes);
        }
    }

    /** The smallest of {@code x[off .. off + n)} (ggml starts from FLT_MAX). */
    static float min(float[] x, int off, int n) {
        float min = Float.MAX_VALUE;
        for (int i = 0; i < n; i++) {
            if (x[off + i] < min) {
                min = x[off + i];
            }
        }
        return min;
    }

    /** The largest of {@code x[off .. off + n)} (ggml starts from -FLT_MAX). */
    static float max(float[] x, int off, int n) {
        float max = -Float.MAX_VALUE;
        for (int i = 0; i < n; i++) {
            if (x[off + i] > max) {
                max = x[off + i];
            }
        }
        return max;
    }

    /**
     * The value of largest magnitude in {@code x[off .. off + n)}, with its sign; the first such
     * when several tie, as ggml keeps it (0 for an empty or all-zero range).
     */
    static float signedMaxAbs(float[] x, int off, int n) {
        float max = 0;
        float amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[off + i]);
            if (ax > amax) {
                amax = ax;
                max = x[off + i];
            }
        }
        return max;
    }

    /**
     * ggml's make_qx_quants: a symmetric scale for {@code n} values in {@code [-nmax, nmax-1]},
     * refined over 18 nearby trial scales to minimise the weighted error. Writes
     * {@code L[lOff ..]} as unsigned levels (level + nmax). {@code weights} may be null: then the
     * weight of x is x*x ({@code rmseType} 1, the only kind the no-imatrix paths use).
     */
    static float makeQxQuants(int n, int nmax, float[] x, int xOff, byte[] L, int lOff, float[] weights, int wOff) {
        float max = signedMaxAbs(x, xOff, n);
        if (Math.abs(max) < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) {
                L[lOff + i] = 0;
            }
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0;
        float suml2 = 0;
        for (int i = 0; i < n; i++) {
            float xi = x[xOff + i];
            int l = nearestInt(iscale * xi);
            l = Math.max(-nmax, Math.min(nmax - 1, l));
            L[lOff + i] = (byte) (l + nmax);
            float w = weights != null ? weights[wOff + i] : xi * xi;
            sumlx += w * xi * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) {
                continue;
            }
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = 0;
            suml2 = 0;
            for (int i = 0; i < n; i++) {
                float xi = x[xOff + i];
                int l = nearestInt(iscale * xi);
                l = Math.max(-nmax, Math.min(nmax - 1, l));
                float w = weights != null ? weights[wOff + i] : xi * xi;
                sumlx += w * xi * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; i++) {
                    int l = nearestInt(iscale * x[xOff + i]);
                    L[lOff + i] = (byte) (nmax + Math.max(-nmax, Math.min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /**
     * ggml's make_q3_quants with its RMSE refinement: symmetric levels in {@code [-nmax, nmax-1]}
     * weighted by x*x, then up to five passes that move single values to a better level.
     * Writes unsigned levels (level + nmax).
     */
    static float makeQ3Quants(int n, int nmax, float[] x, int xOff, byte[] L, int lOff) {
        float max = signedMaxAbs(x, xOff, n);
        if (Math.abs(max) < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) {
                L[lOff + i] = 0;
            }
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0;
        float suml2 = 0;
        for (int i = 0; i < n; i++) {
            float xi = x[xOff + i];
            int l = nearestInt(iscale * xi);
            l = Math.max(-nmax, Math.min(nmax - 1, l));
            L[lOff + i] = (byte) l;
            float w = xi * xi;
            sumlx += w * xi * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; itry++) {
            int changed = 0;
            for (int i = 0; i < n; i++) {
                float xi = x[xOff + i];
                float w = xi * xi;
                int li = L[lOff + i];
                float slx = sumlx - w * xi * li;
                if (slx > 0) {
                    float sl2 = suml2 - w * li * li;
                    int nl = nearestInt(xi * sl2 / slx);
                    nl = Math.max(-nmax, Math.min(nmax - 1, nl));
                    if (nl != li) {
                        slx += w * xi * nl;
                        sl2 += w * nl * nl;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[lOff + i] = (byte) nl;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) {
                break;
            }
        }
        for (int i = 0; i < n; i++) {
            L[lOff + i] += (byte) nmax;
        }
        return suml2 > 0f ? sumlx / suml2 : 0f;
    }

    /**
     * ggml's make_qkx2_quants: an affine fit x ~ scale * L - min with L in {@code [0, nmax]},
     * searching {@code nstep + 1} trial scales around the range and solving the weighted least
     * squares for each. Returns the scale; {@code minOut[minIdx]} receives the (non-negative)
     * offset to subtract. {@code useMad} measures absolute instead of squared error.
     */
    static float makeQkx2Quants(int n, int nmax, float[] x, int xOff, float[] weights, byte[] L, int lOff,
                                float[] minOut, int minIdx, float rmin, float rdelta, int nstep, boolean useMad) {
        // a 0-based copy and int levels keep the hot loops simple for the JIT; the float operations are unchanged
        float[] xs = java.util.Arrays.copyOfRange(x, xOff, xOff + n);
        int[] la = new int[n];
        float min = xs[0];
        float max = xs[0];
        float sumW = weights[0];
        float sumX = sumW * xs[0];
        for (int i = 1; i < n; i++) {
            float xi = xs[i];
            if (xi < min) {
                min = xi;
            }
            if (xi > max) {
                max = xi;
            }
            float w = weights[i];
            sumW += w;
            sumX += w * xi;
        }
        if (min > 0) {
            min = 0;
        }
        if (max == min) {
            for (int i = 0; i < n; i++) {
                L[lOff + i] = 0;
            }
            minOut[minIdx] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = nearestInt(iscale * (xs[i] - min));
            l = Math.max(0, Math.min(nmax, l));
            L[lOff + i] = (byte) l;
            float diff = scale * l + min - xs[i];
            diff = useMad ? Math.abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1) {
            minOut[minIdx] = -min;
            return scale;
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0;
            float sumL2 = 0;
            float sumXL = 0;
            for (int i = 0; i < n; i++) {
                float xi = xs[i];
                int l = nearestInt(iscale * (xi - min));
                l = Math.max(0, Math.min(nmax, l));
                la[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * xi;
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float err = 0;
                if (useMad) {
                    for (int i = 0; i < n; i++) {
                        float diff = thisScale * la[i] + thisMin - xs[i];
                        err += weights[i] * Math.abs(diff);
                    }
                } else {
                    for (int i = 0; i < n; i++) {
                        float diff = thisScale * la[i] + thisMin - xs[i];
                        err += weights[i] * (diff * diff);
                    }
                }
                if (err < bestError) {
                    for (int i = 0; i < n; i++) {
                        L[lOff + i] = (byte) la[i];
                    }
                    bestError = err;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        minOut[minIdx] = -min;
        return scale;
    }

    /**
     * The weights of ggml's importance-weighted quantizers: {@code qw[j] * sqrt(sigma2 + x[j]^2)}
     * for {@code n} values, into {@code out[0 ..]}.
     */
    static void importanceWeights(float[] x, int xOff, float[] qw, int qwOff, float sigma2, float[] out, int n) {
        for (int j = 0; j < n; j++) {
            float xj = x[xOff + j];
            out[j] = qw[qwOff + j] * (float) Math.sqrt(sigma2 + xj * xj);
        }
    }

    /** The sum of squares of {@code x[off .. off + n)}, accumulated in order as ggml does. */
    static float sumSquares(float[] x, int off, int n) {
        float s = 0;
        for (int j = 0; j < n; j++) {
            s += x[off + j] * x[off + j];
        }
        return s;
    }

    /**
     * ggml's make_qkx3_quants with explicit weights: the affine fit of {@link #makeQkx2Quants}
     * (levels in {@code [0, nmax]}, {@code nstep + 1} trial scales) as the importance-weighted
     * quantizers use it. Returns the scale; {@code minOut[minIdx]} receives the offset to subtract.
     */
    static float makeQkx3Quants(int n, int nmax, float[] x, int xOff, float[] weights, byte[] L, int lOff,
                                float[] minOut, int minIdx, float rmin, float rdelta, int nstep, boolean useMad) {
        float[] xs = java.util.Arrays.copyOfRange(x, xOff, xOff + n);
        int[] la = new int[n];
        float min = xs[0];
        float max = xs[0];
        float sumW = weights[0];
        float sumX = sumW * xs[0];
        for (int i = 1; i < n; i++) {
            float xi = xs[i];
            if (xi < min) {
                min = xi;
            }
            if (xi > max) {
                max = xi;
            }
            float w = weights[i];
            sumW += w;
            sumX += w * xi;
        }
        if (min > 0) {
            min = 0;
        }
        if (max <= min) {
            for (int i = 0; i < n; i++) {
                L[lOff + i] = 0;
            }
            minOut[minIdx] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestMad = 0;
        for (int i = 0; i < n; i++) {
            int l = nearestInt(iscale * (xs[i] - min));
            l = Math.max(0, Math.min(nmax, l));
            L[lOff + i] = (byte) l;
            float diff = scale * l + min - xs[i];
            diff = useMad ? Math.abs(diff) : diff * diff;
            bestMad += weights[i] * diff;
        }
        if (nstep < 1) {
            minOut[minIdx] = -min;
            return scale;
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0;
            float sumL2 = 0;
            float sumXL = 0;
            for (int i = 0; i < n; i++) {
                float xi = xs[i];
                int l = nearestInt(iscale * (xi - min));
                l = Math.max(0, Math.min(nmax, l));
                la[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * xi;
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float mad = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * la[i] + thisMin - xs[i];
                    diff = useMad ? Math.abs(diff) : diff * diff;
                    mad += weights[i] * diff;
                }
                if (mad < bestMad) {
                    for (int i = 0; i < n; i++) {
                        L[lOff + i] = (byte) la[i];
                    }
                    bestMad = mad;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        minOut[minIdx] = -min;
        return scale;
    }

    /**
     * ggml's make_qp_quants: a scale without offset for the non-negative {@code x[0 .. n)} (the
     * sub-block scales or mins of a K-quant block) with levels in {@code [0, nmax]}, weighted by
     * {@code qw}: 9 trial scales, then up to five passes moving single levels. Levels land in
     * {@code L} as ggml's uint8_t holds them (0..255, wrapped as C wraps a negative int).
     */
    static float makeQpQuants(int n, int nmax, float[] x, int[] L, float[] qw) {
        float max = 0;
        for (int i = 0; i < n; i++) {
            max = max > x[i] ? max : x[i];
        }
        if (max < GROUP_MAX_EPS) {
            java.util.Arrays.fill(L, 0, n, 0);
            return 0f;
        }
        float iscale = nmax / max;
        for (int i = 0; i < n; i++) {
            L[i] = nearestInt(iscale * x[i]) & 0xff;
        }
        float scale = 1 / iscale;
        float bestMse = 0;
        for (int i = 0; i < n; i++) {
            float diff = x[i] - scale * L[i];
            bestMse += qw[i] * diff * diff;
        }
        for (int is = -4; is <= 4; is++) {
            if (is == 0) {
                continue;
            }
            float iscaleIs = (0.1f * is + nmax) / max;
            float scaleIs = 1 / iscaleIs;
            float mse = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.min(nmax, nearestInt(iscaleIs * x[i]));
                float diff = x[i] - scaleIs * l;
                mse += qw[i] * diff * diff;
            }
            if (mse < bestMse) {
                bestMse = mse;
                iscale = iscaleIs;
            }
        }
        float sumlx = 0;
        float suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.min(nmax, nearestInt(iscale * x[i]));
            L[i] = l & 0xff;
            float w = qw[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; itry++) {
            int changed = 0;
            for (int i = 0; i < n; i++) {
                float w = qw[i];
                int li = L[i];
                float slx = sumlx - w * x[i] * li;
                float sl2 = suml2 - w * li * li;
                if (slx > 0 && sl2 > 0) {
                    int nl = Math.min(nmax, nearestInt(x[i] * sl2 / slx));
                    if (nl != li) {
                        slx += w * x[i] * nl;
                        sl2 += w * nl * nl;
                        if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[i] = nl & 0xff;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) {
                break;
            }
        }
        return suml2 > 0f ? sumlx / suml2 : 0f;
    }

    /**
     * Unpacks sub-block {@code j}'s 6-bit scale and min from the 12 packed bytes of a Q4_K/Q5_K
     * block at {@code off}: returns {@code scale | min << 8}.
     */
    static int scaleMinK4(int j, java.lang.foreign.MemorySegment seg, long off) {
        int d;
        int m;
        if (j < 4) {
            d = seg.get(LE.BYTE, off + j) & 63;
            m = seg.get(LE.BYTE, off + j + 4) & 63;
        } else {
            int qj4 = seg.get(LE.BYTE, off + j + 4) & 0xff;
            d = (qj4 & 0xF) | (((seg.get(LE.BYTE, off + j - 4) & 0xff) >> 6) << 4);
            m = (qj4 >> 4) | (((seg.get(LE.BYTE, off + j) & 0xff) >> 6) << 4);
        }
        return d | m << 8;
    }

    /** The same unpacking from a byte array (used while quantizing, before the block is stored). */
    static int scaleMinK4(int j, byte[] q) {
        int d;
        int m;
        if (j < 4) {
            d = q[j] & 63;
            m = q[j + 4] & 63;
        } else {
            d = (q[j + 4] & 0xF) | (((q[j - 4] & 0xff) >> 6) << 4);
            m = ((q[j + 4] & 0xff) >> 4) | (((q[j] & 0xff) >> 6) << 4);
        }
        return d | m << 8;
    }

    /** Packs sub-block {@code j}'s 6-bit scale and min into {@code q} (the inverse of {@link #scaleMinK4}). */
    static void packScaleMinK4(int j, int ls, int lm, byte[] q) {
        if (j < 4) {
            q[j] = (byte) ls;
            q[j + 4] = (byte) lm;
        } else {
            q[j + 4] = (byte) ((ls & 0xF) | ((lm & 0xF) << 4));
            q[j - 4] |= (byte) ((ls >> 4) << 6);
            q[j] |= (byte) ((lm >> 4) << 6);
        }
    }

    /** Index of the grid value nearest to {@code x} in the sorted {@code values} (ties go to the lower one only when strictly nearer). */
    static int bestIndexInt8(byte[] values, float x) {
        int n = values.length;
        if (x <= values[0]) {
            return 0;
        }
        if (x >= values[n - 1]) {
            return n - 1;
        }
        int ml = 0;
        int mu = n - 1;
        while (mu - ml > 1) {
            int mav = (ml + mu) / 2;
            if (x < values[mav]) {
                mu = mav;
            } else {
                ml = mav;
            }
        }
        return x - values[mu - 1] < values[mu] - x ? mu - 1 : mu;
    }
}
