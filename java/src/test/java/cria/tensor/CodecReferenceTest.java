// Checks every codec against llama.cpp's own output in ../shared: dequantized rows and quantized tensor bytes.
package cria.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import cria.SharedData;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The shared synth-tok512 models were made by llama-quantize --pure from synth-tok512-f32.gguf,
 * and ggml dequantized the first 16 rows of blk.0.ffn_down.weight of each. Both directions must
 * match bit for bit. Skipped without ../shared.
 */
class CodecReferenceTest {

    static final String ROWS_TENSOR = "blk.0.ffn_down.weight";

    @ParameterizedTest
    @ValueSource(strings = {"f32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q4_K_M"})
    void dequantizeMatchesGgmlBitForBit(String name) throws Exception {
        Path model = SharedData.require("models/synth-tok512-" + name + ".gguf");
        Path ref = SharedData.require("reference/synth-tok512-" + name + ".deq_blk0_ffn_down_16rows.f32");
        float[] expected = readFloats(ref);
        try (GgufFile f = GgufFile.open(model)) {
            Tensor t = Tensor.of(f, ROWS_TENSOR);
            int n = t.rowLength();
            assertEquals(16 * n, expected.length, "reference size");
            float[] got = new float[16 * n];
            for (int r = 0; r < 16; r++) {
                t.dequantizeRow(r, got, r * n);
            }
            for (int i = 0; i < got.length; i++) {
                if (Float.floatToRawIntBits(got[i]) != Float.floatToRawIntBits(expected[i])) {
                    fail(t.type() + ": value " + i + " (row " + i / n + ", column " + i % n + ") is " + got[i]
                            + ", ggml has " + expected[i]);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16"})
    void quantizeMatchesLlamaQuantizeByteForByte(String name) throws Exception {
        Path src = SharedData.require("models/synth-tok512-f32.gguf");
        Path quant = SharedData.require("models/synth-tok512-" + name + ".gguf");
        try (GgufFile f32 = GgufFile.open(src); GgufFile q = GgufFile.open(quant); Arena arena = Arena.ofConfined()) {
            int compared = 0;
            for (GgufTensorInfo qi : q.tensors()) {
                if (qi.type() == GgmlType.F32) {
                    continue;
                }
                Tensor in = Tensor.of(f32, qi.name());
                Codec codec = Codecs.of(qi.type());
                int n = in.rowLength();
                MemorySegment expected = q.data(qi);
                long rowBytes = qi.type().rowBytes(n);
                MemorySegment got = arena.allocate(rowBytes);
                for (long r = 0; r < in.rows(); r++) {
                    float[] row = in.dequantizeRow(r);
                    codec.quantize(row, 0, n, got, 0);
                    long mismatch = got.mismatch(expected.asSlice(r * rowBytes, rowBytes));
                    if (mismatch >= 0) {
                        fail(qi.name() + " " + qi.type() + ": row " + r + " differs from llama-quantize at byte " + mismatch
                                + " (block " + mismatch / qi.type().typeSize() + ", byte " + mismatch % qi.type().typeSize() + " of it)");
                    }
                }
                compared++;
            }
            assertTrue(compared > 0, "no quantized tensors in " + quant);
        }
    }

    static float[] readFloats(Path p) throws Exception {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }
}
