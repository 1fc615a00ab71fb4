// Writes GGUF files with every metadata type and several tensors, reads them back, and compares.
package cria.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufRoundTripTest {

    @TempDir
    Path tmp;

    static Metadata everyType() {
        Metadata md = new Metadata("test");
        md.put("general.architecture", GgufValue.ofString("llama"));
        md.put("u8", new GgufValue(GgufValueType.UINT8, null, (byte) 200));
        md.put("i8", new GgufValue(GgufValueType.INT8, null, (byte) -5));
        md.put("u16", new GgufValue(GgufValueType.UINT16, null, (short) 60000));
        md.put("i16", new GgufValue(GgufValueType.INT16, null, (short) -300));
        md.put("u32", GgufValue.ofU32(0xfffffff0));
        md.put("i32", GgufValue.ofI32(-123456));
        md.put("f32", GgufValue.ofF32(1.5e-5f));
        md.put("bool", GgufValue.ofBool(true));
        md.put("str", GgufValue.ofString("héllo \u4e16\u754c \ud83e\udd99"));
        md.put("u64", GgufValue.ofU64(-2L));
        md.put("i64", new GgufValue(GgufValueType.INT64, null, Long.MIN_VALUE));
        md.put("f64", new GgufValue(GgufValueType.FLOAT64, null, Math.PI));
        md.put("arr.str", GgufValue.ofStrings(new String[] {"a", "", "\u00e9\u00e8", "<0x0A>"}));
        md.put("arr.f32", GgufValue.ofFloats(new float[] {1f, -2f, Float.NaN}));
        md.put("arr.i32", GgufValue.ofInts(new int[] {1, 2, 3}));
        md.put("arr.u8", new GgufValue(GgufValueType.ARRAY, GgufValueType.UINT8, new byte[] {1, (byte) 255}));
        md.put("arr.bool", new GgufValue(GgufValueType.ARRAY, GgufValueType.BOOL, new boolean[] {true, false}));
        md.put("arr.f64", new GgufValue(GgufValueType.ARRAY, GgufValueType.FLOAT64, new double[] {0.25}));
        md.put("arr.i64", new GgufValue(GgufValueType.ARRAY, GgufValueType.INT64, new long[] {-1, 7}));
        md.put("arr.u16", new GgufValue(GgufValueType.ARRAY, GgufValueType.UINT16, new short[] {9}));
        md.put("arr.empty", GgufValue.ofInts(new int[0]));
        md.put("arr.nested", new GgufValue(GgufValueType.ARRAY, GgufValueType.ARRAY, new GgufValue[] {
            GgufValue.ofInts(new int[] {4, 5}), GgufValue.ofStrings(new String[] {"x"})}));
        return md;
    }

    @Test
    void everyMetadataTypeAndTensorsSurviveARoundTrip() {
        Metadata md = everyType();
        GgufWriter w = new GgufWriter(md);
        float[] a = {1, 2, 3, 4, 5, 6};
        w.addTensor("a", GgmlType.F32, new long[] {3, 2}, MemorySegment.ofArray(a));
        w.addTensor("b", GgmlType.F32, new long[] {1}, MemorySegment.ofArray(new float[] {9}));
        w.addTensor("c", GgmlType.Q8_0, new long[] {32, 2}, dst -> dst.fill((byte) 7));
        Path p = tmp.resolve("x.gguf");
        w.write(p);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(3, f.version());
            assertEquals(md.asMap().keySet().stream().toList(), f.metadata().asMap().keySet().stream().toList());
            for (String k : md.asMap().keySet()) {
                assertEquals(md.get(k), f.metadata().get(k), k);
            }
            assertEquals(3, f.tensors().size());
            GgufTensorInfo ta = f.tensor("a");
            assertEquals(GgmlType.F32, ta.type());
            assertArrayEquals(new long[] {3, 2}, ta.shape());
            assertEquals(2, ta.rows());
            float[] back = f.data(ta).toArray(ValueLayout.JAVA_FLOAT);
            assertArrayEquals(a, back);
            GgufTensorInfo tc = f.tensor("c");
            assertEquals(68, tc.byteSize());
            assertEquals(0, tc.offset() % 32);
            assertEquals((byte) 7, f.data(tc).get(ValueLayout.JAVA_BYTE, 67));
            assertEquals(0, f.dataOffset() % 32);
        }
    }

    @Test
    void customAlignmentIsHonoured() {
        Metadata md = new Metadata("test");
        md.put("general.alignment", GgufValue.ofU32(64));
        GgufWriter w = new GgufWriter(md);
        w.addTensor("a", GgmlType.F32, new long[] {3}, MemorySegment.ofArray(new float[] {1, 2, 3}));
        w.addTensor("b", GgmlType.F32, new long[] {3}, MemorySegment.ofArray(new float[] {4, 5, 6}));
        Path p = tmp.resolve("y.gguf");
        w.write(p);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(64, f.alignment());
            assertEquals(0, f.dataOffset() % 64);
            assertEquals(64, f.tensor("b").offset());
            assertEquals(4f, f.data(f.tensor("b")).get(ValueLayout.JAVA_FLOAT, 0));
        }
    }

    @Test
    void missingFileIsAClearError() {
        GgufException e = assertThrows(GgufException.class, () -> GgufFile.open(tmp.resolve("nope.gguf")));
        assertTrue(e.getMessage().contains("no such file"), e.getMessage());
    }

    @Test
    void notGgufIsAClearError() throws Exception {
        Path p = tmp.resolve("text.gguf");
        Files.writeString(p, "hello world, this is not a model");
        GgufException e = assertThrows(GgufException.class, () -> GgufFile.open(p));
        assertTrue(e.getMessage().contains("not a GGUF file"), e.getMessage());
    }
}
