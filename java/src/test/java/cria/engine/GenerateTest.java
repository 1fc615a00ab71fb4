// Generation end to end: llama2.c's golden text, seeds, stop strings, limits, prefix reuse.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.SharedData;
import cria.TestModels;
import cria.sample.SamplerParams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class GenerateTest {
    @TempDir
    static Path tmp;

    static Path tiny() {
        Path p = tmp.resolve("tiny.gguf");
        if (!Files.exists(p)) {
            TestModels.tinyLlama(p, 7);
        }
        return p;
    }

    static String run(Path model, String backend, String prompt, GenerateOptions o) {
        try (Model m = Model.load(model, ModelOptions.defaults().withBackend(backend).withThreads(2));
             Session s = m.newSession(SessionOptions.defaults())) {
            StringBuilder streamed = new StringBuilder();
            Generation g = s.generate(prompt, o, (id, t) -> {
                streamed.append(t);
                return true;
            });
            assertEquals(g.text(), streamed.toString(), "the streamed pieces add up to the text");
            return g.text();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"ref", "cpu"})
    void storiesGreedyMatchesLlama2cGolden(String backend) throws Exception {
        Path model = SharedData.require("models/stories260K.gguf");
        String golden = Files.readString(SharedData.require("golden/stories260K-greedy-200.txt")).strip();
        // llama2.c's `-n 200` prints 200 tokens after BOS (one per forward step), so 200 here.
        String text = run(model, backend, "", GenerateOptions.defaults().withMaxTokens(200).withSampler(SamplerParams.greedy()));
        assertEquals(golden, text.strip());
    }

    @Test
    void sameSeedSameTextOtherSeedOtherText() {
        GenerateOptions o = GenerateOptions.defaults().withMaxTokens(40).withSampler(SamplerParams.defaults().withTemperature(1.5f).withSeed(11));
        String a = run(tiny(), "cpu", "ab", o);
        String b = run(tiny(), "cpu", "ab", o);
        String c = run(tiny(), "cpu", "ab", o.withSampler(o.sampler().withSeed(12)));
        assertEquals(a, b);
        assertNotEquals(a, c);
    }

    @Test
    void refAndCpuGenerateTheSameGreedyText() {
        GenerateOptions o = GenerateOptions.defaults().withMaxTokens(30).withSampler(SamplerParams.greedy()).withIgnoreEos(true);
        assertEquals(run(tiny(), "ref", "abc", o), run(tiny(), "cpu", "abc", o));
    }

    @Test
    void stopStringsCutTheText() {
        GenerateOptions o = GenerateOptions.defaults().withMaxTokens(60).withSampler(SamplerParams.greedy()).withIgnoreEos(true);
        String full = run(tiny(), "cpu", "abc", o);
        assertTrue(full.length() > 6, full);
        String stop = full.substring(3, 5);
        String cut = run(tiny(), "cpu", "abc", o.withStop(List.of(stop)));
        assertEquals(full.substring(0, full.indexOf(stop)), cut);
    }

    @Test
    void tokenLimitContextLimitAndPrefixReuse() {
        try (Model m = Model.load(tiny(), ModelOptions.defaults().withBackend("cpu"));
             Session s = m.newSession(SessionOptions.defaults().withContextLength(24))) {
            GenerateOptions o = GenerateOptions.defaults().withMaxTokens(5).withSampler(SamplerParams.greedy()).withIgnoreEos(true);
            Generation g = s.generate("ab", o, (id, t) -> true);
            assertEquals(5, g.tokens().length);
            assertEquals(Generation.FinishReason.LENGTH, g.finishReason());
            int[] seqTokens = s.tokens();
            // continuing runs into the end of the 24-position context and stops there
            Generation more = s.generate(new int[0], o.withMaxTokens(100), (id, t) -> true);
            assertEquals(Generation.FinishReason.LENGTH, more.finishReason());
            assertTrue(s.position() <= 24);
            // the same prefix again: only what differs is evaluated, and the result equals a fresh run
            Generation again = s.generateAfter(seqTokens, o, (id, t) -> true);
            assertTrue(again.promptTokens() < seqTokens.length, "reused " + (seqTokens.length - again.promptTokens()) + " tokens");
            s.reset();
            Generation fresh = s.generateAfter(seqTokens, o, (id, t) -> true);
            assertArrayEquals(fresh.tokens(), again.tokens());
            assertEquals(seqTokens.length, fresh.promptTokens());
        }
    }

    @Test
    void sessionsOnOneModelMayRunOnDifferentThreads() throws Exception {
        GenerateOptions o = GenerateOptions.defaults().withMaxTokens(40).withSampler(SamplerParams.greedy()).withIgnoreEos(true);
        try (Model m = Model.load(tiny(), ModelOptions.defaults().withBackend("cpu").withThreads(2))) {
            String[] prompts = {"ab", "abc", "cab", "bca"};
            String[] alone = new String[prompts.length];
            for (int i = 0; i < prompts.length; i++) {
                try (Session s = m.newSession(SessionOptions.defaults())) {
                    alone[i] = s.generate(prompts[i], o, (id, t) -> true).text();
                }
            }
            var pool = java.util.concurrent.Executors.newFixedThreadPool(prompts.length);
            try {
                java.util.List<java.util.concurrent.Future<String>> fs = new java.util.ArrayList<>();
                for (String p : prompts) {
                    fs.add(pool.submit(() -> {
                        try (Session s = m.newSession(SessionOptions.defaults())) {
                            return s.generate(p, o, (id, t) -> true).text();
                        }
                    }));
                }
                for (int i = 0; i < prompts.length; i++) {
                    assertEquals(alone[i], fs.get(i).get(), prompts[i]);
                }
            } finally {
                pool.shutdown();
            }
        }
    }

    @Test
    void cancellingFromTheListenerStops() {
        try (Model m = Model.load(tiny(), ModelOptions.defaults().withBackend("cpu"));
             Session s = m.newSession(SessionOptions.defaults())) {
            int[] calls = {0};
            StringBuilder streamed = new StringBuilder();
            Generation g = s.generate("a", GenerateOptions.defaults().withMaxTokens(50).withIgnoreEos(true),
                    (id, t) -> {
                        streamed.append(t);
                        return ++calls[0] < 3;
                    });
            assertEquals(Generation.FinishReason.CANCELLED, g.finishReason());
            assertEquals(3, g.tokens().length);
            assertEquals(3, calls[0], "the listener saw three tokens and the third said stop");
            assertEquals(streamed.toString(), g.text(), "the result holds exactly the text the listener was given");
        }
    }
}
