// `cria imatrix` end to end: the file it writes reads back with the counts and sums of the calibration pass, and bad input gets one line.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.SharedData;
import cria.gguf.GgufFile;
import cria.optimize.Calibration;
import cria.optimize.Importance;
import cria.quantize.ImportanceMatrix;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImatrixCommandTest {

    private static Path text(Path dir) throws Exception {
        Path t = dir.resolve("calib.txt");
        Files.writeString(t, ("the little dog ran to the park. he saw a bird in a tree and barked at it. "
                + "the bird flew away and the dog was sad, but then his friend came to play. ").repeat(12));
        return t;
    }

    /**
     * A phi3 file's fused matrices run as row views (q, k, v of attn_qkv; gate, up of ffn_up) but
     * get llama-imatrix's one entry each, named as the file's tensor and counted once (checked by
     * hand against llama-imatrix on such a file: the same 8 names and counts).
     */
    @Test
    void phi3FusedMatricesGetOneEntryEach(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("phi3.gguf");
        CliRunner.Result r = CliRunner.run("synth", "--arch", "phi3", "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2",
                "--rope-dims", "8", "--ffn", "96", "--vocab-size", "400", "--type", "F32", "-t", "1", "-o", model.toString());
        assertEquals(0, r.code(), r.toString());
        Path out = dir.resolve("p.imatrix.gguf");
        r = CliRunner.run("imatrix", "-m", model.toString(), "-f", text(dir).toString(), "-c", "32", "--chunks", "4",
                "-o", out.toString(), "-t", "1");
        assertEquals(0, r.code(), r.toString());
        ImportanceMatrix m = ImportanceMatrix.read(out);
        assertEquals(java.util.Set.of("blk.0.attn_qkv.weight", "blk.0.attn_output.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight",
                "blk.1.attn_qkv.weight", "blk.1.attn_output.weight", "blk.1.ffn_up.weight", "blk.1.ffn_down.weight"), m.entries().keySet());
        for (ImportanceMatrix.Entry e : m.entries().values()) {
            assertEquals(128, e.count(), "4 chunks of 32 rows, counted once");
        }
    }

    @Test
    void writesWhatTheCalibrationPassCollects(@TempDir Path dir) throws Exception {
        Path model = SharedData.require("models/stories260K.gguf");
        Path text = text(dir);
        Path out = dir.resolve("m.imatrix.gguf");
        CliRunner.Result r = CliRunner.run("imatrix", "-m", model.toString(), "-f", text.toString(), "-c", "64", "--chunks", "4",
                "-o", out.toString(), "-t", "1");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("35 entries from 4 chunks of 64 tokens"), r.err());
        ImportanceMatrix m = ImportanceMatrix.read(out);
        assertEquals(35, m.entries().size());
        assertEquals(4, m.chunkCount());
        assertEquals(64, m.chunkSize());
        assertEquals(text.toString(), m.datasets().get(0));
        assertFalse(m.entries().containsKey("output.weight"), "left out without --process-output, as llama-imatrix");
        // the same pass run here gives the same sums
        Importance want = new Importance(false);
        try (GgufFile f = GgufFile.open(model); Calibration cal = Calibration.open(f, new Calibration.Options("cpu", 1, 64, 4, false), null)) {
            cal.run(cal.chunks(text), want, null);
        }
        for (String name : new String[] {"blk.0.attn_k.weight", "blk.3.ffn_down.weight"}) {
            ImportanceMatrix.Entry e = m.entries().get(name);
            assertEquals(256, e.count(), name);
            double[] s = want.sums(name);
            for (int j = 0; j < s.length; j++) {
                assertEquals((float) s[j], e.sums()[j], name + " column " + j);
            }
            // what a quantizer is given: the mean squared activation per column
            float[] w = m.weights(name);
            assertEquals(s[1] / 256, w[1], 1e-6 * Math.abs(s[1] / 256) + 1e-12);
        }
        Path withOut = dir.resolve("o.gguf");
        assertEquals(0, CliRunner.run("imatrix", "-m", model.toString(), "-f", text.toString(), "-c", "64", "--chunks", "1",
                "--process-output", "-o", withOut.toString()).code());
        assertEquals(64, ImportanceMatrix.read(withOut).entries().get("output.weight").count());
    }

    @Test
    void badInputIsOneLine(@TempDir Path dir) throws Exception {
        Path model = SharedData.require("models/stories260K.gguf");
        Path text = text(dir);
        String[][] cases = {
            {"imatrix", "-m", model.toString(), "-f", dir.resolve("none.txt").toString(), "-o", dir.resolve("a").toString()},
            {"imatrix", "-m", dir.resolve("none.gguf").toString(), "-f", text.toString(), "-o", dir.resolve("a").toString()},
            {"imatrix", "-m", model.toString(), "-f", text.toString(), "-c", "100000", "-o", dir.resolve("a").toString()},
            {"imatrix", "-m", model.toString(), "-f", text.toString(), "-c", "4096", "-o", dir.resolve("a").toString()},
            {"imatrix", "-m", model.toString(), "-f", text.toString(), "--backend", "cuda", "-o", dir.resolve("a").toString()},
            {"imatrix", "-m", text.toString(), "-f", text.toString(), "-o", dir.resolve("a").toString()},
        };
        for (String[] c : cases) {
            CliRunner.Result r = CliRunner.run(c);
            assertEquals(1, r.code(), r.toString());
            assertEquals(1, r.err().strip().lines().count(), r.toString());
            assertFalse(r.err().contains("Exception"), r.toString());
        }
        assertFalse(Files.exists(dir.resolve("a")));
    }
}
