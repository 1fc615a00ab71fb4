// Conversions between float and the two 16-bit float formats (IEEE half, bfloat16), rounding as ggml does.
package cria.tensor;

/** float &lt;-&gt; F16 and BF16, with ggml's rounding (round to nearest even; NaN kept quiet). */
public final class Half {
    private Half() {}

    /** IEEE half bits to float (exact). */
    public static float f16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** float to IEEE half bits, round to nearest even (as the F16C instruction ggml uses). */
    public static short floatToF16(float f) {
        return Float.floatToFloat16(f);
    }

    /** bfloat16 bits to float (exact). */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** float to bfloat16 bits, round to nearest even; NaN becomes a quiet NaN (ggml_compute_fp32_to_bf16). */
    public static short floatToBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) {
            return (short) ((u >>> 16) | 64);
        }
        return (short) ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16);
    }
}
