// A security boundary: no request's settings, however absurd, change another request's tokens.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.TestModels;
import cria.backend.KvCache;
import cria.sample.SamplerParams;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Ordinary requests ("victims") are run alone, then again among hostile neighbours: max tokens of
 * 2^31-1 (which once wrapped the page reservation to zero pages, so the sequence wrote its K/V
 * into another sequence's page 0), prompts longer than the context, empty prompts, token ids
 * outside the vocabulary, giant penalty windows and top-k, extreme seeds; in shuffled orders,
 * with pools small enough that sequences wait for each other's pages. Every victim must give
 * exactly its solo tokens; every hostile request either runs or fails alone with a
 * {@link CriaException}.
 */
class BatchIsolationTest {
    @TempDir
    static Path tmp;

    private record Req(int[] prompt, GenerateOptions options, boolean victim) {}

    private static final int CTX = 64;

    private static List<Req> victims() {
        List<Req> out = new ArrayList<>();
        out.add(new Req(new int[] {1, 5, 9, 13, 17}, new GenerateOptions(20, SamplerParams.greedy(), List.of(), true), true));
        out.add(new Req(new int[] {1, 30, 31}, new GenerateOptions(25, SamplerParams.defaults().withTemperature(0.9f).withSeed(7),
                List.of(), true), true));
        out.add(new Req(new int[] {1, 40, 41, 42, 43, 44, 45, 46, 47}, new GenerateOptions(12, SamplerParams.defaults()
                .withTemperature(1.2f).withTopK(0).withSeed(99).withRepeatPenalty(1.1f), List.of(), true), true));
        return out;
    }

    private static List<Req> hostile() {
        List<Req> out = new ArrayList<>();
        SamplerParams hot = SamplerParams.defaults().withTemperature(1.5f).withSeed(3);
        for (SamplerParams sp : new SamplerParams[] {SamplerParams.greedy(), hot}) {
            out.add(new Req(new int[] {1, 2, 3}, new GenerateOptions(Integer.MAX_VALUE, sp, List.of(), true), false));
            out.add(new Req(new int[] {1, 7}, new GenerateOptions(Integer.MAX_VALUE - 1, sp, List.of(), false), false));
            out.add(new Req(new int[] {1}, new GenerateOptions(0, sp, List.of(), true), false));
        }
        int[] almostFull = new int[CTX - 1];
        java.util.Arrays.fill(almostFull, 9);
        out.add(new Req(almostFull, new GenerateOptions(Integer.MAX_VALUE, hot, List.of(), true), false));
        out.add(new Req(new int[CTX], new GenerateOptions(5, hot, List.of(), true), false));
        out.add(new Req(new int[CTX + 50], new GenerateOptions(5, hot, List.of(), true), false));
        out.add(new Req(new int[0], new GenerateOptions(5, hot, List.of(), true), false));
        for (int bad : new int[] {-1, 64, Integer.MAX_VALUE, Integer.MIN_VALUE}) {
            out.add(new Req(new int[] {1, bad, 3}, new GenerateOptions(5, hot, List.of(), true), false));
        }
        out.add(new Req(new int[] {1, 2}, new GenerateOptions(30, hot.withRepeatLastN(Integer.MAX_VALUE).withRepeatPenalty(1.5f)
                .withFrequencyPenalty(1000).withPresencePenalty(-1000), List.of(), true), false));
        out.add(new Req(new int[] {1, 2}, new GenerateOptions(30, hot.withTopK(Integer.MAX_VALUE).withTopP(1e-9f).withMinP(1f)
                .withSeed(Long.MIN_VALUE), List.of("a", "\u0000", "\uD83D\uDE00"), true), false));
        out.add(new Req(new int[] {1, 2}, new GenerateOptions(30, hot.withSeed(Long.MAX_VALUE).withTemperature(100), List.of(), true), false));
        return out;
    }

    private static int[] solo(Model m, Req r) throws Exception {
        try (BatchGenerator b = new BatchGenerator(m, new BatchGenerator.Options(1, CTX, 8, 0, KvCache.Type.F16))) {
            return b.submit(r.prompt, r.options, (t, s) -> true).get().tokens();
        }
    }

    @Test
    void noRequestsSettingsChangeAnotherRequestsTokens() throws Exception {
        Path model = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 5);
        try (Model m = Model.load(model, ModelOptions.defaults().withBackend("cpu").withThreads(1))) {
            List<Req> victims = victims();
            List<int[]> expected = new ArrayList<>();
            for (Req v : victims) {
                expected.add(solo(m, v));
            }
            Random rnd = new Random(1);
            // (parallel, step tokens, pool positions): from roomy to a pool that makes sequences wait
            int[][] shapes = {{8, 32, 0}, {4, 8, 2 * CTX}, {3, 5, CTX + 16}, {16, 64, 0}};
            for (int[] shape : shapes) {
                List<Req> all = new ArrayList<>(victims);
                all.addAll(hostile());
                Collections.shuffle(all, rnd);
                List<CompletableFuture<Generation>> fs = new ArrayList<>();
                try (BatchGenerator b = new BatchGenerator(m, new BatchGenerator.Options(shape[0], CTX, shape[1], shape[2], KvCache.Type.F16))) {
                    for (Req r : all) {
                        fs.add(b.submit(r.prompt, r.options, (t, s) -> true));
                    }
                    for (int i = 0; i < all.size(); i++) {
                        Req r = all.get(i);
                        if (r.victim) {
                            int[] got = fs.get(i).get().tokens();
                            assertArrayEquals(expected.get(victims.indexOf(r)), got, "victim " + victims.indexOf(r) + " with parallel "
                                    + shape[0] + ", steps of " + shape[1] + ", pool " + shape[2]);
                        } else {
                            try {
                                Generation g = fs.get(i).get();
                                assertTrue(g.tokens().length <= CTX, "a request is bounded by the context: " + g.tokens().length);
                            } catch (ExecutionException e) {
                                assertInstanceOf(CriaException.class, e.getCause(), "a refused request fails alone, with a reason");
                            }
                        }
                    }
                }
            }
        }
    }
}
