// Rule 2 with low-rank factors: once warm, Llama.forward of a factorized model (with a LoRA adapter on top) allocates nothing on the CPU backend.
package cria.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.TestAdapters;
import cria.TestModels;
import cria.backend.Batch;
import cria.backend.KvCache;
import cria.gguf.GgufFile;
import cria.model.Llama;
import cria.model.LlamaConfig;
import cria.model.LlamaWeights;
import cria.model.LoraAdapter;
import cria.model.LoraStack;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Test;

class LowRankForwardAllocationTest {
    static final int STEPS = 100;

    @TempDir
    Path tmp;

    /**
     * On the path the backend picks here (the ops of both paths are CpuOpsAllocationTest's; what is
     * new is the model code around them, the same on either path).
     */
    @Test
    void aWarmStepOfAFactorizedModelAllocatesNothing() {
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        Assumptions.assumeTrue(mx.isThreadAllocatedMemorySupported(), "skipped: this JVM does not count allocated bytes per thread");
        Path base = TestModels.tinyLlama(tmp.resolve("m.gguf"), 3);
        Path model = tmp.resolve("lr.gguf");
        cria.CliRunner.Result r = cria.CliRunner.run("lowrank", "-m", base.toString(), "--method", "svd", "--keep", "0.6", "--rank-step", "4",
                "--targets", "attn_q,attn_k,attn_output,ffn_up,ffn_down", "-o", model.toString());
        org.junit.jupiter.api.Assertions.assertEquals(0, r.code(), r.toString());
        Path a1 = TestAdapters.write(tmp.resolve("a1.gguf"), 8f, TestAdapters.random(base, 4, 1, 0.2, 2.0, TestAdapters.ALL));
        try (GgufFile f = GgufFile.open(model); LoraAdapter l1 = LoraAdapter.open(a1, f);
             LoraStack stack = LoraStack.of(List.of(new LoraStack.Use(l1, 1f)));
             CpuBackend b = new CpuBackend(2)) {
            boolean nat = b.usesNativeKernels();
            LlamaConfig c = LlamaConfig.from(f.metadata(), (int) f.tensor("token_embd.weight").rows());
            LlamaWeights weights = LlamaWeights.load(f, c, b);
            assertTrue(weights.factorized());
            Llama llama = new Llama(c, weights, stack, b);
            try (KvCache cache = b.kvCache(KvCache.Config.single(c.layers(), c.kvDim(), KvCache.Type.F16, 32))) {
                int seq = cache.newSequence();
                cache.reserve(seq, 32);
                Llama.Scratch s = llama.newScratch(4, 4);
                Batch batch = new Batch(4);
                int threads = b.pool().threads();
                long[] before = new long[threads];
                long[] after = new long[threads];
                WorkerPool.Task probeBefore = (th, nt) -> before[th] = mx.getCurrentThreadAllocatedBytes();
                WorkerPool.Task probeAfter = (th, nt) -> after[th] = mx.getCurrentThreadAllocatedBytes();
                for (int i = 0; i < 2 * STEPS; i++) {
                    step(llama, cache, s, batch, seq, i % 2 == 0 ? 1 : 4);
                }
                b.pool().run(probeBefore);
                long callerBefore = mx.getCurrentThreadAllocatedBytes();
                for (int i = 0; i < STEPS; i++) {
                    step(llama, cache, s, batch, seq, i % 2 == 0 ? 1 : 4);
                }
                long callerAfter = mx.getCurrentThreadAllocatedBytes();
                b.pool().run(probeAfter);
                long total = callerAfter - callerBefore;
                for (int t = 0; t < threads; t++) {
                    total += after[t] - before[t];
                }
                assertTrue(total < 2048, (nat ? "native" : "java") + ": forward of a factorized model allocated " + total + " bytes over " + STEPS
                        + " warm steps");
            }
        }
    }

    /** n entries at positions 10 .. 10 + n - 1 (written again each step), every one wanting logits. */
    private static void step(Llama llama, KvCache cache, Llama.Scratch s, Batch batch, int seq, int n) {
        batch.clear();
        for (int i = 0; i < n; i++) {
            batch.add(3 + i, 10 + i, seq, true);
        }
        llama.forward(batch, cache, s);
    }
}
