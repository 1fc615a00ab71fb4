// `cria compare` end to end: the table's rows, base against itself (KL 0, top-1 100 %), perplexity as `cria perplexity` gives it, charts, JSON, and the one-line errors.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import cria.CliRunner;
import cria.GgufEdit;
import cria.SharedData;
import cria.TestModels;
import cria.gguf.GgmlType;
import cria.gguf.GgufValue;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CompareCommandTest {
    private static final byte[] PNG = {(byte) 0x89, 'P', 'N', 'G'};

    /** Random lower-case letters and spaces: every letter is one token of the tiny test vocabulary. */
    private static Path text(Path file, int chars) throws Exception {
        Random r = new Random(11);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < chars; i++) {
            sb.append(r.nextInt(6) == 0 ? ' ' : (char) ('a' + r.nextInt(26)));
        }
        Files.writeString(file, sb.toString());
        return file;
    }

    private static JsonNode model(JsonNode root, String name) {
        for (JsonNode m : root.path("models")) {
            if (m.path("model").asText().equals(name)) {
                return m;
            }
        }
        throw new AssertionError("no row for " + name + " in " + root);
    }

    @Test
    void tableChartsAndJsonForTheBaseItselfAnotherModelAndAPrunedOne(@TempDir Path tmp) throws Exception {
        Path base = TestModels.tinyLlama(tmp.resolve("base.gguf"), 3);
        Path same = Files.copy(base, tmp.resolve("same.gguf"));
        Path other = TestModels.tinyLlama(tmp.resolve("other.gguf"), 4);
        // every other weight of one matrix set to zero: 32 x 64 / 2 zeros, in place, in an ordinary F32 file
        GgufEdit e = GgufEdit.of(base);
        float[] w = new float[32 * 64];
        GgufEdit.TensorData up = e.tensors.get("blk.0.ffn_up.weight");
        java.nio.ByteBuffer.wrap(up.bytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(w);
        for (int i = 0; i < w.length; i += 2) {
            w[i] = 0;
        }
        e.putTensor("blk.0.ffn_up.weight", GgmlType.F32, up.shape(), GgufEdit.floats(w));
        Path pruned = e.write(tmp.resolve("pruned.gguf"));
        Path text = text(tmp.resolve("text.txt"), 3000);
        Path json = tmp.resolve("out.json");

        CliRunner.Result r = CliRunner.run("compare", base.toString(), same.toString(), other.toString(), pruned.toString(),
                "-f", text.toString(), "-c", "32", "--chunks", "4", "-p", "8", "-n", "4", "-r", "1", "--backend", "cpu", "-t", "1",
                "--charts", tmp.resolve("cmp").toString(), "--json", json.toString(), "--tmp", tmp.toString());
        assertEquals(0, r.code(), r.toString());
        List<String> lines = r.out().lines().toList();
        assertEquals(6, lines.size(), r.out());
        assertTrue(lines.get(0).startsWith("| model | type | size | params | nonzero | PPL |") && lines.get(0).contains("| pp8 t/s | tg4 t/s |"), lines.get(0));
        assertTrue(lines.get(2).startsWith("| base.gguf | F32 |"), lines.get(2));
        assertTrue(lines.get(3).startsWith("| same.gguf |") && lines.get(3).contains("| 1.0000 | 0.000000 | 0.000000 | 100.00 % |"), lines.get(3));
        assertTrue(lines.get(4).startsWith("| other.gguf |"), lines.get(4));
        assertTrue(lines.get(5).startsWith("| pruned.gguf |"), lines.get(5));

        JsonNode root = Json.MAPPER.readTree(Files.readString(json));
        assertEquals(4, root.path("chunks").asInt());
        assertEquals(4 * (32 - 1 - 16), root.path("scored_tokens").asInt());
        JsonNode b = model(root, "base.gguf");
        JsonNode s = model(root, "same.gguf");
        JsonNode o = model(root, "other.gguf");
        JsonNode p = model(root, "pruned.gguf");
        for (JsonNode m : List.of(b, s)) {
            assertEquals(0.0, m.path("kld_mean").asDouble(), m.toString());
            assertEquals(0.0, m.path("kld_max").asDouble(), m.toString());
            assertEquals(1.0, m.path("same_top").asDouble(), m.toString());
            assertEquals(1.0, m.path("ppl_ratio").asDouble(), m.toString());
        }
        assertEquals(b.path("ppl").asDouble(), s.path("ppl").asDouble());
        assertTrue(o.path("kld_mean").asDouble() > 0.01 && o.path("same_top").asDouble() < 1, o.toString());
        assertTrue(p.path("kld_mean").asDouble() > 0 && p.path("kld_p99").asDouble() >= p.path("kld_mean").asDouble() * 0, p.toString());
        long params = b.path("params").asLong();
        assertEquals(params, b.path("nonzero_params").asLong());
        assertEquals(params, p.path("params").asLong());
        assertEquals(params - 32 * 64 / 2, p.path("nonzero_params").asLong());
        assertTrue(b.path("tg_ts").asDouble() > 0 && b.path("pp_ts").asDouble() > 0, b.toString());

        // the perplexity column is cria perplexity's number for the same chunks
        for (Path m : List.of(base, other, pruned)) {
            CliRunner.Result ppl = CliRunner.run("perplexity", "-m", m.toString(), "-f", text.toString(), "-c", "32", "--chunks", "4",
                    "--backend", "cpu", "-t", "1");
            assertEquals(0, ppl.code(), ppl.toString());
            double want = PerplexityTest.ppl(ppl.out());
            assertEquals(want, model(root, m.getFileName().toString()).path("ppl").asDouble(), 5e-5, m.toString());
        }

        for (String chart : List.of("cmp-ppl.png", "cmp-speed.png")) {
            byte[] png = Files.readAllBytes(tmp.resolve(chart));
            assertTrue(png.length > 5000 && Arrays.equals(PNG, Arrays.copyOf(png, 4)), chart + ": " + png.length + " bytes");
        }
        try (var left = Files.list(tmp)) {
            assertTrue(left.noneMatch(f -> f.getFileName().toString().startsWith("cria-compare-")), "the scratch file was left behind");
        }
    }

    @Test
    void badInputIsOneLine(@TempDir Path tmp) throws Exception {
        Path base = TestModels.tinyLlama(tmp.resolve("base.gguf"), 3);
        Path text = text(tmp.resolve("text.txt"), 3000);
        GgufEdit e = GgufEdit.of(base);
        String[] tokens = e.metadata.strings("tokenizer.ggml.tokens").orElseThrow().clone();
        tokens[40] = "\u2581zz";
        Path otherVocab = e.set("tokenizer.ggml.tokens", GgufValue.ofStrings(tokens)).write(tmp.resolve("vocab.gguf"));

        String[][] cases = {
            {"missing.gguf: no such file", base.toString(), tmp.resolve("missing.gguf").toString(), "-f", text.toString()},
            {"KL divergence needs the same vocabulary", base.toString(), otherVocab.toString(), "-f", text.toString()},
            {"token 40", base.toString(), otherVocab.toString(), "-f", text.toString()},
            {"at least 2 x 4096", base.toString(), base.toString(), "-f", text.toString(), "-c", "4096"},
            {"nope.txt: no such file", base.toString(), base.toString(), "-f", tmp.resolve("nope.txt").toString()},
            {"--reps must be at least 1", base.toString(), base.toString(), "-f", text.toString(), "-r", "0"},
            {"-c 2 is too short", base.toString(), base.toString(), "-f", text.toString(), "-c", "2"},
        };
        for (String[] c : cases) {
            String[] args = new String[c.length];
            args[0] = "compare";
            System.arraycopy(c, 1, args, 1, c.length - 1);
            CliRunner.Result r = CliRunner.run(args);
            assertEquals(1, r.code(), r.toString());
            assertTrue(r.err().contains(c[0]), c[0] + " not in: " + r.err());
            assertEquals(1, r.err().strip().lines().count(), "more than one line: " + r.err());
        }
        CliRunner.Result help = CliRunner.run("compare", "--help");
        assertEquals(0, help.code());
        assertTrue(help.out().contains("Example: cria compare"), help.out());
    }

    @Test
    void aQuantizedStoriesModelAgainstItsBase(@TempDir Path tmp) throws Exception {
        Path shared = SharedData.require();
        Path base = shared.resolve("models/stories260K.gguf");
        Path q8 = tmp.resolve("stories260K-Q8_0.gguf");
        CliRunner.Result q = CliRunner.run("quantize", base.toString(), q8.toString(), "Q8_0");
        assertEquals(0, q.code(), q.toString());
        Path text = shared.resolve("text/stories.txt");
        Path json = tmp.resolve("s.json");
        CliRunner.Result r = CliRunner.run("compare", base.toString(), q8.toString(), "-f", text.toString(), "-c", "128",
                "--no-speed", "--backend", "cpu", "-t", "1", "--json", json.toString(), "--tmp", tmp.toString());
        assertEquals(0, r.code(), r.toString());
        assertEquals(4, r.out().lines().count(), r.out());
        assertTrue(!r.out().contains("t/s"), "speed columns without speed tests: " + r.out());
        JsonNode root = Json.MAPPER.readTree(Files.readString(json));
        JsonNode b = model(root, "stories260K.gguf");
        JsonNode v = model(root, "stories260K-Q8_0.gguf");
        CliRunner.Result ppl = CliRunner.run("perplexity", "-m", base.toString(), "-f", text.toString(), "-c", "128", "--backend", "cpu", "-t", "1");
        assertEquals(PerplexityTest.ppl(ppl.out()), b.path("ppl").asDouble(), 5e-5);
        // 8-bit weights barely move a trained model's distributions (llama.cpp measures about 1e-3 on a longer text)
        double kld = v.path("kld_mean").asDouble();
        assertTrue(kld > 1e-5 && kld < 5e-3, "mean KLD of Q8_0: " + kld);
        assertTrue(v.path("same_top").asDouble() > 0.95 && v.path("same_top").asDouble() < 1, v.toString());
        assertTrue(Math.abs(v.path("ppl_ratio").asDouble() - 1) < 0.01, v.toString());
        assertEquals("Q8_0", v.path("type").asText());
        assertTrue(v.path("size_bytes").asLong() < b.path("size_bytes").asLong() / 2, v.toString());
    }
}
