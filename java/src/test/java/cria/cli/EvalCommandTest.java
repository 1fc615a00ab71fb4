// `cria eval` end to end: tables and JSON on stories260K and a model the test makes, the label scores agree with plain loss, exact match (with stop strings), one-line errors.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import cria.CliRunner;
import cria.GgufEdit;
import cria.SharedData;
import cria.TestModels;
import cria.engine.GenerateOptions;
import cria.engine.Generation;
import cria.engine.Model;
import cria.engine.ModelOptions;
import cria.engine.Session;
import cria.engine.SessionOptions;
import cria.gguf.GgufValue;
import cria.sample.SamplerParams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvalCommandTest {
    @TempDir
    Path dir;

    private Path write(String name, String text) throws Exception {
        Path p = dir.resolve(name);
        Files.writeString(p, text);
        return p;
    }

    private static JsonNode json(String s) throws Exception {
        return new ObjectMapper().readTree(s);
    }

    @Test
    void storiesModelTableAndJson() throws Exception {
        Path model = SharedData.require("models/stories260K.gguf");
        Path data = write("d.jsonl", """
                {"text": "Tom had a red ball. He played with it all day. He was very happy.", "label": "happy"}
                {"text": "Lily lost her doll in the park. She looked everywhere. She cried.", "label": "sad"}
                {"text": "The sun came out and the kids laughed and played.", "label": "happy"}

                {"prompt": "Tom had a red ball. He played with it all day.\\nLabel:", "completion": " happy"}
                {"text": "Once upon a time, there was a little girl named Lily."}
                """);
        CliRunner.Result r = CliRunner.run("eval", "-m", model.toString(), "--data", data.toString(), "--compare", model.toString(),
                "--threads", "2", "--json");
        assertEquals(0, r.code(), r.toString());
        JsonNode j = json(r.out());
        assertEquals(5, j.get("examples").asInt());
        assertEquals("[\"happy\",\"sad\"]", j.get("labels").toString());
        JsonNode m = j.get("models").get(0);
        JsonNode c = m.get("classification");
        assertEquals(3, c.get("count").asInt());
        assertTrue(m.get("mean_loss").asDouble() > 0 && m.get("perplexity").asDouble() > 1, m.toString());
        assertEquals(1, m.get("exact_match").get("count").asInt());
        // the columns are the same model: the same numbers, by file name (a path where two share it)
        assertEquals(m.get("mean_loss").asDouble(), j.get("models").get(1).get("mean_loss").asDouble(), 1e-9);
        assertEquals(model.toString(), m.get("name").asText());
        assertTrue(r.err().contains("eval "), "progress on stderr: " + r.err());

        // a label's score after its prompt is the loss of the same text as a prompt/completion line
        Path one = write("one.jsonl", "{\"text\": \"Tom had a red ball. He played with it all day.\", \"label\": \"happy\"}\n");
        Path pair = write("pair.jsonl", "{\"prompt\": \"Tom had a red ball. He played with it all day.\\nLabel:\", \"completion\": \" happy\"}\n");
        double viaLabel = json(CliRunner.run("eval", "-m", model.toString(), "--data", one.toString(), "--labels", "happy,sad", "--json").out())
                .get("models").get(0).get("mean_loss").asDouble();
        double viaPair = json(CliRunner.run("eval", "-m", model.toString(), "--data", pair.toString(), "--json").out())
                .get("models").get(0).get("mean_loss").asDouble();
        assertEquals(viaPair, viaLabel, 1e-4 * viaPair);

        // markdown: a row per metric, the confusion matrix; --limit scores the first lines only
        CliRunner.Result md = CliRunner.run("eval", "-m", model.toString(), "--data", data.toString(), "--limit", "2");
        assertEquals(0, md.code(), md.toString());
        assertTrue(md.out().contains("| examples | 2 |"), md.out());
        assertTrue(md.out().contains("| accuracy | "), md.out());
        assertTrue(md.out().contains("| precision sad | "), md.out());
        assertTrue(md.out().contains("| true \\ predicted | happy | sad |"), md.out());
        assertFalse(md.out().contains("exact match"), "no prompt/completion line among the first two: " + md.out());
    }

    @Test
    void aModelTheTestMakesMatchesItsOwnGreedyCompletion() throws Exception {
        Path tiny = TestModels.tinyLlama(dir.resolve("tiny.gguf"), 5);
        // the greedy continuation of a prompt; then a copy whose EOS is the token after k of them,
        // so that greedy generation stops right after the reference
        int[] ids;
        String prompt = "abc";
        int stopAt = 1;
        try (Model m = Model.load(tiny, ModelOptions.defaults().withBackend("cpu").withThreads(2));
             Session s = m.newSession(SessionOptions.defaults().withContextLength(64))) {
            Generation g = s.generate(prompt, GenerateOptions.defaults().withSampler(SamplerParams.greedy()).withMaxTokens(24), (t, x) -> true);
            ids = g.tokens();
            // the first token that did not come before, after some visible text
            while (stopAt < ids.length && (contains(Arrays.copyOf(ids, stopAt), ids[stopAt])
                    || m.tokenizer().decode(Arrays.copyOf(ids, stopAt), false).isBlank())) {
                stopAt++;
            }
        }
        assertTrue(stopAt < ids.length, "a greedy run with a fresh token to end on: " + Arrays.toString(ids));
        Path edited = dir.resolve("tiny-eos.gguf");
        GgufEdit.of(tiny).set("tokenizer.ggml.eos_token_id", GgufValue.ofU32(ids[stopAt])).write(edited);
        String reference;
        try (Model m = Model.load(edited, ModelOptions.defaults().withBackend("cpu").withThreads(2))) {
            reference = m.tokenizer().decode(Arrays.copyOf(ids, stopAt), false);
        }
        String line = new ObjectMapper().createObjectNode().put("prompt", prompt).put("completion", reference).toString();
        Path data = write("pc.jsonl", line + "\n" + line.replace("\"completion\":\"", "\"completion\":\"zz") + "\n");
        CliRunner.Result r = CliRunner.run("eval", "-m", edited.toString(), "--data", data.toString(), "--compare", tiny.toString(), "--threads", "2");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("| exact match | 50.0 % (1/2) | 0.0 % (0/2) |"), "the edited model stops after the reference: " + r.out());
        assertTrue(r.out().contains("| | tiny-eos.gguf | tiny.gguf |"), r.out());
    }

    @Test
    void storiesWritesALabelledTaskThatEvalReads() throws Exception {
        Path tiny = TestModels.tinyLlama(dir.resolve("tiny.gguf"), 2);
        Path out = dir.resolve("mood");
        CliRunner.Result w = CliRunner.run("stories", "--task", "mood", "--train", "30", "--val", "6", "--test", "12", "--seed", "7",
                "-o", out.toString());
        assertEquals(0, w.code(), w.toString());
        assertTrue(w.out().contains("test.jsonl: 12 examples") && w.out().contains("labels happy, sad, scared"), w.out());
        assertEquals(30, Files.readAllLines(out.resolve("train.jsonl")).size());
        CliRunner.Result e = CliRunner.run("eval", "-m", tiny.toString(), "--data", out.resolve("test.jsonl").toString(), "--json");
        assertEquals(0, e.code(), e.toString());
        JsonNode c = json(e.out()).get("models").get(0).get("classification");
        assertEquals(12, c.get("count").asInt());
        assertEquals("[4, 4, 4]", c.get("classes").findValues("support").toString());

        String[][] bad = {
            {"stories", "--task", "weather", "-o", dir.resolve("w").toString()},
            {"stories", "--task", "mood", "--bytes", "100", "-o", dir.resolve("b").toString()},
            {"stories", "--task", "mood", "--test", "0", "-o", dir.resolve("z").toString()},
            {"stories", "--task", "mood", "-o", tiny.toString()},
        };
        for (String[] args : bad) {
            CliRunner.Result r = CliRunner.run(args);
            assertEquals(1, r.code(), String.join(" ", args) + "\n" + r);
            assertEquals(1, r.err().strip().lines().count(), r.err());
        }
    }

    @Test
    void storiesWritesTheWhoTaskAndStopStringsEndTheGreedyAnswer() throws Exception {
        Path tiny = TestModels.tinyLlama(dir.resolve("tiny.gguf"), 5);
        Path out = dir.resolve("who");
        CliRunner.Result w = CliRunner.run("stories", "--task", "who", "--train", "20", "--val", "4", "--test", "6", "--seed", "7",
                "-o", out.toString());
        assertEquals(0, w.code(), w.toString());
        assertTrue(w.out().contains("test.jsonl: 6 examples") && w.out().contains("prompt/completion"), w.out());
        CliRunner.Result e = CliRunner.run("eval", "-m", tiny.toString(), "--data", out.resolve("test.jsonl").toString(), "--stop", "\n",
                "--threads", "2", "--json");
        assertEquals(0, e.code(), e.toString());
        JsonNode m = json(e.out()).get("models").get(0);
        assertEquals(6, m.get("exact_match").get("count").asInt());
        assertEquals(0, m.get("exact_match").get("matched").asInt(), "a random model does not know who the story is about");

        // the text before a stop string is what is compared: the greedy continuation up to a character it then writes
        String prompt = "abc";
        String text;
        try (Model mo = Model.load(tiny, ModelOptions.defaults().withBackend("cpu").withThreads(2));
             Session s = mo.newSession(SessionOptions.defaults().withContextLength(64))) {
            text = s.generate(prompt, GenerateOptions.defaults().withSampler(SamplerParams.greedy()).withMaxTokens(24), (t, x) -> true).text();
        }
        int at = 1;
        while (at < text.length() && (text.substring(0, at).isBlank() || text.substring(0, at).indexOf(text.charAt(at)) >= 0)) {
            at++;
        }
        assertTrue(at < text.length(), "a character that comes first after some text: " + text);
        String stop = text.substring(at, at + 1);
        String line = new ObjectMapper().createObjectNode().put("prompt", prompt).put("completion", text.substring(0, at)).toString();
        Path data = write("stop.jsonl", line + "\n");
        CliRunner.Result with = CliRunner.run("eval", "-m", tiny.toString(), "--data", data.toString(), "--stop", stop, "--threads", "2");
        assertTrue(with.out().contains("| exact match | 100.0 % (1/1) |"), "stopped before '" + stop + "' in " + text + ": " + with.out());
        CliRunner.Result without = CliRunner.run("eval", "-m", tiny.toString(), "--data", data.toString(), "--threads", "2");
        assertTrue(without.out().contains("| exact match | 0.0 % (0/1) |"), "ran on past '" + stop + "' in " + text + ": " + without.out());
        CliRunner.Result empty = CliRunner.run("eval", "-m", tiny.toString(), "--data", data.toString(), "--stop", "");
        assertEquals(1, empty.code(), empty.toString());
        assertEquals(1, empty.err().strip().lines().count(), empty.err());
    }

    private static boolean contains(int[] a, int x) {
        return Arrays.stream(a).anyMatch(v -> v == x);
    }

    @Test
    void expectedFailuresAreOneLine() throws Exception {
        Path tiny = TestModels.tinyLlama(dir.resolve("t.gguf"), 3);
        Path good = write("good.jsonl", "{\"text\": \"ab\", \"label\": \"x\"}\n{\"text\": \"cd\", \"label\": \"y\"}\n");
        Path garbage = write("garbage.gguf", "this is not a model");
        String[][] cases = {
            {"eval", "-m", tiny.toString(), "--data", dir.resolve("missing.jsonl").toString()},
            {"eval", "-m", tiny.toString(), "--data", write("empty.jsonl", "\n\n").toString()},
            {"eval", "-m", tiny.toString(), "--data", write("one.jsonl", "{\"text\": \"ab\", \"label\": \"x\"}\n").toString()},
            {"eval", "-m", tiny.toString(), "--data", write("bad.jsonl", "{\"text\": \"ab\"}\n{\"prompt\": \"a\"}\n").toString()},
            {"eval", "-m", tiny.toString(), "--data", good.toString(), "--labels", "x"},
            {"eval", "-m", garbage.toString(), "--data", good.toString()},
            {"eval", "-m", tiny.toString(), "--data", good.toString(), "--compare", dir.resolve("other.gguf").toString()},
            {"eval", "-m", tiny.toString(), "--data", good.toString(), "--limit", "-1"},
            {"eval", "-m", tiny.toString(), "--data", write("chat.jsonl",
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n").toString()},
        };
        String[] expect = {"missing.jsonl: no such file", "empty.jsonl: no examples", "every example has the label 'x'", "bad.jsonl:2: expected",
            "label 'y' is not one of the labels given", "garbage.gguf", "other.gguf: no such file", "--limit", "chat.jsonl:1: "};
        for (int i = 0; i < cases.length; i++) {
            CliRunner.Result r = CliRunner.run(cases[i]);
            assertEquals(1, r.code(), String.join(" ", cases[i]) + "\n" + r);
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
            assertTrue(r.err().startsWith("cria: ") && r.err().contains(expect[i]), expect[i] + " in: " + r.err());
            assertTrue(r.out().isEmpty(), r.out());
        }
    }
}
