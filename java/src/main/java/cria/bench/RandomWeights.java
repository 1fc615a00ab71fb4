// Random weight tensors of every type for kernel checks (tests, cria kernels): random block bytes with sane f16 scales.
package cria.bench;

import cria.gguf.GgmlType;
import cria.tensor.Half;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Weights drawn as random bytes, so every bit pattern of the quantized values occurs (a
 * quantizer's output would not cover them all), with each block's f16 scale fields overwritten by
 * moderate random values (random bits there would be NaN or huge). The ref backend dequantizes
 * the very same bytes, so it is an exact oracle.
 */
public final class RandomWeights {
    private RandomWeights() {}

    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LEF = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Byte offsets of the f16 scale fields in one block of each type. */
    public static int[] scaleFields(GgmlType t) {
        return switch (t) {
            case Q4_0, Q5_0, Q8_0, IQ4_NL, IQ4_XS -> new int[] {0};
            case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
            case Q2_K -> new int[] {80, 82};
            case Q3_K -> new int[] {108};
            case Q6_K -> new int[] {208};
            default -> new int[0];
        };
    }

    /** A {@code rows x cols} weight of type {@code t} (ggml shape [cols, rows]), values of order one. */
    public static Tensor matrix(String name, GgmlType t, int rows, int cols, Random r) {
        return matrix(name, t, rows, cols, r, 1.0);
    }

    /** As {@link #matrix(String, GgmlType, int, int, Random)} with every value scaled by about {@code scale}. */
    public static Tensor matrix(String name, GgmlType t, int rows, int cols, Random r, double scale) {
        long bytes = rows * t.rowBytes(cols);
        MemorySegment s = Arena.ofAuto().allocate(Math.max(bytes, 1), 16);
        switch (t) {
            case F32 -> {
                for (long i = 0; i < (long) rows * cols; i++) {
                    s.set(LEF, 4 * i, (float) (r.nextGaussian() * scale));
                }
            }
            case F16 -> {
                for (long i = 0; i < (long) rows * cols; i++) {
                    s.set(LE16, 2 * i, Half.floatToF16((float) (r.nextGaussian() * scale)));
                }
            }
            case BF16 -> {
                for (long i = 0; i < (long) rows * cols; i++) {
                    s.set(LE16, 2 * i, Half.floatToBf16((float) (r.nextGaussian() * scale)));
                }
            }
            default -> {
                byte[] b = new byte[(int) bytes];
                r.nextBytes(b);
                MemorySegment.copy(MemorySegment.ofArray(b), 0, s, 0, bytes);
                int[] fields = scaleFields(t);
                for (long blk = 0; blk < bytes / t.typeSize(); blk++) {
                    for (int f : fields) {
                        // d in [0.01, 0.1), mins too: values of order one, both signs of d
                        float v = (float) ((0.01 + 0.09 * r.nextDouble()) * scale * (r.nextBoolean() ? 1 : -1));
                        s.set(LE16, blk * t.typeSize() + f, Half.floatToF16(v));
                    }
                }
            }
        }
        return new Tensor(name, t, rows == 1 ? new long[] {cols} : new long[] {cols, rows}, s);
    }
}
