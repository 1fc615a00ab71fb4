// `cria tensor`: rows of a tensor as raw float32, and its one-line errors.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.SharedData;
import cria.TinyModel;
import cria.gguf.GgmlType;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TensorCommandTest {

    @TempDir
    Path tmp;

    static float[] floats(Path p) throws Exception {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[b.remaining() / 4];
        b.asFloatBuffer().get(f);
        return f;
    }

    @Test
    void writesTheFirstRowsOfAQuantizedTensor() throws Exception {
        Path in = TinyModel.write(tmp.resolve("tiny.gguf"), 1, true, 9);
        Path q = tmp.resolve("q.gguf");
        assertEquals(0, CliRunner.run("quantize", in.toString(), q.toString(), "Q8_0", "--pure").code());
        Path all = tmp.resolve("all.f32");
        CliRunner.Result r = CliRunner.run("tensor", q.toString(), "blk.0.attn_q.weight", "-o", all.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("wrote 8 rows x 256 values"), r.out());
        float[] a = floats(all);
        assertEquals(8 * 256, a.length);

        Path two = tmp.resolve("two.f32");
        assertEquals(0, CliRunner.run("tensor", q.toString(), "blk.0.attn_q.weight", "--rows", "2", "-o", two.toString()).code());
        float[] b = floats(two);
        assertEquals(2 * 256, b.length);
        assertArrayEquals(java.util.Arrays.copyOf(a, 512), b);

        // the Q8_0 values are the F32 originals within half a quantization step
        Path orig = tmp.resolve("orig.f32");
        assertEquals(0, CliRunner.run("tensor", in.toString(), "blk.0.attn_q.weight", "-o", orig.toString()).code());
        float[] o = floats(orig);
        for (int i = 0; i < o.length; i++) {
            assertEquals(o[i], a[i], 0.002, "value " + i);
        }
    }

    @Test
    void matchesGgmlsDequantizedRows() throws Exception {
        Path model = SharedData.require("models/synth-tok512-Q3_K.gguf");
        Path ref = SharedData.require("reference/synth-tok512-Q3_K.deq_blk0_ffn_down_16rows.f32");
        Path out = tmp.resolve("rows.f32");
        assertEquals(0, CliRunner.run("tensor", model.toString(), "blk.0.ffn_down.weight", "--rows", "16", "-o", out.toString()).code());
        assertEquals(-1L, Files.mismatch(out, ref));
    }

    @Test
    void errorsAreOneLine() throws Exception {
        Path in = TinyModel.write(tmp.resolve("tiny.gguf"), 1, true, 10);
        Path out = tmp.resolve("x.f32");
        CliRunner.Result unknown = CliRunner.run("tensor", in.toString(), "blk.7.attn_q.weight", "-o", out.toString());
        assertEquals(1, unknown.code());
        QuantizeCommandTest.assertOneLine(unknown.err(), "no tensor named 'blk.7.attn_q.weight'");
        CliRunner.Result zero = CliRunner.run("tensor", in.toString(), "blk.0.attn_q.weight", "--rows", "0", "-o", out.toString());
        assertEquals(1, zero.code());
        QuantizeCommandTest.assertOneLine(zero.err(), "out of range");
        CliRunner.Result many = CliRunner.run("tensor", in.toString(), "blk.0.attn_q.weight", "--rows", "9", "-o", out.toString());
        assertEquals(1, many.code());
        QuantizeCommandTest.assertOneLine(many.err(), "has 8 rows");

        Metadata md = new Metadata("t");
        md.put("general.architecture", GgufValue.ofString("llama"));
        GgufWriter w = new GgufWriter(md);
        w.addTensor("w", GgmlType.IQ2_XXS, new long[] {256, 2}, dst -> dst.fill((byte) 0));
        Path odd = tmp.resolve("iq2.gguf");
        w.write(odd);
        CliRunner.Result unsupported = CliRunner.run("tensor", odd.toString(), "w", "-o", out.toString());
        assertEquals(1, unsupported.code());
        QuantizeCommandTest.assertOneLine(unsupported.err(), "IQ2_XXS, which Cria cannot decode");

        CliRunner.Result help = CliRunner.run("tensor", "--help");
        assertTrue(help.out().contains("Example: cria tensor"), help.out());
    }
}
