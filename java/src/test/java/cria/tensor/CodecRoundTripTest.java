// Quantize-then-dequantize on data the test makes itself (always runs): error bounds per type, zeros, hand-made blocks.
package cria.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.gguf.GgmlType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class CodecRoundTripTest {

    /** Relative RMS error of Gaussian data after a round trip, about 1.25 times what these codecs measure. */
    @ParameterizedTest
    @CsvSource({"Q8_0, 0.007", "Q4_0, 0.10", "Q4_1, 0.095", "Q5_0, 0.052", "Q5_1, 0.046", "Q2_K, 0.34", "Q3_K, 0.18",
        "Q4_K, 0.085", "Q5_K, 0.044", "Q6_K, 0.022", "IQ4_NL, 0.09", "IQ4_XS, 0.09", "Q8_K, 0.009", "F16, 0.0003", "BF16, 0.002"})
    void roundTripErrorIsWithinTheTypesBound(String name, double bound) {
        GgmlType type = GgmlType.byName(name);
        Codec c = Codecs.of(type);
        assertTrue(c.canQuantize(), name);
        int n = 1024;
        int rows = 16;
        Random r = new Random(42);
        float[] x = new float[n * rows];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        long rb = type.rowBytes(n);
        MemorySegment q = Arena.ofAuto().allocate(rb * rows);
        float[] back = new float[x.length];
        for (int row = 0; row < rows; row++) {
            c.quantize(x, row * n, n, q, row * rb);
            c.dequantize(q, row * rb, back, row * n, n);
        }
        double err = 0;
        double sig = 0;
        for (int i = 0; i < x.length; i++) {
            err += (back[i] - x[i]) * (double) (back[i] - x[i]);
            sig += x[i] * (double) x[i];
        }
        double rel = Math.sqrt(err / sig);
        assertTrue(rel < bound, name + ": relative RMS error " + rel + " exceeds " + bound);
        assertTrue(rel > 0 || type == GgmlType.F32, name + ": no error at all means nothing was quantized");
    }

    @ParameterizedTest
    @CsvSource({"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "Q8_K"})
    void zerosStayZeroAndOffsetsAreHonoured(String name) {
        GgmlType type = GgmlType.byName(name);
        Codec c = Codecs.of(type);
        int n = 512;
        float[] x = new float[n + 7];
        long rb = type.rowBytes(n);
        MemorySegment q = Arena.ofAuto().allocate(rb + 5);
        q.fill((byte) 0x5a);
        c.quantize(x, 7, n, q, 5);
        assertEquals((byte) 0x5a, q.get(LE.BYTE, 4), "byte before the row was written");
        float[] back = new float[n + 3];
        java.util.Arrays.fill(back, 9f);
        c.dequantize(q, 5, back, 3, n);
        assertEquals(9f, back[2]);
        for (int i = 3; i < n + 3; i++) {
            assertEquals(0f, Math.abs(back[i]), name + " value " + i);
        }
    }

    @Test
    void q8_0HandComputedBlock() {
        // amax 127 gives d = 1 exactly, so the levels are C's roundf of the inputs: halves go away from zero
        float[] x = new float[64];
        float[] in = {-127, -2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f, 0.49f, -0.49f, 126.5f, 3.7f, -3.7f};
        System.arraycopy(in, 0, x, 0, in.length);
        MemorySegment q = Arena.ofAuto().allocate(68);
        Codecs.of(GgmlType.Q8_0).quantize(x, 0, 64, q, 0);
        byte[] got = q.toArray(LE.BYTE);
        byte[] want = new byte[68];
        want[0] = 0x00;
        want[1] = 0x3C; // F16 1.0
        byte[] levels = {-127, -3, -2, -1, 1, 2, 3, 0, 0, 127, 4, -4};
        System.arraycopy(levels, 0, want, 2, levels.length);
        // second block all zero: d = 0 and zero levels
        assertArrayEquals(want, got);

        float[] back = new float[64];
        Codecs.of(GgmlType.Q8_0).dequantize(q, 0, back, 0, 64);
        assertEquals(-127f, back[0]);
        assertEquals(-3f, back[1]);
        assertEquals(127f, back[9]);
    }

    @Test
    void q4_0HandComputedBlocks() {
        // block 1: the largest magnitude is -8, so d = -8 / -8 = 1 and level = min(15, trunc(x + 8.5))
        // block 2: the largest magnitude is +8, so d = -1: the scale's sign follows the extreme value
        float[] x = new float[64];
        float[] b1 = {-8, 7, 7.9f, 0, -0.6f, 0.4f, 3.5f, -7.5f};
        System.arraycopy(b1, 0, x, 0, b1.length);
        x[16] = -3;
        x[17] = 1;
        x[32] = 8;
        x[33] = -8;
        MemorySegment q = Arena.ofAuto().allocate(36);
        Codecs.of(GgmlType.Q4_0).quantize(x, 0, 64, q, 0);
        byte[] got = q.toArray(LE.BYTE);
        byte[] want = {
            0x00, 0x3C, 0x50, (byte) 0x9F, (byte) 0x8F, (byte) 0x88, (byte) 0x87, (byte) 0x88, (byte) 0x8C, (byte) 0x81,
            (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88,
            0x00, (byte) 0xBC, (byte) 0x80, (byte) 0x8F, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88,
            (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88, (byte) 0x88};
        assertArrayEquals(want, got);

        float[] back = new float[64];
        Codecs.of(GgmlType.Q4_0).dequantize(q, 0, back, 0, 64);
        float[] want1 = {-8, 7, 7, 0, -1, 0, 4, -7};
        for (int i = 0; i < want1.length; i++) {
            assertEquals(want1[i], back[i], "value " + i);
        }
        assertEquals(-3f, back[16]);
        assertEquals(1f, back[17]);
        assertEquals(8f, back[32]);
        assertEquals(-7f, back[33], "-8 clamps to level 15, i.e. (15 - 8) * -1");
    }

    @Test
    void q4_KHandMadeBlockDecodes() {
        // d = dmin = 1; sub-block 0: scale 2, min 3; sub-block 1: scale 1, min 0;
        // sub-block 4 takes its low bits from byte 8 and its high bits from the top of bytes 0 and 4: scale 17, min 2
        byte[] blk = new byte[144];
        blk[1] = 0x3C;
        blk[3] = 0x3C;
        blk[4] = 0x42;
        blk[5] = 1;
        blk[8] = 3;
        blk[12] = 0x21;
        blk[16] = 0x45;
        blk[16 + 64] = 0x03;
        float[] y = new float[256];
        Codecs.of(GgmlType.Q4_K).dequantize(MemorySegment.ofArray(blk), 0, y, 0, 256);
        assertEquals(7f, y[0], "2 * 5 - 3");
        assertEquals(-3f, y[1], "2 * 0 - 3");
        assertEquals(4f, y[32], "1 * 4 - 0");
        assertEquals(0f, y[33]);
        assertEquals(49f, y[128], "17 * 3 - 2");
        assertEquals(-2f, y[129]);
        assertEquals(0f, y[160]);
    }

    @Test
    void quantizedRowsDependOnlyOnTheirOwnValues() {
        // the same 256 values give the same bytes wherever they sit (no state carried between rows or calls)
        Random r = new Random(7);
        float[] x = new float[512];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (GgmlType t : new GgmlType[] {GgmlType.Q4_K, GgmlType.Q3_K, GgmlType.IQ4_XS, GgmlType.Q6_K}) {
            Codec c = Codecs.of(t);
            MemorySegment a = Arena.ofAuto().allocate(t.rowBytes(512));
            MemorySegment b = Arena.ofAuto().allocate(t.rowBytes(256));
            c.quantize(x, 0, 512, a, 0);
            c.quantize(x, 256, 256, b, 0);
            assertEquals(-1, a.asSlice(t.rowBytes(256)).mismatch(b), t.toString());
            assertFalse(a.asSlice(0, t.rowBytes(256)).mismatch(b) == -1, t + ": different inputs, same bytes");
        }
    }

    @Test
    void unsupportedTypesAreClearErrors() {
        CriaException e = assertThrows(CriaException.class, () -> Codecs.of(GgmlType.IQ2_XXS));
        assertTrue(e.getMessage().contains("IQ2_XXS") && e.getMessage().contains("not supported"), e.getMessage());
    }
}
