// Absurd option values and batch lines: overflowing counts, thread counts, bytes that are not text, trailing garbage, wide seeds.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import cria.CliRunner;
import cria.TestModels;
import java.io.IOException;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every value here once gave a stack trace, a hang or a silent wrong answer. Sizes from options
 * are computed in long and checked against the machine before anything is allocated; each
 * failure is one line, exit 1.
 */
class AbsurdValuesTest {
    @TempDir
    static Path tmp;

    static Path model;

    @BeforeAll
    static void model() {
        model = TestModels.tinyLlama(tmp.resolve("m.gguf"), 17);
    }

    /** Runs a command that must fail with one line on stderr containing {@code expect}. */
    private static String refused(String expect, String... args) {
        CliRunner.Result r = CliRunner.run(args);
        assertEquals(1, r.code(), String.join(" ", args) + ": " + r);
        List<String> lines = r.err().lines().toList();
        assertEquals(1, lines.size(), String.join(" ", args) + ": one line: " + r);
        assertFalse(lines.get(0).contains("Exception"), lines.get(0));
        assertTrue(lines.get(0).contains(expect), String.join(" ", args) + ": expected '" + expect + "' in: " + lines.get(0));
        return lines.get(0);
    }

    @Test
    void overflowingSizesAreOneLine() throws IOException {
        String m = model.toString();
        refused("--ctx", "generate", "-m", m, "-p", "a", "-n", "2", "--temp", "0", "--ctx", "2147483647");
        refused("-p", "bench", "-m", m, "-p", "2147483647", "-n", "0", "-r", "1");
        refused("--warmup", "bench", "-m", m, "--warmup", "-1");
        refused("--batch-size", "logits", "-m", m, "--ids", "1,2", "-o", tmp.resolve("l.f32").toString(), "-b", "2147483647", "--ctx", "2147483647");
        Path in = tmp.resolve("one.jsonl");
        Files.writeString(in, "{\"prompt\": \"a\", \"max_tokens\": 2}\n");
        Path out = tmp.resolve("out.jsonl");
        refused("--parallel", "batch", "-m", m, "--in", in.toString(), "--out", out.toString(), "--force", "--parallel", "1048576");
        refused("--cache-tokens", "batch", "-m", m, "--in", in.toString(), "--out", out.toString(), "--force",
                "--cache-tokens", "2147483647", "--ctx", "64");
        refused("--parallel", "batch", "-m", m, "--in", in.toString(), "--out", out.toString(), "--force",
                "--parallel", "4097");
    }

    @Test
    void perplexityWindowsTooShortToScoreAreRefused() throws IOException {
        Path text = tmp.resolve("t.txt");
        Files.writeString(text, "abc def ghi jkl ".repeat(50));
        for (String c : new String[] {"1", "2"}) {
            refused("-c", "perplexity", "-m", model.toString(), "-f", text.toString(), "-c", c);
        }
        CliRunner.Result ok = CliRunner.run("perplexity", "-m", model.toString(), "-f", text.toString(), "-c", "3");
        assertEquals(0, ok.code(), ok.toString());
        assertFalse(ok.out().contains("NaN"), ok.out());
    }

    @Test
    void moreThreadsThanCoresRunOnEveryCoreWithANote() {
        int cores = Runtime.getRuntime().availableProcessors();
        for (String t : new String[] {"65", "1000"}) {
            CliRunner.Result r = CliRunner.run("generate", "-m", model.toString(), "-p", "a", "-n", "3", "--temp", "0", "-t", t);
            assertEquals(0, r.code(), r.toString());
            if (Integer.parseInt(t) > cores) {
                assertTrue(r.err().contains(t + " threads requested but " + cores + " cores are available; using " + cores), r.err());
            }
        }
        refused("thread", "generate", "-m", model.toString(), "-p", "a", "-t", "-3");
    }

    @Test
    void eachBadBatchLineIsAnErrorLineOfItsOwn() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        String[] lines = {
            "{\"id\": 1, \"prompt\": \"abc\", \"max_tokens\": 4, \"temperature\": 0}",
            "{\"id\": 2, \"prompt\": \"abc\"} trailing garbage",
            "{\"id\": 3, \"prompt\": \"abc\"}{\"id\": 33}",
            null, // invalid UTF-8
            "{\"id\": 5, \"prompt\": \"abc\", \"seed\": 18446744073709551616}",
            "{\"id\": 6, \"prompt\": \"abc\", \"seed\": -9223372036854775809}",
            "{\"id\": 7, \"prompt\": \"abc\", \"max_tokens\": 4, \"seed\": 18446744073709551615, \"temperature\": 0.8}",
            "{\"id\": 8, \"prompt\": \"abc\", \"max_tokens\": 1, \"max_tokens\": 2}",
            "{\"id\": 9, \"prompt\": \"abc\", \"temperature\": 1e400}",
            "{\"id\": 10, \"prompt\": \"abc\", \"max_tokens\": 4294967296}",
            "{\"id\": 11, \"prompt\": \"abc\", \"frequency_penalty\": 1e30}",
            "{\"id\": 12, \"prompt\": \"abc\", \"max_tokens\": 4, \"temperature\": 0}",
        };
        for (String l : lines) {
            if (l == null) {
                b.write("{\"id\": 4, \"prompt\": \"ab".getBytes(StandardCharsets.UTF_8));
                b.write(new byte[] {(byte) 0xff, (byte) 0xc3, (byte) 0x28});
                b.write("\"}".getBytes(StandardCharsets.UTF_8));
            } else {
                b.write(l.getBytes(StandardCharsets.UTF_8));
            }
            b.write('\n');
        }
        Path in = tmp.resolve("bad.jsonl");
        Files.write(in, b.toByteArray());
        Path out = tmp.resolve("bad.out.jsonl");
        CliRunner.Result r = CliRunner.run("batch", "-m", model.toString(), "--in", in.toString(), "--out", out.toString(), "--force", "--ctx", "64");
        assertEquals(0, r.code(), r.toString());
        List<JsonNode> results = new ArrayList<>();
        for (String l : Files.readAllLines(out)) {
            results.add(Json.MAPPER.readTree(l));
        }
        assertEquals(lines.length, results.size());
        boolean[] ok = {true, false, false, false, false, false, true, false, false, false, false, true};
        for (int i = 0; i < lines.length; i++) {
            JsonNode n = results.get(i);
            assertEquals(ok[i], !n.path("finish_reason").asText().equals("error"), "line " + (i + 1) + ": " + n);
        }
        assertTrue(results.get(3).path("error").asText().contains("line 4") && results.get(3).path("error").asText().contains("UTF-8"),
                results.get(3).toString());
        assertTrue(results.get(4).path("error").asText().contains("64 bits"), results.get(4).toString());
        assertEquals(results.get(0).path("text"), results.get(11).path("text"), "the same prompt and settings give the same text");
    }
}
