// `cria finetune` on a model and data the test makes itself: the adapter file, its effect at inference, kill -9 and --resume, one-line errors.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CliRunner;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FinetuneCommandTest {
    @TempDir
    static Path tmp;
    static Path base;
    static Path data;
    static Path text;

    /** A tiny model trained on the project's stories, and prompt/completion examples cut from more stories. */
    @BeforeAll
    static void modelAndData() throws Exception {
        Path stories = tmp.resolve("stories.txt");
        CliRunner.Result r = CliRunner.run("stories", "-o", stories.toString(), "--bytes", "120000", "--seed", "5");
        assertEquals(0, r.code(), r.toString());
        base = tmp.resolve("base.gguf");
        r = CliRunner.run("train", "--data", stories.toString(), "--vocab-size", "300", "--dim", "32", "--layers", "2", "--heads", "4",
                "--kv-heads", "2", "--ffn", "48", "--ctx", "64", "--batch", "4", "--steps", "20", "--lr", "3e-3", "--eval-every", "0",
                "--threads", "2", "--cache-dir", tmp.resolve("cache").toString(), "-o", base.toString());
        assertEquals(0, r.code(), r.toString());
        List<String> lines = Files.readAllLines(stories, StandardCharsets.UTF_8);
        ObjectMapper json = new ObjectMapper();
        List<String> out = new ArrayList<>();
        for (String line : lines.subList(0, Math.min(lines.size(), 120))) {
            String[] words = line.trim().split(" ");
            if (words.length < 8) {
                continue;
            }
            int cut = words.length / 2;
            ObjectNode o = json.createObjectNode();
            o.put("prompt", String.join(" ", java.util.Arrays.copyOfRange(words, 0, cut)));
            o.put("completion", " " + String.join(" ", java.util.Arrays.copyOfRange(words, cut, Math.min(words.length, cut + 12))));
            out.add(json.writeValueAsString(o));
        }
        data = tmp.resolve("pc.jsonl");
        Files.write(data, out, StandardCharsets.UTF_8);
        text = tmp.resolve("text.txt");
        Files.writeString(text, String.join("\n", lines.subList(lines.size() - 40, lines.size())), StandardCharsets.UTF_8);
    }

    static String[] finetune(String... more) {
        String[] fixed = {"finetune", "-m", base.toString(), "--data", data.toString(), "--rank", "4", "--ctx", "48", "--batch", "4",
            "--lr", "5e-3", "--eval-every", "4", "--threads", "2"};
        String[] all = new String[fixed.length + more.length];
        System.arraycopy(fixed, 0, all, 0, fixed.length);
        System.arraycopy(more, 0, all, fixed.length, more.length);
        return all;
    }

    /** Runs a cria command that reports perplexity and returns it ("PPL = ..."). */
    static double ppl(String... args) {
        CliRunner.Result r = CliRunner.run(args);
        assertEquals(0, r.code(), r.toString());
        Matcher m = Pattern.compile("PPL = ([0-9.]+)").matcher(r.out() + r.err());
        assertTrue(m.find(), r.toString());
        return Double.parseDouble(m.group(1));
    }

    @Test
    void writesALlamaCppAdapterThatChangesTheModelAndAnInitialOneThatDoesNot() throws Exception {
        Path adapter = tmp.resolve("a.gguf");
        Path log = tmp.resolve("a.jsonl");
        Path png = tmp.resolve("a.png");
        CliRunner.Result r = CliRunner.run(finetune("--steps", "8", "-o", adapter.toString(), "--log", log.toString(), "--png", png.toString(), "--alpha", "8"));
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("step 8/8") && r.err().contains("validation loss"), r.err());
        assertEquals(8 + 2, Files.readAllLines(log).size(), "a line per step and per evaluation");
        assertTrue(Files.size(png) > 1000, "a chart");
        try (GgufFile f = GgufFile.open(adapter); GgufFile b = GgufFile.open(base)) {
            assertEquals("adapter", f.metadata().string("general.type").orElseThrow());
            assertEquals("lora", f.metadata().string("adapter.type").orElseThrow());
            assertEquals("llama", f.metadata().string("general.architecture").orElseThrow());
            assertEquals(8.0, ((Number) f.metadata().asMap().get("adapter.lora.alpha").value()).doubleValue(), 0.0);
            assertEquals(2 * 7 * 2, f.tensors().size(), "A and B on 7 products of 2 layers");
            for (String name : new String[] {"blk.0.attn_q.weight", "blk.1.ffn_down.weight", "blk.1.attn_k.weight"}) {
                GgufTensorInfo w = b.tensor(name);
                GgufTensorInfo a = f.tensor(name + ".lora_a");
                GgufTensorInfo bb = f.tensor(name + ".lora_b");
                assertEquals(w.shape()[0], a.shape()[0], name + ": lora_a ne[0] = the product's inputs");
                assertEquals(4, a.shape()[1], "lora_a ne[1] = rank");
                assertEquals(4, bb.shape()[0], "lora_b ne[0] = rank");
                assertEquals(w.shape()[1], bb.shape()[1], name + ": lora_b ne[1] = the product's outputs");
            }
        }
        double plain = ppl("perplexity", "-m", base.toString(), "-f", text.toString(), "-c", "32");
        double tuned = ppl("perplexity", "-m", base.toString(), "--lora", adapter.toString(), "-f", text.toString(), "-c", "32");
        assertNotEquals(plain, tuned, "the adapter changes the model");
        Path initial = tmp.resolve("init.gguf");
        r = CliRunner.run(finetune("-o", initial.toString(), "--steps", "0"));
        assertEquals(0, r.code(), r.toString());
        double same = ppl("perplexity", "-m", base.toString(), "--lora", initial.toString(), "-f", text.toString(), "-c", "32");
        assertEquals(plain, same, 0.0, "B = 0: the initial adapter leaves the model as it was");
    }

    /** A run killed with SIGKILL after a checkpoint and resumed logs the same losses as a run never interrupted. */
    @Test
    void killDashNineThenResumeGivesTheSameLossLines() throws Exception {
        Path full = tmp.resolve("full.jsonl");
        String[] opts = {"--steps", "14", "--save-every", "1", "--lora-dropout", "0.1", "--augment", "0.2", "--pack"};
        CliRunner.Result r = CliRunner.run(concat(finetune(opts), "-o", tmp.resolve("full.gguf").toString(), "--log", full.toString(),
                "--checkpoint", tmp.resolve("ckFull").toString()));
        assertEquals(0, r.code(), r.toString());

        Path part = tmp.resolve("part.jsonl");
        Path ck = tmp.resolve("ckPart");
        String[] args = concat(finetune(opts), "-o", tmp.resolve("part.gguf").toString(), "--log", part.toString(), "--checkpoint", ck.toString());
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"),
                "-Dcria.native.dir=" + System.getProperty("cria.native.dir", ""), "cria.cli.Main"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("killed.txt").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (System.nanoTime() < deadline && p.isAlive() && !(Files.exists(part) && Files.readString(part).contains("\"step\":6,"))) {
            Thread.sleep(20);
        }
        assertTrue(p.isAlive(), "the run was still going when killed: " + Files.readString(tmp.resolve("killed.txt")));
        p.destroyForcibly(); // SIGKILL: no shutdown hook, no flush
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertNotEquals(0, p.exitValue());
        r = CliRunner.run(concat(args, "--resume"));
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("resuming after step"), r.err());
        assertEquals(losses(full), losses(part), "the same loss lines as the run never interrupted");
    }

    private static List<String> losses(Path log) throws Exception {
        ObjectMapper json = new ObjectMapper();
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
            var n = json.readTree(line);
            out.add(n.path("step").asInt() + " " + (n.has("loss") ? "loss " + n.path("loss").asDouble() : "val " + n.path("val_loss").asDouble()));
        }
        return out;
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = new String[a.length + b.length];
        System.arraycopy(a, 0, all, 0, a.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    @Test
    void badInputGetsOneLine() throws Exception {
        Path bad = tmp.resolve("bad.jsonl");
        Files.writeString(bad, "{\"text\": \"a fine line\"}\n{\"prompt\": 3}\n");
        String out = tmp.resolve("x.gguf").toString();
        String[][] cases = {
            {"finetune", "-m", base.toString(), "--data", bad.toString(), "-o", out},
            {"finetune", "-m", base.toString(), "--data", data.toString(), "--rank", "0", "-o", out},
            {"finetune", "-m", base.toString(), "--data", data.toString(), "--targets", "q,zz", "-o", out},
            {"finetune", "-m", base.toString(), "--data", data.toString(), "--resume", "-o", out},
            {"finetune", "-m", tmp.resolve("missing.gguf").toString(), "--data", data.toString(), "-o", out},
            {"finetune", "-m", base.toString(), "--data", data.toString(), "--lora-dropout", "1", "-o", out},
        };
        String[] expect = {"bad.jsonl:2", "--rank 0", "unknown target 'zz'", "--resume needs --checkpoint", "missing.gguf", "--lora-dropout"};
        for (int i = 0; i < cases.length; i++) {
            CliRunner.Result r = CliRunner.run(cases[i]);
            assertEquals(1, r.code(), r.toString());
            String err = r.err().strip();
            assertTrue(err.contains(expect[i]), "case " + i + ": " + err);
            assertEquals(1, err.lines().count(), "one line: " + err);
            assertTrue(!err.contains("Exception"), err);
        }
        assertTrue(new File(out).exists() == false, "nothing written");
    }
}
