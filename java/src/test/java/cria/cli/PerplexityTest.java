// `cria perplexity` on every shared model: within 0.05 % of llama.cpp for stories260K (F32, F16), 0.5 % for the others.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

class PerplexityTest {
    private static final Pattern FINAL = Pattern.compile("Final estimate: PPL = ([0-9.]+) \\+/- ([0-9.]+)");

    static double ppl(String text) {
        Matcher m = FINAL.matcher(text);
        assertTrue(m.find(), "no final estimate in: " + text);
        return Double.parseDouble(m.group(1));
    }

    @TestFactory
    Stream<DynamicTest> matchesLlamaCpp() throws Exception {
        Path shared = SharedData.require();
        List<DynamicTest> tests = new ArrayList<>();
        try (Stream<Path> s = Files.list(shared.resolve("models"))) {
            for (Path p : s.filter(x -> x.toString().endsWith(".gguf")).sorted().toList()) {
                String name = p.getFileName().toString().replace(".gguf", "");
                Path ref = shared.resolve("reference/" + name + ".ppl.txt");
                if (!Files.exists(ref)) {
                    continue;
                }
                tests.add(DynamicTest.dynamicTest(name, () -> {
                    double want = ppl(Files.readString(ref));
                    CliRunner.Result r = CliRunner.run("perplexity", "-m", p.toString(), "-f", shared.resolve("text/stories.txt").toString(),
                            "-c", "128", "-b", "128", "--backend", "cpu", "-t", "2");
                    assertEquals(0, r.code(), r.toString());
                    double got = ppl(r.out());
                    double tol = name.startsWith("stories260K") ? 0.0005 : 0.005;
                    System.out.printf("%-22s ppl %.4f  llama.cpp %.4f  diff %.4f %%%n", name, got, want, 100 * Math.abs(got / want - 1));
                    assertEquals(want, got, want * tol, name);
                }));
            }
        }
        return cria.Cases.nonEmpty(tests, "models with a llama.cpp perplexity in ../shared/reference");
    }

    @Test
    void tooShortATextIsAClearError(@TempDir Path tmp) throws Exception {
        Path model = cria.TestModels.tinyLlama(tmp.resolve("t.gguf"), 3);
        Path text = tmp.resolve("short.txt");
        Files.writeString(text, "abc abc");
        CliRunner.Result r = CliRunner.run("perplexity", "-m", model.toString(), "-f", text.toString(), "-c", "64");
        assertEquals(1, r.code(), r.toString());
        assertTrue(r.err().contains("at least 2 x 64"), r.err());
    }
}
