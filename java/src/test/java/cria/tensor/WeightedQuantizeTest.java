// Importance-weighted quantization: it must spend precision where the importance is, and leave the plain path alone.
package cria.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.gguf.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * On seeded rows with a strongly uneven importance per column, the weighted quantizer of every
 * type that takes importance must give a clearly smaller importance-weighted squared error than
 * the plain one (which is what the weights are for), and null importance must give the plain bytes.
 * Byte identity with llama-quantize is checked in {@code cria.quantize.ImatrixDigestsTest}.
 */
class WeightedQuantizeTest {
    private static final int ROWS = 48;
    private static final int N = 512;

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"})
    void weightedQuantizationLowersTheWeightedError(GgmlType type) {
        Codec c = Codecs.of(type);
        assertTrue(c.usesImportance(), type + " should take importance weights");
        Random r = new Random(1234 + type.ordinal());
        float[] importance = new float[N];
        for (int j = 0; j < N; j++) {
            importance[j] = (float) Math.exp(2.5 * r.nextGaussian());
        }
        double plain = 0;
        double weighted = 0;
        long rowBytes = type.rowBytes(N);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(rowBytes);
            MemorySegment b = arena.allocate(rowBytes);
            MemorySegment n = arena.allocate(rowBytes);
            float[] x = new float[N];
            float[] y = new float[N];
            for (int row = 0; row < ROWS; row++) {
                for (int j = 0; j < N; j++) {
                    x[j] = (float) (r.nextGaussian() * 0.02 + (r.nextInt(64) == 0 ? r.nextGaussian() * 0.1 : 0));
                }
                c.quantize(x, 0, N, a, 0);
                c.quantize(x, 0, N, null, n, 0);
                assertEquals(-1L, a.mismatch(n), type + ": null importance must give the plain bytes");
                c.quantize(x, 0, N, importance, b, 0);
                c.dequantize(a, 0, y, 0, N);
                plain += weightedError(x, y, importance);
                c.dequantize(b, 0, y, 0, N);
                weighted += weightedError(x, y, importance);
            }
        }
        assertTrue(weighted < 0.9 * plain, type + ": weighted error " + weighted + " is not clearly below the plain " + plain);
    }

    private static double weightedError(float[] x, float[] y, float[] w) {
        double e = 0;
        for (int j = 0; j < x.length; j++) {
            double d = x[j] - y[j];
            e += w[j] * d * d;
        }
        return e;
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "F16", "BF16", "F32"})
    void typesWithoutImportanceIgnoreIt(GgmlType type) {
        Codec c = Codecs.of(type);
        assertFalse(c.usesImportance());
        Random r = new Random(5);
        float[] x = new float[64];
        float[] w = new float[64];
        for (int j = 0; j < 64; j++) {
            x[j] = (float) r.nextGaussian();
            w[j] = r.nextFloat() * 10;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(type.rowBytes(64));
            MemorySegment b = arena.allocate(type.rowBytes(64));
            c.quantize(x, 0, 64, a, 0);
            c.quantize(x, 0, 64, w, b, 0);
            assertEquals(-1L, a.mismatch(b));
        }
    }
}
