// Checks the calibration pass: the inputs it shows are the model's own (layer 0 computed independently), on cpu and ref, and weights changed in place take effect.
package cria.optimize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.SharedData;
import cria.gguf.GgufFile;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CalibrationTest {
    private static final String TEXT = "once upon a time there was a little girl named lily. she loved to play outside in the park "
            + "with her friends. one day she saw a big red ball under a tree and ran to get it. ";

    /** Sums of squares per column, per weight name, and the rows seen. */
    private static final class Sums implements Calibration.Tap {
        final Map<String, double[]> sums = new HashMap<>();
        final Map<String, Integer> rows = new HashMap<>();

        @Override
        public void accept(cria.backend.Weight w, MemorySegment x, int n) {
            double[] s = sums.computeIfAbsent(w.name(), k -> new double[w.cols()]);
            for (int r = 0; r < n; r++) {
                for (int j = 0; j < w.cols(); j++) {
                    double v = x.getAtIndex(ValueLayout.JAVA_FLOAT, (long) r * w.cols() + j);
                    s[j] += v * v;
                }
            }
            rows.merge(w.name(), n, Integer::sum);
        }
    }

    @Test
    void layerZeroInputsAreTheNormalizedEmbeddings() throws Exception {
        Path model = SharedData.require("models/stories260K.gguf");
        for (String backend : new String[] {"cpu", "ref"}) {
            try (GgufFile file = GgufFile.open(model);
                 Calibration cal = Calibration.open(file, new Calibration.Options(backend, 2, 32, 3, false), null)) {
                int[][] chunks = cal.chunks(cal.tokenizer().encode(TEXT.repeat(4), true, false), "text");
                assertEquals(3, chunks.length);
                for (int[] c : chunks) {
                    assertEquals(cal.tokenizer().bos(), c[0], "each chunk starts with BOS");
                }
                Sums tap = new Sums();
                cal.run(chunks, tap, null);
                // q, k and v share their input; gate and up too; output.weight is not shown
                assertArrayEquals(tap.sums.get("blk.0.attn_q.weight"), tap.sums.get("blk.0.attn_v.weight"));
                assertArrayEquals(tap.sums.get("blk.2.ffn_gate.weight"), tap.sums.get("blk.2.ffn_up.weight"));
                assertTrue(!tap.sums.containsKey("output.weight") && !tap.sums.containsKey("token_embd.weight"));
                assertEquals(3 * 32, tap.rows.get("blk.4.ffn_down.weight"));
                assertEquals(5 * 7, tap.sums.size());
                // layer 0's q input is rmsnorm(embedding row) * attn_norm: computed here from the file alone
                Tensor emb = Tensor.of(file, file.tensor("token_embd.weight"));
                Tensor norm = Tensor.of(file, file.tensor("blk.0.attn_norm.weight"));
                int dim = emb.rowLength();
                float[] g = norm.dequantizeRow(0);
                double eps = cal.config().rmsEps();
                double[] want = new double[dim];
                for (int[] c : chunks) {
                    for (int t : c) {
                        float[] e = emb.dequantizeRow(t);
                        double ss = 0;
                        for (float v : e) {
                            ss += (double) v * v;
                        }
                        double scale = 1 / Math.sqrt(ss / dim + eps);
                        for (int j = 0; j < dim; j++) {
                            double v = e[j] * scale * g[j];
                            want[j] += v * v;
                        }
                    }
                }
                double[] got = tap.sums.get("blk.0.attn_q.weight");
                for (int j = 0; j < dim; j++) {
                    assertEquals(want[j], got[j], 1e-4 * want[j] + 1e-6, backend + ": column " + j);
                }
            }
        }
    }

    @Test
    void weightsChangedInPlaceChangeTheNextRun(@TempDir Path dir) throws Exception {
        Path copy = dir.resolve("work.gguf");
        Files.copy(SharedData.require("models/stories260K.gguf"), copy, StandardCopyOption.REPLACE_EXISTING);
        try (GgufFile file = GgufFile.open(copy, true);
             Calibration cal = Calibration.open(file, new Calibration.Options("cpu", 1, 32, 1, true), null)) {
            int[][] chunks = cal.chunks(cal.tokenizer().encode(TEXT, true, false), "text");
            Sums before = new Sums();
            cal.run(chunks, before, null);
            assertEquals(32, before.rows.get("output.weight"), "every row's logits with processOutput");
            // zero blk.1's attention output: blk.1's feed-forward input (and everything after) changes, blk.1's q input does not
            MemorySegment wo = Tensor.of(file, file.tensor("blk.1.attn_output.weight")).data();
            wo.fill((byte) 0);
            Sums after = new Sums();
            cal.run(chunks, after, null);
            assertArrayEquals(before.sums.get("blk.1.attn_q.weight"), after.sums.get("blk.1.attn_q.weight"));
            assertNotEquals(before.sums.get("blk.1.ffn_gate.weight")[0], after.sums.get("blk.1.ffn_gate.weight")[0]);
            file.force();
        }
        try (GgufFile reread = GgufFile.open(copy)) {
            MemorySegment wo = Tensor.of(reread, reread.tensor("blk.1.attn_output.weight")).data();
            assertEquals(0f, wo.getAtIndex(ValueLayout.JAVA_FLOAT, 5), "the change reached the file");
        }
    }

    @Test
    void refusesBadOptionsAndShortText() {
        assertThrows(CriaException.class, () -> new Calibration.Options("cuda", 0, 64, 0, false));
        assertThrows(CriaException.class, () -> new Calibration.Options("cpu", 0, 1, 0, false));
        Path model = SharedData.require("models/stories260K.gguf");
        try (GgufFile file = GgufFile.open(model);
             Calibration cal = Calibration.open(file, new Calibration.Options("cpu", 1, 512, 0, false), null)) {
            CriaException e = assertThrows(CriaException.class, () -> cal.chunks(cal.tokenizer().encode("too short", true, false), "t.txt"));
            assertTrue(e.getMessage().contains("fewer than one chunk of 512"), e.getMessage());
        }
    }
}
