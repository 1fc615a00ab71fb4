// LowRank's plan and passes: ranks and parameter counts, layers grouped by the Gram memory budget, one calibration pass per group.
package cria.optimize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.TestModels;
import cria.gguf.GgufFile;
import cria.model.LowRankTensors;
import cria.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LowRankTest {
    @TempDir
    Path tmp;

    static LowRank.Options options(LowRank.Method m, long budget) {
        return new LowRank.Options(m, 0.6, LowRankTensors.ROLES, 4, false, 2, budget);
    }

    @Test
    void thePlanCountsParameters() {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 1);
        try (GgufFile f = GgufFile.open(base)) {
            LowRank.Plan p = LowRank.plan(f, 2, options(LowRank.Method.SVD, 1 << 20));
            assertEquals(14, p.items().size());
            // per layer: q, o 32x32 at rank 8 (512 each); k, v 16x32 at rank 4 (192 each); gate, up, down 64x32 at rank 12 (1152 each)
            assertEquals(2 * (2 * 1024 + 2 * 512 + 3 * 2048), p.chosenBefore());
            assertEquals(2 * (2 * 512 + 2 * 192 + 3 * 1152), p.chosenAfter());
            assertEquals(p.modelBefore() - p.chosenBefore() + p.chosenAfter(), p.modelAfter());
            assertTrue(p.kept() <= 0.6);
            assertEquals("blk.1.attn_q.weight", p.items().get(8).inputOf());  // k of layer 1 reads q's input
            assertEquals("blk.1.ffn_gate.weight", p.items().get(12).inputOf()); // up reads gate's
        }
    }

    @Test
    void layersAreGroupedByTheGramBudget() {
        List<LowRank.Item> items = new ArrayList<>();
        for (int l = 0; l < 4; l++) {
            items.add(new LowRank.Item(l, "attn_q", LowRankTensors.dense(l, "attn_q"), 32, 32, 8));
            items.add(new LowRank.Item(l, "attn_k", LowRankTensors.dense(l, "attn_k"), 16, 32, 4));
            items.add(new LowRank.Item(l, "ffn_down", LowRankTensors.dense(l, "ffn_down"), 32, 64, 8));
        }
        long perLayer = 8L * (32 * 32 + 64 * 64); // q and k share one input
        assertEquals(1, LowRank.gramGroups(items, 4 * perLayer).size());
        assertEquals(2, LowRank.gramGroups(items, 2 * perLayer).size());
        assertEquals(4, LowRank.gramGroups(items, 2 * perLayer - 1).size());
        assertEquals(4, LowRank.gramGroups(items, 1).size(), "a layer over the budget is a group of its own");
    }

    /**
     * With G = I, SVD-LLM is plain SVD: the whole path (passes, scheduling, writing) gives the
     * same factors, whatever the number of passes.
     */
    @Test
    void anIdentityGramGivesPlainSvdInAnyNumberOfPasses() {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 2);
        Path svd = tmp.resolve("svd.gguf");
        try (GgufFile f = GgufFile.open(base)) {
            LowRank.Options o = options(LowRank.Method.SVD, 0);
            LowRank.write(f, LowRank.plan(f, 2, o), o, null, svd, null);
            for (long budget : new long[] {1L << 30, 1}) {
                List<Set<String>> passes = new ArrayList<>();
                LowRank.GramPass identity = products -> {
                    passes.add(products);
                    Map<String, double[]> g = new HashMap<>();
                    for (String p : products) {
                        int n = Math.toIntExact(f.tensor(p).shape()[0]);
                        double[] id = new double[n * n];
                        for (int i = 0; i < n; i++) {
                            id[i * n + i] = 1;
                        }
                        g.put(p, id);
                    }
                    return g;
                };
                LowRank.Options ol = options(LowRank.Method.SVD_LLM, budget);
                Path llm = tmp.resolve("llm-" + budget + ".gguf");
                java.util.concurrent.atomic.AtomicInteger told = new java.util.concurrent.atomic.AtomicInteger(); // the listener is called from the pool's threads
                LowRank.write(f, LowRank.plan(f, 2, ol), ol, identity, llm, (it, fac, s) -> told.incrementAndGet());
                assertEquals(14, told.get());
                assertEquals(budget == 1 ? 2 : 1, passes.size(), "passes: " + passes);
                assertEquals(Set.of("blk.0.attn_q.weight", "blk.0.attn_output.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_down.weight"),
                        passes.get(0).stream().filter(s -> s.startsWith("blk.0.")).collect(java.util.stream.Collectors.toSet()));
                try (GgufFile a = GgufFile.open(svd); GgufFile b = GgufFile.open(llm)) {
                    for (var t : a.tensors()) {
                        float[] x = LowRank.read(Tensor.of(a, t));
                        float[] y = LowRank.read(Tensor.of(b, b.tensor(t.name())));
                        assertEquals(x.length, y.length, t.name());
                        if (LowRankTensors.denseOf(t.name()) == null) {
                            assertArrayEquals(x, y, t.name());
                        } else {
                            // the factors agree up to the sign of each component: compare |values|
                            for (int i = 0; i < x.length; i++) {
                                assertEquals(Math.abs(x[i]), Math.abs(y[i]), 1e-5 * (1 + Math.abs(x[i])), t.name() + "[" + i + "]");
                            }
                        }
                    }
                }
            }
        }
    }
}
