// `cria batch` end to end: results equal `cria generate`, bad lines become error lines, --resume completes a torn file.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import cria.CliRunner;
import cria.TestModels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BatchCommandTest {
    @TempDir
    Path tmp;

    static List<JsonNode> read(Path p) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        for (String l : Files.readAllLines(p)) {
            out.add(Json.MAPPER.readTree(l));
        }
        return out;
    }

    Path input(int n) throws Exception {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String settings = i % 2 == 0 ? "\"temperature\": 0" : "\"temperature\": 0.9, \"seed\": " + (7 + i);
            lines.add("{\"id\": \"p" + i + "\", \"prompt\": \"" + "abc".repeat(1 + i % 4) + "\", \"max_tokens\": " + (4 + i % 9) + ", " + settings + "}");
        }
        Path in = tmp.resolve("in.jsonl");
        Files.write(in, lines);
        return in;
    }

    @Test
    void resultsEqualGenerateAndFollowInputOrder() throws Exception {
        Path model = TestModels.tinyLlama(tmp.resolve("m.gguf"), 31);
        Path in = input(12);
        Path out = tmp.resolve("out.jsonl");
        CliRunner.Result r = CliRunner.run("batch", "-m", model.toString(), "--in", in.toString(), "--out", out.toString(),
                "--parallel", "5", "--backend", "cpu");
        assertEquals(0, r.code(), r.toString());
        List<JsonNode> res = read(out);
        assertEquals(12, res.size());
        for (int i = 0; i < 12; i++) {
            JsonNode o = res.get(i);
            assertEquals("p" + i, o.get("id").asText());
            List<String> gen = new ArrayList<>(List.of("generate", "-m", model.toString(), "-p", "abc".repeat(1 + i % 4),
                    "-n", String.valueOf(4 + i % 9), "--backend", "cpu"));
            if (i % 2 == 0) {
                gen.addAll(List.of("--temp", "0"));
            } else {
                gen.addAll(List.of("--temp", "0.9", "--seed", String.valueOf(7 + i)));
            }
            CliRunner.Result g = CliRunner.run(gen.toArray(String[]::new));
            assertEquals(g.out(), o.get("text").asText(), "prompt " + i);
            assertTrue(List.of("stop", "length").contains(o.get("finish_reason").asText()));
        }
    }

    @Test
    void badLinesGetErrorResultsAndTheRestRuns() throws Exception {
        Path model = TestModels.tinyLlama(tmp.resolve("m.gguf"), 32);
        Path in = tmp.resolve("in.jsonl");
        Files.writeString(in, String.join("\n",
                "{\"id\": 1, \"prompt\": \"ab\", \"max_tokens\": 3}",
                "{\"id\": 2, \"prompt\": ",
                "{\"id\": 3, \"prompt\": \"ab\", \"colour\": \"red\"}",
                "{\"id\": 4, \"prompt\": \"" + "abc ".repeat(200) + "\"}",
                "{\"id\": 5, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 3}",
                "{\"id\": 6, \"prompt\": \"ab\", \"top_p\": 7}",
                "{\"id\": 7, \"prompt\": \"cd\", \"max_tokens\": 2, \"stop\": [\"x\", \"y\"]}") + "\n");
        Path out = tmp.resolve("out.jsonl");
        CliRunner.Result r = CliRunner.run("batch", "-m", model.toString(), "--in", in.toString(), "--out", out.toString(),
                "--ctx", "64", "--backend", "cpu");
        assertEquals(0, r.code(), r.toString());
        List<JsonNode> res = read(out);
        assertEquals(7, res.size());
        Map<String, JsonNode> byKey = new HashMap<>();
        for (JsonNode n : res) {
            byKey.put(n.get("id").isNull() ? "line" + n.get("line").asInt() : n.get("id").asText(), n);
        }
        assertTrue(List.of("stop", "length").contains(byKey.get("1").get("finish_reason").asText()));
        assertTrue(byKey.get("1").get("tokens").asInt() <= 3);
        assertTrue(byKey.get("line2").get("error").asText().contains("not valid JSON"));
        assertTrue(byKey.get("3").get("error").asText().contains("unknown field 'colour'"));
        assertTrue(byKey.get("4").get("error").asText().contains("does not fit the context"));
        assertEquals("error", byKey.get("6").get("finish_reason").asText());
        assertTrue(byKey.get("6").get("error").asText().contains("top-p"));
        assertTrue(List.of("stop", "length").contains(byKey.get("5").get("finish_reason").asText()));
        assertTrue(byKey.get("7").get("tokens").asInt() <= 2, byKey.get("7").toString());
    }

    @Test
    void resumeCompletesATornFileWithoutDuplicates() throws Exception {
        Path model = TestModels.tinyLlama(tmp.resolve("m.gguf"), 33);
        Path in = input(20);
        Path full = tmp.resolve("full.jsonl");
        assertEquals(0, CliRunner.run("batch", "-m", model.toString(), "--in", in.toString(), "--out", full.toString(), "--parallel", "3").code());
        // an interrupted run: 8 whole lines and half of the ninth
        List<String> lines = Files.readAllLines(full);
        Path part = tmp.resolve("part.jsonl");
        String torn = String.join("\n", lines.subList(0, 8)) + "\n" + lines.get(8).substring(0, lines.get(8).length() / 2);
        Files.writeString(part, torn, StandardCharsets.UTF_8);
        CliRunner.Result again = CliRunner.run("batch", "-m", model.toString(), "--in", in.toString(), "--out", part.toString());
        assertEquals(1, again.code(), "an existing output needs --resume or --force");
        CliRunner.Result r = CliRunner.run("batch", "-m", model.toString(), "--in", in.toString(), "--out", part.toString(),
                "--resume", "--parallel", "4");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("8 results already"), r.err());
        List<JsonNode> a = read(full);
        List<JsonNode> b = read(part);
        assertEquals(20, b.size());
        for (int i = 0; i < 20; i++) {
            assertEquals(a.get(i).get("id"), b.get(i).get("id"));
            assertEquals(a.get(i).get("text"), b.get(i).get("text"));
        }
        // nothing left to do: a second resume adds nothing
        assertEquals(0, CliRunner.run("batch", "-m", model.toString(), "--in", in.toString(), "--out", part.toString(), "--resume").code());
        assertEquals(20, read(part).size());
    }
}
