// `cria train` and `cria stories` run in-process on text the project makes itself: a model that loads and agrees with cria perplexity, logs, charts, checkpoints, one-line errors.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainCommandTest {
    @TempDir
    static Path tmp;
    static Path stories;

    @BeforeAll
    static void corpus() {
        stories = tmp.resolve("stories.txt");
        CliRunner.Result r = CliRunner.run("stories", "-o", stories.toString(), "--bytes", "150000", "--seed", "3");
        assertEquals(0, r.code(), r.toString());
    }

    static String[] tiny(String... more) {
        String[] base = {"train", "--data", stories.toString(), "--vocab-size", "300", "--dim", "16", "--layers", "2", "--heads", "2",
            "--kv-heads", "1", "--ffn", "24", "--ctx", "32", "--batch", "4", "--steps", "12", "--lr", "3e-3", "--warmup", "2",
            "--eval-every", "6", "--eval-windows", "4", "--threads", "2", "--cache-dir", tmp.resolve("cache").toString()};
        String[] all = new String[base.length + more.length];
        System.arraycopy(base, 0, all, 0, base.length);
        System.arraycopy(more, 0, all, base.length, more.length);
        return all;
    }

    private static double number(String text, String regex) {
        Matcher m = Pattern.compile(regex).matcher(text);
        assertTrue(m.find(), "no match for " + regex + " in:\n" + text);
        return Double.parseDouble(m.group(1));
    }

    @Test
    void trainsAModelThatCriaRunsAndMeasuresAsTheTrainerDid() throws Exception {
        Path model = tmp.resolve("m.gguf");
        Path log = tmp.resolve("m.jsonl");
        Path png = tmp.resolve("m.png");
        CliRunner.Result r = CliRunner.run(tiny("-o", model.toString(), "--log", log.toString(), "--png", png.toString(),
                "--checkpoint", tmp.resolve("ck").toString(), "--save-every", "4"));
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("step 12/12"), r.err());
        double trainerPpl = number(r.out(), "count\\): ([0-9.]+)");
        List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        assertEquals(12 + 2, lines.size(), "a line per step and per evaluation: " + lines);
        byte[] head = Files.readAllBytes(png);
        assertTrue(head.length > 1000 && head[1] == 'P' && head[2] == 'N' && head[3] == 'G', "a PNG chart");
        assertTrue(Files.exists(tmp.resolve("ck").resolve("checkpoint.bin")), "a checkpoint");

        CliRunner.Result p = CliRunner.run("perplexity", "-m", model.toString(), "-f", model + ".val.txt", "-c", "32");
        assertEquals(0, p.code(), p.toString());
        double criaPpl = number(p.out() + p.err(), "Final estimate: PPL = ([0-9.]+)");
        assertEquals(trainerPpl, criaPpl, 1e-3 * criaPpl, "the trainer's perplexity is cria perplexity's");

        CliRunner.Result info = CliRunner.run("info", model.toString());
        assertTrue(info.out().contains("trained from scratch by cria train"), info.out());
        CliRunner.Result g = CliRunner.run("generate", "-m", model.toString(), "-p", "once upon a time", "-n", "8", "--seed", "1");
        assertEquals(0, g.code(), g.toString());
    }

    @Test
    void theSameSeedGivesTheSameLossesAndResumingAFinishedRunTrainsNothing() {
        Path ck = tmp.resolve("ck2");
        CliRunner.Result a = CliRunner.run(tiny("-o", tmp.resolve("a.gguf").toString(), "--print-every", "1", "--checkpoint", ck.toString()));
        CliRunner.Result b = CliRunner.run(tiny("-o", tmp.resolve("b.gguf").toString(), "--print-every", "1"));
        assertEquals(0, a.code(), a.toString());
        assertEquals(losses(a.err()), losses(b.err()), "seeded: the same losses");
        CliRunner.Result c = CliRunner.run(tiny("-o", tmp.resolve("c.gguf").toString(), "--checkpoint", ck.toString(), "--resume"));
        assertEquals(0, c.code(), c.toString());
        assertTrue(c.err().contains("resuming after step 12"), c.err());
    }

    private static List<String> losses(String err) {
        return err.lines().filter(l -> l.startsWith("step ")).map(l -> l.replaceAll("\\s+[0-9.,kKM]+ tok/s.*", "")).toList();
    }

    @Test
    void badOptionsAreOneLineErrors() {
        String out = tmp.resolve("x.gguf").toString();
        String[][] cases = {
            tiny("-o", out, "--schedule", "sawtooth"),
            tiny("-o", out, "--resume"),
            tiny("-o", out, "--freeze", "nothing_matches_this"),
            tiny("-o", out, "--type", "Q9_9"),
            tiny("-o", out, "--clip", "-1"),
            tiny("-o", out, "--dropout", "1.5"),
            {"train", "--data", tmp.resolve("missing.txt").toString(), "-o", out},
            {"train", "--data", stories.toString(), "--dim", "16", "--heads", "3", "-o", out},
            tiny("-o", out, "--tokens-per-step", "3"),
        };
        for (String[] args : cases) {
            CliRunner.Result r = CliRunner.run(args);
            assertEquals(1, r.code(), String.join(" ", args) + "\n" + r);
            assertEquals(1, r.err().strip().lines().filter(l -> l.startsWith("cria: ") || l.startsWith("cria train: ") && l.contains("--help"))
                    .count(), r.err());
            assertTrue(!r.err().contains("\tat "), "no stack trace: " + r.err());
        }
    }
}
