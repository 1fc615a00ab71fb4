// ImportanceMatrix: GGUF round trip, the legacy .dat format, llama-quantize's weights, hostile files refused in one line.
package cria.quantize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImportanceMatrixTest {

    @TempDir
    Path tmp;

    private static float[] randomSums(Random r, int n) {
        float[] s = new float[n];
        for (int i = 0; i < n; i++) {
            s[i] = r.nextFloat() * 100f;
        }
        return s;
    }

    @Test
    void ggufRoundTripKeepsEverythingAndSortsNames() throws Exception {
        Random r = new Random(7);
        Map<String, ImportanceMatrix.Entry> m = new LinkedHashMap<>();
        m.put("blk.1.ffn_down.weight", new ImportanceMatrix.Entry(randomSums(r, 96), 300));
        m.put("blk.0.attn_q.weight", new ImportanceMatrix.Entry(randomSums(r, 32), 300));
        m.put("blk.0.attn_k.weight", new ImportanceMatrix.Entry(randomSums(r, 32), 0));
        ImportanceMatrix im = new ImportanceMatrix(m, List.of("calib.txt", "more.txt"), 3, 100);
        Path f = tmp.resolve("im.gguf");
        im.write(f);

        try (GgufFile g = GgufFile.open(f)) {
            List<String> keys = List.copyOf(g.metadata().asMap().keySet());
            assertEquals(List.of("general.type", "imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"), keys);
            assertEquals("blk.0.attn_k.weight.in_sum2", g.tensors().get(0).name());
            assertEquals("blk.0.attn_k.weight.counts", g.tensors().get(1).name());
            assertEquals("blk.1.ffn_down.weight.counts", g.tensors().get(5).name());
            assertEquals(96, g.tensors().get(4).shape()[0]);
            assertEquals(1, g.tensors().get(4).shape().length);
        }
        ImportanceMatrix back = ImportanceMatrix.read(f);
        assertEquals(List.of("calib.txt", "more.txt"), back.datasets());
        assertEquals(3, back.chunkCount());
        assertEquals(100, back.chunkSize());
        assertEquals(List.of("blk.0.attn_k.weight", "blk.0.attn_q.weight", "blk.1.ffn_down.weight"), List.copyOf(back.entries().keySet()));
        for (String name : m.keySet()) {
            assertArrayEquals(m.get(name).sums(), back.entries().get(name).sums(), name);
            assertEquals(m.get(name).count(), back.entries().get(name).count(), name);
        }
        // the file written again is the same file
        Path f2 = tmp.resolve("im2.gguf");
        back.write(f2);
        assertArrayEquals(Files.readAllBytes(f), Files.readAllBytes(f2));
    }

    @Test
    void weightsAreSumsOverCountInFloatOrOnesWithoutRows() {
        float[] sums = {3f, 1f, 10f, 0.1f};
        Map<String, ImportanceMatrix.Entry> m = new LinkedHashMap<>();
        m.put("a.weight", new ImportanceMatrix.Entry(sums, 3));
        m.put("b.weight", new ImportanceMatrix.Entry(sums, 0));
        ImportanceMatrix im = new ImportanceMatrix(m, List.of(), 0, 0);
        float[] w = im.weights("a.weight");
        for (int i = 0; i < sums.length; i++) {
            assertEquals(Float.floatToRawIntBits(sums[i] / 3f), Float.floatToRawIntBits(w[i]));
        }
        assertArrayEquals(new float[] {1f, 1f, 1f, 1f}, im.weights("b.weight"));
        assertNull(im.weights("c.weight"));
    }

    /** Bytes of a legacy .dat file as llama-imatrix --output-format dat writes them. */
    private static byte[] legacy(Object[][] entries, Integer chunks, String dataset) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer b = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(entries.length);
        for (Object[] e : entries) {
            byte[] name = ((String) e[0]).getBytes(StandardCharsets.UTF_8);
            b.putInt(name.length).put(name).putInt((Integer) e[1]);
            float[] v = (float[]) e[2];
            b.putInt(v.length);
            for (float x : v) {
                b.putFloat(x);
            }
        }
        if (chunks != null) {
            byte[] ds = dataset.getBytes(StandardCharsets.UTF_8);
            b.putInt(chunks).putInt(ds.length).put(ds);
        }
        out.write(b.array(), 0, b.position());
        return out.toByteArray();
    }

    @Test
    void legacyFormatGivesLlamaQuantizesWeights() throws Exception {
        float[] v = {6f, 0.3f, 9.9f};
        Path f = tmp.resolve("old.dat");
        Files.write(f, legacy(new Object[][] {{"blk.0.attn_q.weight", 3, v}, {"blk.0.attn_k.weight", 0, v}}, 12, "wiki.txt"));
        ImportanceMatrix im = ImportanceMatrix.read(f);
        assertEquals(List.of("wiki.txt"), im.datasets());
        assertEquals(12, im.chunkCount());
        float[] w = im.weights("blk.0.attn_q.weight");
        for (int i = 0; i < v.length; i++) {
            assertEquals(Float.floatToRawIntBits(v[i] / 3f), Float.floatToRawIntBits(w[i]), "divided by ncall");
        }
        assertArrayEquals(v, im.weights("blk.0.attn_k.weight"), "ncall 0: the values as stored");

        Path bare = tmp.resolve("bare.dat");
        Files.write(bare, legacy(new Object[][] {{"x.weight", 1, v}}, null, null));
        ImportanceMatrix b = ImportanceMatrix.read(bare);
        assertTrue(b.datasets().isEmpty());
        assertEquals(0, b.chunkCount());
        assertArrayEquals(v, b.weights("x.weight"));
    }

    private void assertRefused(byte[] bytes, String expected) throws Exception {
        Path f = tmp.resolve("bad-" + Integer.toHexString(java.util.Arrays.hashCode(bytes)) + ".imatrix");
        Files.write(f, bytes);
        CriaException e = assertThrows(CriaException.class, () -> ImportanceMatrix.read(f));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void hostileLegacyFilesAreRefusedInOneLine() throws Exception {
        float[] v = {1f, 2f};
        byte[] good = legacy(new Object[][] {{"a.weight", 1, v}}, 1, "d");
        assertRefused(new byte[] {1, 2, 3}, "too short");
        assertRefused(new byte[] {0, 0, 0, 0, 0}, "entry count 0");
        assertRefused(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(0x7fffffff).putInt(1).array(), "cannot fit");
        byte[] hugeName = good.clone();
        ByteBuffer.wrap(hugeName).order(ByteOrder.LITTLE_ENDIAN).putInt(4, -5);
        assertRefused(hugeName, "name of entry 1 length -5");
        byte[] hugeVals = good.clone();
        ByteBuffer.wrap(hugeVals).order(ByteOrder.LITTLE_ENDIAN).putInt(4 + 4 + 8 + 4, 0x10000000);
        assertRefused(hugeVals, "file ends inside the values");
        byte[] negVals = good.clone();
        ByteBuffer.wrap(negVals).order(ByteOrder.LITTLE_ENDIAN).putInt(4 + 4 + 8 + 4, -1);
        assertRefused(negVals, "has -1 values");
        assertRefused(java.util.Arrays.copyOf(good, 26), "file ends inside the values");
        byte[] badDataset = good.clone();
        ByteBuffer.wrap(badDataset).order(ByteOrder.LITTLE_ENDIAN).putInt(good.length - 5, 1 << 30);
        assertRefused(badDataset, "dataset name length");
        byte[] notUtf8 = good.clone();
        notUtf8[8] = (byte) 0xff;
        assertRefused(notUtf8, "not valid UTF-8");
    }

    private Path gguf(Metadata md, Map<String, float[]> tensors) {
        GgufWriter w = new GgufWriter(md);
        for (Map.Entry<String, float[]> t : tensors.entrySet()) {
            float[] v = t.getValue();
            w.addTensor(t.getKey(), GgmlType.F32, new long[] {v.length},
                    dst -> MemorySegment.copy(v, 0, dst, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, v.length));
        }
        Path f = tmp.resolve("g" + System.nanoTime() + ".gguf");
        w.write(f);
        return f;
    }

    private static Metadata imatrixMetadata() {
        Metadata md = new Metadata("test");
        md.put("general.type", GgufValue.ofString("imatrix"));
        md.put("imatrix.datasets", GgufValue.ofStrings(new String[] {"d"}));
        md.put("imatrix.chunk_count", GgufValue.ofU32(1));
        md.put("imatrix.chunk_size", GgufValue.ofU32(8));
        return md;
    }

    private void assertRefused(Path f, String expected) {
        CriaException e = assertThrows(CriaException.class, () -> ImportanceMatrix.read(f));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void hostileGgufFilesAreRefusedInOneLine() {
        Map<String, float[]> t = new LinkedHashMap<>();
        t.put("a.weight.in_sum2", new float[] {1, 2});
        assertRefused(gguf(imatrixMetadata(), t), "sums but no counts");
        t.put("a.weight.counts", new float[] {2.5f});
        assertRefused(gguf(imatrixMetadata(), t), "row count 2.5");
        t.put("a.weight.counts", new float[] {Float.NaN});
        assertRefused(gguf(imatrixMetadata(), t), "row count NaN");
        t.put("a.weight.counts", new float[] {1e30f});
        assertRefused(gguf(imatrixMetadata(), t), "below 2^62");
        t.put("a.weight.counts", new float[] {4, 4});
        assertRefused(gguf(imatrixMetadata(), t), "mixture of experts");
        t.put("a.weight.counts", new float[] {4});
        Metadata model = imatrixMetadata();
        model.put("general.type", GgufValue.ofString("model"));
        assertRefused(gguf(model, t), "not an importance matrix");
        Metadata noKeys = new Metadata("x");
        noKeys.put("general.architecture", GgufValue.ofString("llama"));
        assertRefused(gguf(noKeys, t), "missing imatrix.datasets");
        Metadata badCount = imatrixMetadata();
        badCount.put("imatrix.chunk_count", GgufValue.ofStrings(new String[] {"x"}));
        assertRefused(gguf(badCount, t), "imatrix.chunk_count must be a count");
        assertRefused(gguf(imatrixMetadata(), Map.of()), "no data");
        assertRefused(gguf(imatrixMetadata(), Map.of("other", new float[] {1})), "no importance entries");
        assertRefused(tmp.resolve("missing.gguf"), "no such file");
        assertRefused(tmp, "directory");
        // negative and zero counts mean "no rows": every column weighs 1, as in llama-quantize
        t.put("a.weight.counts", new float[] {-3});
        assertArrayEquals(new float[] {1, 1}, ImportanceMatrix.read(gguf(imatrixMetadata(), t)).weights("a.weight"));
    }

    @Test
    void metadataTextIsCutAt127BytesAsLlamaQuantizeDoes() {
        String ascii = "d".repeat(200);
        assertEquals(127, ImportanceUse.truncate(ascii).length());
        assertEquals("short.txt", ImportanceUse.truncate("short.txt"));
        // a two-byte character across the limit is dropped whole (126 bytes kept), never split
        String accented = "a".repeat(126) + "\u00e9" + "zzz";
        assertEquals("a".repeat(126), ImportanceUse.truncate(accented));
    }
}
