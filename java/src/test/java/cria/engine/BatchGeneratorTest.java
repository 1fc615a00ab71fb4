// Batching changes speed, never text: every request of a batch equals the same request run alone.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.SharedData;
import cria.TestModels;
import cria.sample.SamplerParams;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BatchGeneratorTest {
    @TempDir
    static Path tmp;

    record Req(String prompt, GenerateOptions options) {}

    static List<Req> requests(int n) {
        List<Req> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            SamplerParams sp = i % 3 == 0 ? SamplerParams.greedy()
                    : SamplerParams.defaults().withTemperature(0.7f + 0.1f * (i % 5)).withSeed(100 + i).withTopK(i % 2 == 0 ? 0 : 20);
            List<String> stop = i % 4 == 1 ? List.of("ab") : List.of();
            GenerateOptions o = new GenerateOptions(5 + (i * 7) % 23, sp, stop, i % 5 == 2);
            String prompt = "abc".repeat(1 + i % 6) + " d" + i;
            out.add(new Req(prompt, o));
        }
        return out;
    }

    static Generation alone(Model m, Req r) {
        try (Session s = m.newSession(SessionOptions.defaults().withContextLength(128))) {
            return s.generate(r.prompt, r.options, (id, t) -> true);
        }
    }

    @Test
    void everyRequestMatchesItsSoloRunAtAnyParallelism() throws Exception {
        Path model = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 21);
        List<Req> reqs = requests(24);
        try (Model m = Model.load(model, ModelOptions.defaults().withBackend("cpu").withThreads(2))) {
            List<Generation> solo = new ArrayList<>();
            for (Req r : reqs) {
                solo.add(alone(m, r));
            }
            for (int parallel : new int[] {1, 4, 16}) {
                List<StringBuilder> streamed = new ArrayList<>();
                List<CompletableFuture<Generation>> fs = new ArrayList<>();
                try (BatchGenerator b = new BatchGenerator(m, new BatchGenerator.Options(parallel, 128, 16, 0, cria.backend.KvCache.Type.F16))) {
                    for (Req r : reqs) {
                        StringBuilder sb = new StringBuilder();
                        streamed.add(sb);
                        fs.add(b.submit(r.prompt, r.options, (id, t) -> {
                            sb.append(t);
                            return true;
                        }));
                    }
                }
                for (int i = 0; i < reqs.size(); i++) {
                    Generation g = fs.get(i).get();
                    assertArrayEquals(solo.get(i).tokens(), g.tokens(), "request " + i + " at parallel " + parallel);
                    assertEquals(solo.get(i).text(), g.text());
                    assertEquals(solo.get(i).finishReason(), g.finishReason());
                    assertEquals(g.text(), streamed.get(i).toString(), "each request streams to its own callback");
                }
            }
        }
    }

    @Test
    void storiesGreedyBatchEqualsGenerate() throws Exception {
        Path model = SharedData.require("models/stories260K.gguf");
        String[] prompts = {"Once upon a time", "The cat", "Lily and Tom went to the park. They", "One day,", ""};
        GenerateOptions o = GenerateOptions.defaults().withMaxTokens(48).withSampler(SamplerParams.greedy());
        try (Model m = Model.load(model, ModelOptions.defaults().withBackend("cpu"));
             BatchGenerator b = new BatchGenerator(m, new BatchGenerator.Options(3, 256, 32, 0, cria.backend.KvCache.Type.F16))) {
            List<CompletableFuture<Generation>> fs = new ArrayList<>();
            for (String p : prompts) {
                fs.add(b.submit(p, o, (id, t) -> true));
            }
            for (int i = 0; i < prompts.length; i++) {
                assertEquals(alone(m, new Req(prompts[i], o)).text(), fs.get(i).get().text(), prompts[i]);
            }
        }
    }

    @Test
    void promptsThatCanNeverFitFailAloneAndTheOthersGoOn() throws Exception {
        Path model = TestModels.tinyLlama(tmp.resolve("tiny2.gguf"), 22);
        try (Model m = Model.load(model, ModelOptions.defaults().withBackend("cpu"));
             BatchGenerator b = new BatchGenerator(m, new BatchGenerator.Options(2, 32, 8, 64, cria.backend.KvCache.Type.F16))) {
            GenerateOptions o = GenerateOptions.defaults().withMaxTokens(8).withSampler(SamplerParams.greedy());
            var ok1 = b.submit("ab", o, (id, t) -> true);
            var tooLong = b.submit("abc".repeat(40), o, (id, t) -> true);
            var empty = b.submit(new int[0], o, (id, t) -> true);
            var ok2 = b.submit("cd", o, (id, t) -> true);
            assertEquals(Generation.FinishReason.LENGTH, ok1.get().finishReason());
            assertEquals(8, ok2.get().tokens().length);
            ExecutionException e = assertThrows(ExecutionException.class, tooLong::get);
            assertTrue(e.getCause() instanceof CriaException && e.getCause().getMessage().contains("does not fit the context"), e.getCause().getMessage());
            assertThrows(ExecutionException.class, empty::get);
        }
    }
}
