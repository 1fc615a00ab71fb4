// Every model in ../shared/models, on every host backend: logits within the tolerance of llama.cpp's.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.SharedData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

class ReferenceLogitsTest {

    static List<String> models() throws Exception {
        Path dir = SharedData.dir();
        if (dir == null) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir.resolve("models"))) {
            s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".gguf")).sorted()
                    .forEach(n -> out.add(n.substring(0, n.length() - 5)));
        }
        return out;
    }

    @TestFactory
    Stream<DynamicTest> logitsMatchLlamaCpp() throws Exception {
        SharedData.require();
        List<DynamicTest> tests = new ArrayList<>();
        for (String m : models()) {
            for (String backend : new String[] {"ref", "cpu"}) {
                tests.add(DynamicTest.dynamicTest(m + " on " + backend, () -> check(m, backend)));
            }
        }
        return cria.Cases.nonEmpty(tests, "models with llama.cpp logits in ../shared");
    }

    static void check(String m, String backend) throws Exception {
        Path dir = SharedData.require();
        ReferenceLogits ref = ReferenceLogits.read(dir.resolve("reference"), m);
        try (Model model = Model.load(dir.resolve("models/" + m + ".gguf"), ModelOptions.defaults().withBackend(backend).withThreads(2));
             Session s = model.newSession(SessionOptions.defaults().withAllLogits(true).withContextLength(64))) {
            double tol = ReferenceLogits.tolerance(m);
            int[] agree = {0};
            double[] worst = {0};
            s.evalAll(ref.promptIds(), (i, logits) -> {
                assertEquals(ref.logits()[i].length, logits.length);
                double e = ReferenceLogits.relRms(logits, ref.logits()[i]);
                worst[0] = Math.max(worst[0], e);
                if (ReferenceLogits.argmax(logits) == ReferenceLogits.argmax(ref.logits()[i])) {
                    agree[0]++;
                }
            });
            int n = ref.promptIds().length;
            System.out.printf("%-24s %-4s worst rel RMS %.2e (limit %.0e), argmax agrees %d/%d%n", m, backend, worst[0], tol, agree[0], n);
            assertTrue(worst[0] <= tol, m + " on " + backend + ": relative RMS error " + worst[0] + " > " + tol);
            double need = ReferenceLogits.isFloatModel(m) ? 1.0 : 0.85;
            assertTrue(agree[0] >= Math.ceil(need * n), m + " on " + backend + ": argmax agrees at " + agree[0] + "/" + n);
        }
    }
}
