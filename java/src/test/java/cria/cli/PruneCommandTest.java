// `cria prune` on a tiny random model: a run that works with its report, and every bad option refused in one line before any work.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.TestModels;
import cria.gguf.GgufFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PruneCommandTest {
    @TempDir
    static Path tmp;
    static String model;
    static String calib;

    @BeforeAll
    static void files() throws IOException {
        model = TestModels.tinyLlama(tmp.resolve("m.gguf"), 5).toString();
        Path text = tmp.resolve("calib.txt");
        Files.writeString(text, "abcdefgh ijklmnop qrstuvwx yz ".repeat(40));
        calib = text.toString();
    }

    @Test
    void prunesAndSaysWhatItDid() throws IOException {
        Path out = tmp.resolve("wanda.gguf");
        CliRunner.Result r = CliRunner.run("prune", "-m", model, "--method", "wanda", "--sparsity", "0.25", "--calib", calib,
                "--ctx", "16", "--chunks", "3", "-o", out.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("wanda 25.00% unstructured, 14 matrices, 25.00% of their weights zero, calibrated on 3 chunks of 16 tokens"),
                r.toString());
        for (String kind : List.of("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")) {
            assertTrue(r.err().lines().anyMatch(l -> l.contains(kind) && l.contains("25.00% zeros")), kind + ": " + r);
        }
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(3L, f.metadata().integer("cria.prune.calibration.chunks").orElseThrow());
        }
        CliRunner.Result g = CliRunner.run("generate", "-m", out.toString(), "-p", "abc", "-n", "3", "--backend", "cpu");
        assertEquals(0, g.code(), g.toString());
    }

    @Test
    void magnitudeNeedsNoTextAndSaysSoWhenGivenSome() {
        Path out = tmp.resolve("magnitude.gguf");
        CliRunner.Result r = CliRunner.run("prune", "-m", model, "--method", "magnitude", "--pattern", "2:4", "--calib", calib,
                "-o", out.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("warning: magnitude pruning uses no calibration text"), r.toString());
        assertTrue(r.out().contains("magnitude 2:4 pattern, 14 matrices, 50.00% of their weights zero"), r.toString());
    }

    @Test
    void helpHasARealExample() {
        CliRunner.Result r = CliRunner.run("prune", "--help");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("Example: cria prune -m model.gguf --method wanda --calib text.txt -o wanda.gguf"), r.out());
    }

    @Test
    void badOptionsAreOneLine() {
        String out = tmp.resolve("never.gguf").toString();
        refused("--sparsity must be above 0 and below 1", "--method", "wanda", "--calib", calib, "--sparsity", "1", "-o", out);
        refused("--sparsity must be above 0 and below 1", "--method", "wanda", "--calib", calib, "--sparsity", "0", "-o", out);
        refused("--sparsity must be above 0 and below 1", "--method", "wanda", "--calib", calib, "--sparsity", "-0.5", "-o", out);
        refused("--sparsity must be above 0 and below 1", "--method", "wanda", "--calib", calib, "--sparsity", "NaN", "-o", out);
        refused("--sparsity", "--method", "wanda", "--calib", calib, "--sparsity", "half", "-o", out);
        refused("--pattern", "--method", "wanda", "--calib", calib, "--pattern", "4:4", "-o", out);
        refused("--pattern", "--method", "wanda", "--calib", calib, "--pattern", "two:four", "-o", out);
        refused("give one of them", "--method", "wanda", "--calib", calib, "--pattern", "2:4", "--sparsity", "0.3", "-o", out);
        refused("not a multiple of 64", "--method", "wanda", "--calib", calib, "--pattern", "8:64", "-o", out.replace("never", "n2"));
        refused("--method must be magnitude, wanda or sparsegpt", "--method", "obs", "--calib", calib, "-o", out);
        refused("needs calibration text", "--method", "sparsegpt", "-o", out);
        refused("no such file", "--method", "wanda", "--calib", tmp.resolve("absent.txt").toString(), "-o", out);
        refused("fewer than one chunk", "--method", "wanda", "--calib", calib, "--ctx", "4096", "-o", out);
        refused("--ctx", "--method", "wanda", "--calib", calib, "--ctx", "1", "-o", out);
        refused("--threads", "--method", "wanda", "--calib", calib, "--threads", "-2", "-o", out);
        refused("--backend must be cpu or ref", "--method", "wanda", "--calib", calib, "--backend", "cuda", "-o", out);
        refused("--damp", "--method", "sparsegpt", "--calib", calib, "--damp", "-1", "-o", out);
        refused("--block", "--method", "sparsegpt", "--calib", calib, "--block", "0", "-o", out);
        refused("--chunks", "--method", "sparsegpt", "--calib", calib, "--chunks", "-1", "-o", out);
        refused("is a directory", "--method", "magnitude", "-o", tmp.toString());
        CliRunner.Result r = CliRunner.run("prune", "-m", tmp.resolve("absent.gguf").toString(), "--method", "magnitude", "-o", out);
        assertEquals(1, r.code(), r.toString());
        assertEquals(1, r.err().lines().count(), r.toString());
        assertFalse(Files.exists(Path.of(out)), "nothing written");
    }

    /** `prune -m MODEL ARGS` must fail with one line on stderr containing {@code expect}. */
    private static void refused(String expect, String... args) {
        String[] all = new String[args.length + 3];
        all[0] = "prune";
        all[1] = "-m";
        all[2] = model;
        System.arraycopy(args, 0, all, 3, args.length);
        CliRunner.Result r = CliRunner.run(all);
        assertEquals(1, r.code(), String.join(" ", args) + ": " + r);
        List<String> lines = r.err().lines().filter(l -> !l.startsWith("prune [")).toList();
        assertEquals(1, lines.size(), String.join(" ", args) + ": one line: " + r);
        assertFalse(lines.get(0).contains("Exception"), lines.get(0));
        assertTrue(lines.get(0).contains(expect), String.join(" ", args) + ": expected '" + expect + "' in: " + lines.get(0));
    }
}
