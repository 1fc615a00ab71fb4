// What the server needs from the batch engine: logprobs, logit bias, a bounded queue, cancelling, shared prefixes, embeddings.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.TestModels;
import cria.backend.KvCache;
import cria.sample.SamplerParams;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServingFeaturesTest {
    @TempDir
    static Path tmp;
    static Model model;

    @BeforeAll
    static void load() {
        Path file = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 33);
        model = Model.load(file, ModelOptions.defaults().withBackend("cpu").withThreads(2));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static int[] prompt(int n, int salt) {
        int vocab = model.config().vocab();
        int[] p = new int[n];
        p[0] = 1;
        for (int i = 1; i < n; i++) {
            p[i] = 3 + (i * 7 + salt * 13) % (vocab - 3);
        }
        return p;
    }

    static Generation alone(int[] prompt, GenerateOptions o) {
        try (Session s = model.newSession(SessionOptions.defaults().withContextLength(256))) {
            return s.generate(prompt, o, (id, t) -> true);
        }
    }

    static BatchGenerator engine(int parallel, int maxQueue) {
        return new BatchGenerator(model, new BatchGenerator.Options(parallel, 256, 32, 0, KvCache.Type.F16, maxQueue));
    }

    @Test
    void logprobsAreTheLogSoftmaxOfTheLogitsAndTheGreedyTokenIsTheTopOne() {
        int[] p = prompt(9, 1);
        GenerateOptions o = new GenerateOptions(6, SamplerParams.greedy(), List.of(), true).withLogprobs(5);
        List<TokenLogprob> streamed = new ArrayList<>();
        Generation g;
        try (Session s = model.newSession(SessionOptions.defaults().withContextLength(256))) {
            g = s.generate(p, o, new TokenListener() {
                public boolean onToken(int token, String text) {
                    throw new AssertionError("the 3-argument call is the one made");
                }

                public boolean onToken(int token, String text, TokenLogprob lp) {
                    if (token >= 0) {
                        streamed.add(lp);
                    }
                    return true;
                }
            });
        }
        assertEquals(g.tokens().length, g.logprobs().size());
        assertEquals(g.logprobs(), streamed);
        // The first token's numbers against a log-softmax computed here from the session's logits.
        float[] logits;
        try (Session s = model.newSession(SessionOptions.defaults().withContextLength(256))) {
            logits = s.eval(p).clone();
        }
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double z = 0;
        for (float v : logits) {
            z += Math.exp(v - max);
        }
        TokenLogprob first = g.logprobs().get(0);
        assertEquals(g.tokens()[0], first.token());
        assertEquals(logits[first.token()] - max - Math.log(z), first.logprob(), 1e-4);
        assertEquals(5, first.topTokens().length);
        assertEquals(first.token(), first.topTokens()[0], "greedy takes the most likely token");
        for (int i = 0; i < 5; i++) {
            assertEquals(logits[first.topTokens()[i]] - max - Math.log(z), first.topLogprobs()[i], 1e-4);
            if (i > 0) {
                assertTrue(first.topLogprobs()[i] <= first.topLogprobs()[i - 1]);
            }
        }
        for (int t = 0; t < logits.length; t++) { // nothing outside the top 5 is more likely than the 5th
            final int tt = t;
            if (java.util.Arrays.stream(first.topTokens()).noneMatch(x -> x == tt)) {
                assertTrue(logits[t] <= logits[first.topTokens()[4]]);
            }
        }
        assertTrue(alone(p, o.withLogprobs(-1)).logprobs().isEmpty());
    }

    @Test
    void logitBiasBansAndForcesTokens() {
        int[] p = prompt(7, 2);
        GenerateOptions greedy = new GenerateOptions(4, SamplerParams.greedy(), List.of(), true);
        int top = alone(p, greedy).tokens()[0];
        assertNotEquals(top, alone(p, greedy.withLogitBias(Map.of(top, -100f))).tokens()[0]);
        int forced = (top + 5) % model.config().vocab();
        for (int t : alone(p, greedy.withLogitBias(Map.of(forced, 100f))).tokens()) {
            assertEquals(forced, t);
        }
        CriaException e = assertThrows(CriaException.class,
                () -> alone(p, greedy.withLogitBias(Map.of(model.config().vocab(), 1f))));
        assertTrue(e.getMessage().contains("outside the vocabulary"), e.getMessage());
    }

    @Test
    void aFullQueueRefusesAtOnceAndCancellingFreesEverything() throws Exception {
        CountDownLatch started = new CountDownLatch(1);
        GenerateOptions endless = new GenerateOptions(200, SamplerParams.greedy(), List.of(), true);
        try (BatchGenerator b = engine(1, 1)) {
            CompletableFuture<Generation> running = b.submit(prompt(40, 3), endless, (id, t) -> {
                started.countDown();
                return true;
            });
            assertTrue(started.await(30, TimeUnit.SECONDS));
            CompletableFuture<Generation> queued = b.submit(prompt(5, 4), endless, (id, t) -> true);
            CompletableFuture<Generation> refused = b.submit(prompt(5, 5), endless, (id, t) -> true);
            ExecutionException e = assertThrows(ExecutionException.class, () -> refused.get(5, TimeUnit.SECONDS));
            assertInstanceOf(BatchGenerator.QueueFullException.class, e.getCause());
            assertEquals(1, b.stats().queued());
            queued.cancel(true);
            running.cancel(true);
            BatchGenerator.Stats st = idle(b);
            assertEquals(0, st.running());
            assertEquals(0, st.queued());
            assertEquals(st.kvPagesUsed(), st.kvPagesCached(), "no page is held by anything but kept prefixes: " + st);
            assertTrue(st.kvPagesCached() > 0, "the cancelled sequence's evaluated prefix is kept: " + st);
            // the engine goes on serving after cancels
            GenerateOptions shortRun = new GenerateOptions(3, SamplerParams.greedy(), List.of(), true);
            assertArrayEquals(alone(prompt(6, 6), shortRun).tokens(), b.submit(prompt(6, 6), shortRun, (id, t) -> true).get().tokens());
        }
    }

    static BatchGenerator.Stats idle(BatchGenerator b) throws InterruptedException {
        for (int i = 0; i < 300; i++) {
            BatchGenerator.Stats st = b.stats();
            if (st.running() == 0 && st.queued() == 0) {
                return st;
            }
            Thread.sleep(20);
        }
        throw new AssertionError("the engine did not go idle: " + b.stats());
    }

    @Test
    void sharedPrefixesAreComputedOnceAndChangeNoText() throws Exception {
        int[] system = prompt(70, 7); // more than four pages
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            int[] q = prompt(5 + i, 20 + i);
            int[] p = java.util.Arrays.copyOf(system, system.length + q.length - 1);
            System.arraycopy(q, 1, p, system.length, q.length - 1);
            prompts.add(p);
        }
        prompts.add(system.clone()); // the whole prefix itself: one token is still evaluated
        List<GenerateOptions> opts = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            opts.add(new GenerateOptions(8, i % 2 == 0 ? SamplerParams.greedy() : SamplerParams.defaults().withSeed(i), List.of(), true));
        }
        try (BatchGenerator b = engine(4, 0)) {
            List<CompletableFuture<Generation>> fs = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                fs.add(b.submit(prompts.get(i), opts.get(i), (id, t) -> true));
            }
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(alone(prompts.get(i), opts.get(i)).tokens(), fs.get(i).get().tokens(), "request " + i);
            }
            // A later request with the same system prompt takes it from a kept sequence.
            long before = b.stats().promptTokensReused();
            int[] later = java.util.Arrays.copyOf(system, system.length + 3);
            later[system.length] = 5;
            later[system.length + 1] = 6;
            later[system.length + 2] = 7;
            GenerateOptions g = new GenerateOptions(5, SamplerParams.greedy(), List.of(), true);
            assertArrayEquals(alone(later, g).tokens(), b.submit(later, g, (id, t) -> true).get().tokens());
            BatchGenerator.Stats st = idle(b);
            assertTrue(st.promptTokensReused() - before >= 64, "the later request reused the system prompt: " + st);
            assertTrue(before >= 6 * 64, "the concurrent requests computed the system prompt once: " + st);
            assertEquals(st.kvPagesUsed(), st.kvPagesCached(), st.toString());
        }
    }

    @Test
    void embeddingsAreUnitLengthMeanPooledHiddenStates() {
        int[] a = prompt(12, 8);
        int[] b = prompt(12, 9);
        try (Embedder e = new Embedder(model, 64)) {
            float[] va = e.embed(a);
            assertEquals(model.config().dim(), va.length);
            assertEquals(1.0, norm(va), 1e-5);
            assertArrayEquals(va, e.embed(a), "the same input gives the same vector");
            float[] vb = e.embed(b);
            assertTrue(dot(va, vb) < 0.9999, "different inputs give different vectors");
            // Mean pooling: the output product of the pooled state is the mean of the tokens' logits,
            // so its direction equals that of the summed logits of every position.
            float[] sum = new float[model.config().vocab()];
            try (Session s = model.newSession(SessionOptions.defaults().withContextLength(64).withAllLogits(true))) {
                s.evalAll(a, (i, l) -> {
                    for (int v = 0; v < l.length; v++) {
                        sum[v] += l[v];
                    }
                });
            }
            float[] projected = outputTimes(va);
            assertEquals(1.0, dot(projected, sum) / (norm(projected) * norm(sum)), 1e-4, "cosine of W·e and the summed logits");
            assertThrows(CriaException.class, () -> e.embed(new int[0]));
            assertThrows(CriaException.class, () -> e.embed(prompt(65, 1)));
        }
    }

    /** The output matrix (dequantized from the file) times {@code v}. */
    static float[] outputTimes(float[] v) {
        var f = model.file();
        var t = cria.tensor.Tensor.of(f, f.tensor("output.weight") != null ? "output.weight" : "token_embd.weight");
        int vocab = model.config().vocab();
        int dim = model.config().dim();
        float[] out = new float[vocab];
        for (int r = 0; r < vocab; r++) {
            float[] w = t.dequantizeRow(r);
            double acc = 0;
            for (int c = 0; c < dim; c++) {
                acc += (double) w[c] * v[c];
            }
            out[r] = (float) acc;
        }
        return out;
    }

    static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    static double norm(float[] a) {
        return Math.sqrt(dot(a, a));
    }
}
