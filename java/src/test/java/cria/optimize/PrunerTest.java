// Prunes stories260K with each method end to end: zeros in place per row, other tensors untouched, the file runs, Wanda and SparseGPT beat magnitude.
package cria.optimize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.CriaException;
import cria.SharedData;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PrunerTest {
    @TempDir
    static Path dir;
    private static Path model;
    private static Path calib;
    private static Path heldout;
    private static final Map<Pruner.Method, Path> HALF = new EnumMap<>(Pruner.Method.class);
    private static final Map<Pruner.Method, Pruner.Result> RESULTS = new EnumMap<>(Pruner.Method.class);

    @BeforeAll
    static void pruneWithEachMethod() throws IOException {
        if (SharedData.dir() == null || !Files.exists(SharedData.dir().resolve("models/stories260K.gguf"))
                || !Files.exists(SharedData.dir().resolve("text/tinystories-lc.txt"))) {
            return; // each test skips with the reason
        }
        model = SharedData.dir().resolve("models/stories260K.gguf");
        byte[] text = Files.readAllBytes(SharedData.dir().resolve("text/tinystories-lc.txt"));
        calib = dir.resolve("calib.txt");
        heldout = dir.resolve("heldout.txt");
        Files.writeString(calib, slice(text, 0, 60_000));
        Files.writeString(heldout, slice(text, text.length - 6_000, text.length));
        for (Pruner.Method m : Pruner.Method.values()) {
            Path out = dir.resolve(m.id() + ".gguf");
            RESULTS.put(m, Pruner.prune(model, out, options(m, PrunePattern.unstructured(0.5)), null));
            HALF.put(m, out);
        }
    }

    private static Pruner.Options options(Pruner.Method m, PrunePattern p) {
        return new Pruner.Options(m, p, m.calibrated() ? calib : null, "cpu", 2, 64, 16, SparseGpt.DEFAULT_DAMP, SparseGpt.DEFAULT_BLOCK);
    }

    /** Whole lines of the bytes [from, to), as text. */
    private static String slice(byte[] text, int from, int to) {
        String s = new String(text, from, to - from, StandardCharsets.UTF_8);
        return s.substring(s.indexOf('\n') + 1, s.lastIndexOf('\n') + 1);
    }

    private static void requireData() {
        SharedData.require("models/stories260K.gguf");
        SharedData.require("text/tinystories-lc.txt");
    }

    @Test
    void everyRowOfEveryBlockProductLosesHalfItsWeights() {
        requireData();
        for (Pruner.Method m : Pruner.Method.values()) {
            try (GgufFile in = GgufFile.open(model); GgufFile out = GgufFile.open(HALF.get(m))) {
                int matrices = 0;
                for (GgufTensorInfo t : out.tensors()) {
                    GgufTensorInfo orig = in.tensor(t.name());
                    assertNotNull(orig, t.name());
                    String kind = t.name().replaceFirst("^blk\\.\\d+\\.", "").replace(".weight", "");
                    if (t.name().startsWith("blk.") && Pruner.MATRICES.contains(kind)) {
                        matrices++;
                        assertEquals(GgmlType.F32, t.type(), t.name());
                        MemorySegment data = out.data(t);
                        int cols = (int) t.rowLength();
                        for (long r = 0; r < t.rows(); r++) {
                            int zeros = 0;
                            for (int j = 0; j < cols; j++) {
                                zeros += data.getAtIndex(ValueLayout.JAVA_FLOAT, r * cols + j) == 0f ? 1 : 0;
                            }
                            assertEquals(cols / 2, zeros, m + " " + t.name() + " row " + r);
                        }
                    } else {
                        assertEquals(-1, out.data(t).mismatch(in.data(t)), m + ": " + t.name() + " must be copied as it was");
                    }
                }
                assertEquals(35, matrices);
                assertEquals(m.id(), out.metadata().string("cria.prune.method").orElseThrow());
                assertEquals("unstructured", out.metadata().string("cria.prune.pattern").orElseThrow());
                assertEquals(m.calibrated(), out.metadata().has("cria.prune.calibration.chunks"));
            }
            Pruner.Result r = RESULTS.get(m);
            assertEquals(0.5, r.sparsity(), 1e-12);
            assertEquals(m.calibrated() ? 16 : 0, r.chunks());
        }
    }

    @Test
    void wandaAndSparseGptKeepTheModelBetterThanMagnitude() {
        requireData();
        double dense = perplexity(model);
        double magnitude = perplexity(HALF.get(Pruner.Method.MAGNITUDE));
        double wanda = perplexity(HALF.get(Pruner.Method.WANDA));
        double sparsegpt = perplexity(HALF.get(Pruner.Method.SPARSEGPT));
        String all = "dense " + dense + ", magnitude " + magnitude + ", wanda " + wanda + ", sparsegpt " + sparsegpt;
        assertTrue(dense < sparsegpt && sparsegpt < wanda && wanda < magnitude, all);
    }

    @Test
    void twoOfFourHoldsInEveryGroup() throws IOException {
        requireData();
        // the file path of N:M (SparseGpt's and Wanda's N:M masks are checked in their own tests)
        Path out = dir.resolve("magnitude-2of4.gguf");
        Pruner.prune(model, out, options(Pruner.Method.MAGNITUDE, PrunePattern.nOfM(2, 4)), null);
        try (GgufFile f = GgufFile.open(out)) {
            for (GgufTensorInfo t : f.tensors()) {
                if (t.name().startsWith("blk.") && t.shape().length == 2) {
                    MemorySegment data = f.data(t);
                    for (long g = 0; g < t.elements(); g += 4) {
                        int zeros = 0;
                        for (int j = 0; j < 4; j++) {
                            zeros += data.getAtIndex(ValueLayout.JAVA_FLOAT, g + j) == 0f ? 1 : 0;
                        }
                        assertEquals(2, zeros, t.name() + " group at " + g);
                    }
                }
            }
            assertEquals("2:4", f.metadata().string("cria.prune.pattern").orElseThrow());
        }
        double ppl = perplexity(out);
        assertTrue(Double.isFinite(ppl) && ppl > perplexity(model), "2:4 perplexity " + ppl);
    }

    @Test
    void aQuantizedModelComesOutWithItsBlockProductsInF32AndQuantizesAgain() {
        Path q8 = SharedData.require("models/synth-tok512-Q8_0.gguf");
        Path out = dir.resolve("q8-magnitude.gguf");
        Pruner.Result r = Pruner.prune(q8, out, options(Pruner.Method.MAGNITUDE, PrunePattern.unstructured(0.25)), null);
        assertEquals(0.25, r.sparsity(), 0.01);
        try (GgufFile in = GgufFile.open(q8); GgufFile f = GgufFile.open(out)) {
            assertEquals(GgmlType.F32, f.tensor("blk.0.ffn_down.weight").type());
            assertEquals(in.tensor("token_embd.weight").type(), f.tensor("token_embd.weight").type());
        }
        Path requantized = dir.resolve("q8-magnitude-Q8_0.gguf");
        CliRunner.Result q = CliRunner.run("quantize", out.toString(), requantized.toString(), "Q8_0", "--allow-requantize");
        assertEquals(0, q.code(), q.toString());
        CliRunner.Result run = CliRunner.run("generate", "-m", requantized.toString(), "-p", "a", "-n", "4", "--backend", "cpu");
        assertEquals(0, run.code(), run.toString());
    }

    @Test
    void refusesWhatItCannotDoInOneLine() throws IOException {
        requireData();
        Path out = dir.resolve("never.gguf");
        // stories260K's feed-forward rows are 172 long: 3:8 groups cannot tile them
        CriaException e = assertThrows(CriaException.class,
                () -> Pruner.prune(model, out, options(Pruner.Method.WANDA, PrunePattern.nOfM(3, 8)), null));
        assertTrue(e.getMessage().contains("172") && e.getMessage().contains("3:8"), e.getMessage());
        Path tiny = dir.resolve("tiny.txt");
        Files.writeString(tiny, "once upon a time");
        e = assertThrows(CriaException.class, () -> Pruner.prune(model, out, new Pruner.Options(Pruner.Method.SPARSEGPT,
                PrunePattern.unstructured(0.5), tiny, "cpu", 1, 64, 4, 0.01, 128), null));
        assertTrue(e.getMessage().contains("fewer than one chunk"), e.getMessage());
        assertThrows(CriaException.class, () -> new Pruner.Options(Pruner.Method.WANDA, PrunePattern.unstructured(0.5), null,
                "cpu", 1, 64, 4, 0.01, 128));
        assertFalse(Files.exists(out), "nothing written");
        try (var files = Files.list(dir)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().endsWith(".pruning")), "no working copy left behind");
        }
    }

    private static final Pattern PPL = Pattern.compile("Final estimate: PPL = ([0-9.]+)");

    private static final Map<Path, Double> PERPLEXITIES = new java.util.concurrent.ConcurrentHashMap<>();

    /** The perplexity of the held-out text under {@code model} (cached: each file is measured once). */
    static double perplexity(Path model) {
        return PERPLEXITIES.computeIfAbsent(model, PrunerTest::measure);
    }

    private static double measure(Path model) {
        CliRunner.Result r = CliRunner.run("perplexity", "-m", model.toString(), "-f", heldout.toString(), "-c", "128", "--backend", "cpu");
        assertEquals(0, r.code(), r.toString());
        Matcher m = PPL.matcher(r.out());
        assertTrue(m.find(), r.toString());
        return Double.parseDouble(m.group(1));
    }
}
