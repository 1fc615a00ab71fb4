// Session and BatchGenerator run one loop: the same context checks, the same stop at the end of the context, the same errors.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.TestModels;
import cria.backend.KvCache;
import cria.sample.SamplerParams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GenerationLoopTest {
    @TempDir
    static Path tmp;

    private static final int CTX = 16;

    static Path tiny() {
        Path p = tmp.resolve("tiny.gguf");
        if (!Files.exists(p)) {
            TestModels.tinyLlama(p, 13);
        }
        return p;
    }

    static int[] prompt(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = 1 + (i * 7) % 60;
        }
        return p;
    }

    static BatchGenerator batch(Model m, int parallel) {
        return new BatchGenerator(m, new BatchGenerator.Options(parallel, CTX, 8, 0, KvCache.Type.F16));
    }

    static Session session(Model m) {
        return m.newSession(SessionOptions.defaults().withContextLength(CTX).withBatchSize(8));
    }

    /** The exception a batch request failed with. */
    static Throwable failure(CompletableFuture<Generation> f) {
        return assertThrows(ExecutionException.class, f::get).getCause();
    }

    @Test
    void anInputThatDoesNotFitGivesTheSameOneLineErrorFromBoth() {
        GenerateOptions o = GenerateOptions.defaults().withMaxTokens(4).withSampler(SamplerParams.greedy());
        for (int[] bad : new int[][] {prompt(CTX + 4), {1, 64, 3}, {1, -1}}) {
            try (Model m = Model.load(tiny(), ModelOptions.defaults().withBackend("cpu"))) {
                CriaException alone;
                try (Session s = session(m)) {
                    alone = assertThrows(CriaException.class, () -> s.generate(bad, o, (id, t) -> true));
                    CriaException eval = assertThrows(CriaException.class, () -> s.eval(bad));
                    assertEquals(alone.getMessage(), eval.getMessage());
                    assertEquals(0, s.position(), "a refused input leaves nothing behind");
                    assertEquals(0, s.tokens().length);
                }
                Throwable batched;
                try (BatchGenerator b = batch(m, 2)) {
                    batched = failure(b.submit(bad, o, (id, t) -> true));
                }
                assertInstanceOf(CriaException.class, batched);
                assertEquals(alone.getMessage(), batched.getMessage(), Arrays.toString(bad));
                assertFalse(alone.getMessage().contains("\n"), "one line: " + alone.getMessage());
            }
        }
    }

    @Test
    void theContextMessageSaysWhatIsNeededAndWhatTheContextHolds() {
        try (Model m = Model.load(tiny(), ModelOptions.defaults().withBackend("cpu"));
             Session s = session(m)) {
            s.eval(prompt(10));
            CriaException e = assertThrows(CriaException.class, () -> s.eval(prompt(7)));
            assertEquals("the input does not fit the context: 17 tokens needed, the context holds 16; raise --ctx or shorten the input",
                    e.getMessage());
            assertEquals(10, s.position());
            s.eval(prompt(6)); // exactly full is fine
            assertEquals(CTX, s.position());
        }
    }

    @Test
    void bothStopAtTheEndOfTheContextWithTheSameTokens() throws Exception {
        GenerateOptions greedy = GenerateOptions.defaults().withMaxTokens(100).withSampler(SamplerParams.greedy()).withIgnoreEos(true);
        GenerateOptions hot = greedy.withSampler(SamplerParams.defaults().withTemperature(1.3f).withSeed(5));
        try (Model m = Model.load(tiny(), ModelOptions.defaults().withBackend("cpu"))) {
            for (GenerateOptions o : List.of(greedy, hot)) {
                for (int n : new int[] {1, 10, CTX - 1, CTX}) {
                    Generation alone;
                    try (Session s = session(m)) {
                        alone = s.generate(prompt(n), o, (id, t) -> true);
                        assertEquals(CTX, s.position(), "the context is full");
                        assertEquals(CTX + 1, s.tokens().length, "the last token sampled waits, never evaluated");
                    }
                    // each token sampled is evaluated before the next: the last one needs no room
                    assertEquals(CTX - n + 1, alone.tokens().length, "prompt of " + n);
                    assertEquals(Generation.FinishReason.LENGTH, alone.finishReason());
                    try (BatchGenerator b = batch(m, 3)) {
                        var f = b.submit(prompt(n), o, (id, t) -> true);
                        var other = b.submit(prompt(3), o.withMaxTokens(5), (id, t) -> true);
                        Generation g = f.get();
                        assertArrayEquals(alone.tokens(), g.tokens(), "prompt of " + n);
                        assertEquals(Generation.FinishReason.LENGTH, g.finishReason());
                        assertEquals(5, other.get().tokens().length);
                    }
                }
            }
        }
    }

    @Test
    void aListenerThatThrowsEndsItsOwnGenerationOnly() throws Exception {
        GenerateOptions o = GenerateOptions.defaults().withMaxTokens(8).withSampler(SamplerParams.greedy()).withIgnoreEos(true);
        RuntimeException boom = new IllegalStateException("listener failed");
        try (Model m = Model.load(tiny(), ModelOptions.defaults().withBackend("cpu"))) {
            List<int[]> solo = new ArrayList<>();
            int[][] prompts = {prompt(3), {5, 6}, prompt(5)};
            for (int[] p : prompts) {
                try (Session s = session(m)) {
                    solo.add(s.generate(p, o, (id, t) -> true).tokens());
                }
            }
            try (BatchGenerator b = batch(m, 3)) {
                int[] calls = {0};
                var f0 = b.submit(prompts[0], o, (id, t) -> true);
                var f1 = b.submit(prompts[1], o, (id, t) -> {
                    if (++calls[0] == 3) {
                        throw boom;
                    }
                    return true;
                });
                var f2 = b.submit(prompts[2], o, (id, t) -> true);
                assertArrayEquals(solo.get(0), f0.get().tokens());
                assertSame(boom, failure(f1));
                assertArrayEquals(solo.get(2), f2.get().tokens());
            }
            try (Session s = session(m)) {
                int[] calls = {0};
                RuntimeException e = assertThrows(RuntimeException.class, () -> s.generate(prompts[1], o, (id, t) -> {
                    if (++calls[0] == 3) {
                        throw boom;
                    }
                    return true;
                }));
                assertSame(boom, e);
                int[] expected = Arrays.copyOf(prompts[1], 4);
                System.arraycopy(solo.get(1), 0, expected, 2, 2);
                assertArrayEquals(expected, s.tokens(), "the prompt and the two tokens the listener took");
                Generation rest = s.generate(new int[0], o.withMaxTokens(6), (id, t) -> true);
                assertArrayEquals(Arrays.copyOfRange(solo.get(1), 2, 8), rest.tokens(), "the session goes on where it stopped");
            }
        }
    }

    @Test
    void evalAllHandsEveryPositionOverOnceInOrderAcrossChunks() {
        try (Model m = Model.load(tiny(), ModelOptions.defaults().withBackend("cpu"));
             Session all = m.newSession(SessionOptions.defaults().withContextLength(CTX).withBatchSize(4).withAllLogits(true));
             Session last = m.newSession(SessionOptions.defaults().withContextLength(CTX).withBatchSize(4))) {
            int[] p = prompt(10);
            List<Integer> seen = new ArrayList<>();
            float[][] rows = new float[p.length][];
            all.evalAll(p, (i, l) -> {
                seen.add(i);
                rows[i] = l.clone();
            });
            assertEquals(List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), seen);
            assertArrayEquals(rows[9], last.eval(p), "the last row is what eval returns");
            all.reset();
            all.evalAll(Arrays.copyOf(p, 6), (i, l) -> assertArrayEquals(rows[i], l, "position " + i + " again"));
            all.evalAll(Arrays.copyOfRange(p, 6, 10), (i, l) -> assertArrayEquals(rows[6 + i], l, "index " + i + " of the second call"));
        }
    }

    @Test
    void batchCountersAddUpToTheRequests() throws Exception {
        GenerateOptions o = GenerateOptions.defaults().withMaxTokens(6).withSampler(SamplerParams.greedy()).withIgnoreEos(true);
        try (Model m = Model.load(tiny(), ModelOptions.defaults().withBackend("cpu"))) {
            BatchGenerator b = batch(m, 2);
            List<CompletableFuture<Generation>> fs = new ArrayList<>();
            int promptTokens = 0;
            for (int n : new int[] {3, 6, 1, 5}) {
                fs.add(b.submit(prompt(n), o.withMaxTokens(n), (id, t) -> true));
                promptTokens += n;
            }
            b.close();
            int generated = 0;
            for (var f : fs) {
                generated += f.get().tokens().length;
            }
            BatchGenerator.Stats st = b.stats();
            assertEquals(promptTokens, st.promptTokens());
            assertEquals(15, generated, "each request its max tokens");
            assertEquals(generated, st.generatedTokens());
            assertEquals(0, b.inFlight());
            assertTrue(st.decodeTokens() <= generated && st.decodeSteps() < st.steps(), st.toString());
        }
    }
}
