// `cria quantize` end to end: on a tiny model the test writes (always), and byte for byte against llama-quantize's files in ../shared.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.SharedData;
import cria.TinyModel;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class QuantizeCommandTest {

    @TempDir
    Path tmp;

    @Test
    void pureQ8_0QuantizesTheMatricesAndKeepsTheRest() throws Exception {
        Path in = TinyModel.write(tmp.resolve("tiny.gguf"), 2, true, 1);
        Path out = tmp.resolve("q8.gguf");
        CliRunner.Result r = CliRunner.run("quantize", in.toString(), out.toString(), "q8_0", "--pure", "--threads", "2");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("Q8_0 (file type 7, pure)"), r.out());
        assertTrue(r.err().contains("100.0%"), r.err());
        assertTrue(r.err().contains("blk.0.odd.weight") && r.err().contains("F16 instead"), "fallback warned: " + r.err());
        try (GgufFile src = GgufFile.open(in); GgufFile q = GgufFile.open(out); Arena arena = Arena.ofConfined()) {
            List<String> keys = List.copyOf(q.metadata().asMap().keySet());
            assertEquals("general.quantization_version", keys.get(keys.size() - 2));
            assertEquals("general.file_type", keys.get(keys.size() - 1));
            assertEquals(7L, q.metadata().integer("general.file_type").orElseThrow());
            assertEquals(2L, q.metadata().integer("general.quantization_version").orElseThrow());
            assertEquals("tiny", q.metadata().string("general.name").orElseThrow());
            assertEquals("output.weight", q.tensors().get(0).name(), "llama.cpp's order");
            assertEquals(src.tensors().size(), q.tensors().size());
            for (GgufTensorInfo t : q.tensors()) {
                GgufTensorInfo s = src.tensor(t.name());
                GgmlType want = t.shape().length == 1 ? GgmlType.F32 : t.shape()[0] == 40 ? GgmlType.F16 : GgmlType.Q8_0;
                assertEquals(want, t.type(), t.name());
                // the bytes are the codec's, row by row
                Tensor st = Tensor.of(src, s);
                long rb = want.rowBytes(st.rowLength());
                MemorySegment expect = arena.allocate(rb * st.rows());
                for (long row = 0; row < st.rows(); row++) {
                    Codecs.of(want).quantize(st.dequantizeRow(row), 0, st.rowLength(), expect, row * rb);
                }
                assertEquals(-1, expect.mismatch(q.data(t)), t.name());
            }
        }
    }

    @Test
    void q4_K_MMixAndFallbacks() {
        Path in = TinyModel.write(tmp.resolve("tiny.gguf"), 3, true, 2);
        Path out = tmp.resolve("mix.gguf");
        CliRunner.Result r = CliRunner.run("quantize", in.toString(), out.toString(), "Q4_K");
        assertEquals(0, r.code(), r.toString());
        try (GgufFile q = GgufFile.open(out)) {
            assertEquals(15L, q.metadata().integer("general.file_type").orElseThrow());
            assertEquals(GgmlType.Q6_K, q.tensor("output.weight").type());
            assertEquals(GgmlType.Q4_K, q.tensor("token_embd.weight").type());
            assertEquals(GgmlType.Q4_K, q.tensor("blk.0.attn_v.weight").type());
            assertEquals(GgmlType.Q6_K, q.tensor("blk.2.attn_v.weight").type(), "last layer gets more bits");
            assertEquals(GgmlType.Q5_0, q.tensor("blk.0.ffn_down.weight").type(), "96-value rows: Q4_K falls back to Q5_0");
            assertEquals(GgmlType.Q8_0, q.tensor("blk.2.ffn_down.weight").type(), "Q6_K falls back to Q8_0");
            assertEquals(GgmlType.F16, q.tensor("blk.1.odd.weight").type());
            assertEquals(GgmlType.F32, q.tensor("blk.1.ffn_norm.weight").type());
        }
    }

    @Test
    void tiedEmbeddingsGetTheOutputsType() {
        Path in = TinyModel.write(tmp.resolve("tied.gguf"), 1, false, 3);
        Path out = tmp.resolve("tied-q4km.gguf");
        assertEquals(0, CliRunner.run("quantize", in.toString(), out.toString(), "Q4_K_M").code());
        try (GgufFile q = GgufFile.open(out)) {
            assertEquals(GgmlType.Q6_K, q.tensor("token_embd.weight").type());
        }
    }

    @Test
    void theThreadCountDoesNotChangeTheBytes() throws Exception {
        Path in = TinyModel.write(tmp.resolve("tiny.gguf"), 2, true, 4);
        Path a = tmp.resolve("a.gguf");
        Path b = tmp.resolve("b.gguf");
        assertEquals(0, CliRunner.run("quantize", in.toString(), a.toString(), "Q5_K_S", "--threads", "1").code());
        assertEquals(0, CliRunner.run("quantize", in.toString(), b.toString(), "Q5_K_S", "--threads", "3").code());
        assertEquals(-1, Files.mismatch(a, b));
    }

    @Test
    void expectedFailuresAreOneLine() {
        Path in = TinyModel.write(tmp.resolve("tiny.gguf"), 1, true, 5);
        Path out = tmp.resolve("o.gguf");
        CliRunner.Result bad = CliRunner.run("quantize", in.toString(), out.toString(), "IQ2_XXS");
        assertEquals(1, bad.code());
        assertOneLine(bad.err(), "unsupported quantization type");

        assertEquals(0, CliRunner.run("quantize", in.toString(), out.toString(), "Q8_0").code());
        CliRunner.Result again = CliRunner.run("quantize", out.toString(), tmp.resolve("o2.gguf").toString(), "Q4_0");
        assertEquals(1, again.code());
        assertOneLine(again.err(), "--allow-requantize");
        CliRunner.Result allowed = CliRunner.run("quantize", out.toString(), tmp.resolve("o2.gguf").toString(), "Q4_0", "--allow-requantize");
        assertEquals(0, allowed.code(), allowed.toString());

        CliRunner.Result missing = CliRunner.run("quantize", tmp.resolve("nope.gguf").toString(), out.toString(), "Q8_0");
        assertEquals(1, missing.code());
        assertOneLine(missing.err(), "no such file");
        assertTrue(Files.notExists(tmp.resolve("o3.gguf")));
    }

    @Test
    void helpShowsAnExample() {
        CliRunner.Result r = CliRunner.run("quantize", "--help");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("Example: cria quantize"), r.out());
    }

    static void assertOneLine(String err, String contains) {
        String s = err.strip();
        assertTrue(s.contains(contains), s);
        assertEquals(1, s.lines().count(), "one line, no stack trace: " + s);
    }

    /** The shared files were made by llama-quantize from the f32 model: Cria must write the very same files. */
    @ParameterizedTest
    @ValueSource(strings = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16", "Q4_K_M"})
    void byteIdenticalToLlamaQuantize(String type) throws Exception {
        Path f32 = SharedData.require("models/synth-tok512-f32.gguf");
        Path ref = SharedData.require("models/synth-tok512-" + type + ".gguf");
        Path out = tmp.resolve(type + ".gguf");
        boolean mix = type.equals("Q4_K_M");
        CliRunner.Result r = mix ? CliRunner.run("quantize", f32.toString(), out.toString(), type)
                : CliRunner.run("quantize", f32.toString(), out.toString(), type, "--pure");
        assertEquals(0, r.code(), r.toString());
        long at = Files.mismatch(out, ref);
        assertEquals(-1L, at, type + ": differs from llama-quantize's file at byte " + at);
    }
}
