// cria bench --compare/--from: the ratio table and chart from llama-bench JSON and Cria's own JSON; --warmup.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.TinyModel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchCompareTest {
    @TempDir
    Path tmp;

    private Path json(String name, String body) throws Exception {
        return Files.writeString(tmp.resolve(name), body);
    }

    @Test
    void fromSetsEarlierRunsBesideThePeerWithoutMeasuring() throws Exception {
        Path model = TinyModel.write(tmp.resolve("tiny.gguf"), 1, true, 3);
        Path c1 = json("c1.json", "[{\"n_prompt\": 128, \"n_gen\": 0, \"avg_ts\": 100.0}, {\"n_prompt\": 0, \"n_gen\": 32, \"avg_ts\": 20.0}]");
        Path c2 = json("c2.json", "[{\"n_prompt\": 128, \"n_gen\": 0, \"avg_ts\": 140.0}]");
        Path l1 = json("l1.json", "[{\"n_prompt\": 128, \"n_gen\": 0, \"avg_ts\": 60.0}, {\"n_prompt\": 0, \"n_gen\": 32, \"avg_ts\": 25.0}]");
        Path png = tmp.resolve("chart.png");
        CliRunner.Result r = CliRunner.run("bench", "-m", model.toString(), "-t", "2", "--from", c1 + "," + c2, "--compare", l1.toString(),
                "--png", png.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("| pp128 | 120.00 | 60.00 | 2.00x |"), r.out());
        assertTrue(r.out().contains("| tg32 | 20.00 | 25.00 | 0.80x |"), r.out());
        assertTrue(Files.size(png) > 1000, "a PNG chart is written");
        byte[] head = Files.readAllBytes(png);
        assertEquals((byte) 0x89, head[0]);
        assertEquals('P', head[1]);
    }

    @Test
    void fromWithoutComparisonOrWithBadJsonIsOneLineError() throws Exception {
        Path model = TinyModel.write(tmp.resolve("tiny.gguf"), 1, true, 3);
        Path c1 = json("c1.json", "[{\"n_prompt\": 128, \"n_gen\": 0, \"avg_ts\": 100.0}]");
        CliRunner.Result r = CliRunner.run("bench", "-m", model.toString(), "--from", c1.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("--from needs --compare"), r.err());
        Path bad = json("bad.json", "{not json");
        r = CliRunner.run("bench", "-m", model.toString(), "--from", bad.toString(), "--compare", c1.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("bad.json") && r.err().strip().lines().count() == 1, r.err());
    }

    /**
     * --warmup SECONDS: untimed runs go on until that much time has passed, so even a model that
     * takes milliseconds per test keeps the command busy at least that long (one warm-up run of
     * this tiny model, the old behaviour, takes a small fraction of it).
     */
    @Test
    void warmupRunsForAtLeastTheSecondsAsked() throws Exception {
        Path model = cria.TestModels.tinyLlama(tmp.resolve("m.gguf"), 43);
        long t0 = System.nanoTime();
        CliRunner.Result r = CliRunner.run("bench", "-m", model.toString(), "-p", "0", "-n", "2", "-r", "1", "--warmup", "2");
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("tg2"), r.out());
        assertTrue(seconds >= 2, "--warmup 2 ended after " + seconds + " s");
    }
}
