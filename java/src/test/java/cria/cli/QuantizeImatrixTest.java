// `cria quantize --imatrix` on a tiny model the test writes: weights used by name, llama-quantize's refusals and metadata, one-line errors.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.TinyModel;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.quantize.ImportanceMatrix;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QuantizeImatrixTest {

    @TempDir
    Path tmp;

    /** An importance matrix with an entry for every matrix of {@code model} but those named in {@code skip}. */
    private Path imatrix(Path model, String file, int chunks, String dataset, String... skip) {
        Random r = new Random(3);
        Map<String, ImportanceMatrix.Entry> m = new LinkedHashMap<>();
        try (GgufFile f = GgufFile.open(model)) {
            for (GgufTensorInfo t : f.tensors()) {
                if (t.shape().length < 2 || List.of(skip).contains(t.name())) {
                    continue;
                }
                float[] s = new float[(int) t.shape()[0]];
                for (int i = 0; i < s.length; i++) {
                    s[i] = (float) Math.exp(2 * r.nextGaussian()) * 50;
                }
                m.put(t.name(), new ImportanceMatrix.Entry(s, 50));
            }
        }
        Path p = tmp.resolve(file);
        new ImportanceMatrix(m, dataset == null ? List.of() : List.of(dataset), chunks, 64).write(p);
        return p;
    }

    private static void assertOneLine(CliRunner.Result r, String contains) {
        assertEquals(1, r.code(), r.toString());
        String s = r.err().strip();
        assertTrue(s.contains(contains), s);
        assertEquals(1, s.lines().count(), "one line, no stack trace: " + s);
    }

    @Test
    void weightsByNameMetadataAndReport() throws Exception {
        Path in = TinyModel.write(tmp.resolve("tiny.gguf"), 2, true, 4);
        Path im = imatrix(in, "im.gguf", 7, "calib.txt", "blk.1.attn_q.weight", "token_embd.weight");
        Path out = tmp.resolve("q.gguf");
        Path plain = tmp.resolve("plain.gguf");
        CliRunner.Result r = CliRunner.run("quantize", "--imatrix", im.toString(), in.toString(), out.toString(), "Q4_K_S", "--threads", "2");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("im.gguf: 16 entries, 14 used to weight tensors"), r.err());
        assertTrue(r.err().contains("no entry for 2 tensors: ") && r.err().contains("blk.1.attn_q.weight"), r.err());
        assertEquals(0, CliRunner.run("quantize", in.toString(), plain.toString(), "Q4_K_S").code());
        ImportanceMatrix m = ImportanceMatrix.read(im);
        try (GgufFile src = GgufFile.open(in); GgufFile q = GgufFile.open(out); GgufFile p = GgufFile.open(plain);
             Arena arena = Arena.ofConfined()) {
            List<String> keys = List.copyOf(q.metadata().asMap().keySet());
            assertEquals(List.of("general.quantization_version", "general.file_type", "quantize.imatrix.file",
                    "quantize.imatrix.dataset", "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count"),
                    keys.subList(keys.size() - 6, keys.size()));
            assertEquals(im.toString(), q.metadata().string("quantize.imatrix.file").orElseThrow());
            assertEquals("calib.txt", q.metadata().string("quantize.imatrix.dataset").orElseThrow());
            assertEquals((long) m.entries().size(), q.metadata().integer("quantize.imatrix.entries_count").orElseThrow());
            assertEquals(7L, q.metadata().integer("quantize.imatrix.chunks_count").orElseThrow());
            int weighted = 0;
            for (GgufTensorInfo t : q.tensors()) {
                if (t.type() == GgmlType.F32) {
                    continue;
                }
                Tensor st = Tensor.of(src, t.name());
                float[] w = m.weights(t.name());
                long rb = t.type().rowBytes(st.rowLength());
                MemorySegment expect = arena.allocate(rb * st.rows());
                for (long row = 0; row < st.rows(); row++) {
                    Codecs.of(t.type()).quantize(st.dequantizeRow(row), 0, st.rowLength(), w, expect, row * rb);
                }
                assertEquals(-1, expect.mismatch(q.data(t)), t.name() + ": the codec's weighted bytes");
                boolean differs = q.data(t).mismatch(p.data(p.tensor(t.name()))) >= 0;
                if (w != null && Codecs.of(t.type()).usesImportance()) {
                    weighted++;
                    assertTrue(differs, t.name() + " should differ from the unweighted file");
                } else {
                    assertFalse(differs, t.name() + " has no weights: the unweighted bytes");
                }
            }
            assertTrue(weighted >= 10, "weighted tensors: " + weighted);
        }
    }

    @Test
    void q2_K_SNeedsAnImportanceMatrixForEveryQ2_KTensor() {
        Path in = TinyModel.write(tmp.resolve("tiny.gguf"), 1, true, 5);
        Path out = tmp.resolve("q.gguf");
        assertOneLine(CliRunner.run("quantize", in.toString(), out.toString(), "Q2_K_S"), "needs an importance matrix");
        Path partial = imatrix(in, "partial.gguf", 1, "d", "blk.0.attn_k.weight");
        assertOneLine(CliRunner.run("quantize", "--imatrix", partial.toString(), in.toString(), out.toString(), "Q2_K_S"),
                "no entry for 'blk.0.attn_k.weight'");
        // output.weight (Q6_K) and token_embd need none
        Path full = imatrix(in, "full.gguf", 1, "d", "output.weight", "token_embd.weight");
        CliRunner.Result ok = CliRunner.run("quantize", "--imatrix", full.toString(), in.toString(), out.toString(), "Q2_K_S");
        assertEquals(0, ok.code(), ok.toString());
        assertTrue(ok.out().contains("Q2_K_S (file type 21"), ok.out());
    }

    @Test
    void mismatchingSizesAndBadValuesAreRefused() throws Exception {
        Path in = TinyModel.write(tmp.resolve("tiny.gguf"), 1, true, 6);
        Path out = tmp.resolve("q.gguf");
        Map<String, ImportanceMatrix.Entry> m = new LinkedHashMap<>();
        m.put("blk.0.attn_q.weight", new ImportanceMatrix.Entry(new float[128], 3));
        Path wrong = tmp.resolve("wrong.gguf");
        new ImportanceMatrix(m, List.of(), 0, 0).write(wrong);
        CliRunner.Result r = CliRunner.run("quantize", "--imatrix", wrong.toString(), in.toString(), out.toString(), "Q4_K_M");
        assertOneLine(r, "has 128 values but the tensor has 256 columns");

        // a token-embedding entry of the wrong size is ignored, as llama-quantize does
        m.clear();
        m.put("token_embd.weight", new ImportanceMatrix.Entry(new float[100], 3));
        m.put("blk.0.attn_q.weight", new ImportanceMatrix.Entry(new float[256], 0));
        Path embd = tmp.resolve("embd.gguf");
        new ImportanceMatrix(m, List.of(), 0, 0).write(embd);
        CliRunner.Result e = CliRunner.run("quantize", "--imatrix", embd.toString(), in.toString(), out.toString(), "Q4_0", "--pure");
        assertEquals(0, e.code(), e.toString());
        try (GgufFile q = GgufFile.open(out)) {
            assertFalse(q.metadata().has("quantize.imatrix.chunks_count"), "no chunks_count without chunks");
            assertFalse(q.metadata().has("quantize.imatrix.dataset"), "no dataset key without a dataset");
            assertEquals(2L, q.metadata().integer("quantize.imatrix.entries_count").orElseThrow());
        }

        m.clear();
        float[] inf = new float[256];
        inf[7] = Float.POSITIVE_INFINITY;
        m.put("blk.0.attn_q.weight", new ImportanceMatrix.Entry(inf, 3));
        Path bad = tmp.resolve("inf.gguf");
        new ImportanceMatrix(m, List.of(), 0, 0).write(bad);
        assertOneLine(CliRunner.run("quantize", "--imatrix", bad.toString(), in.toString(), out.toString(), "Q4_K_M"), "not finite");
        assertOneLine(CliRunner.run("quantize", "--imatrix", in.toString(), in.toString(), out.toString(), "Q4_K_M"),
                "not an importance matrix");
        assertOneLine(CliRunner.run("quantize", "--imatrix", tmp.resolve("none.dat").toString(), in.toString(), out.toString(), "Q4_K_M"),
                "no such file");
    }

    @Test
    void anImatrixGuardsTheFirstFfnDownLayersOfQ4_0() {
        // eight layers: llama.cpp gives ffn_down of layer 0 (n/8 = 1) Q4_1 with an imatrix, Q4_0 without
        Path in = TinyModel.write(tmp.resolve("tiny8.gguf"), 8, true, 7);
        Path im = imatrix(in, "im.gguf", 1, "d");
        Path with = tmp.resolve("with.gguf");
        Path without = tmp.resolve("without.gguf");
        assertEquals(0, CliRunner.run("quantize", "--imatrix", im.toString(), in.toString(), with.toString(), "Q4_0").code());
        assertEquals(0, CliRunner.run("quantize", in.toString(), without.toString(), "Q4_0").code());
        try (GgufFile a = GgufFile.open(with); GgufFile b = GgufFile.open(without)) {
            assertEquals(GgmlType.Q4_1, a.tensor("blk.0.ffn_down.weight").type());
            assertEquals(GgmlType.Q4_0, a.tensor("blk.1.ffn_down.weight").type());
            assertEquals(GgmlType.Q4_0, b.tensor("blk.0.ffn_down.weight").type());
            assertNotEquals(-1L, a.data(a.tensor("blk.1.attn_q.weight")).mismatch(b.data(b.tensor("blk.1.attn_q.weight"))));
        }
    }
}
