// Factorized models end to end: logits on ref, cpu and the CUDA emulator equal those of the dense model whose weights are B·A.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.SharedData;
import cria.TestAdapters;
import cria.TestModels;
import cria.backend.Backend;
import cria.backend.KvCache;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.model.LowRankTensors;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code cria lowrank} writes the factors; {@code cria lowrank --dense} multiplies them back. The
 * factorized model runs each factorized matrix as two products, the dense one as one: both give
 * the same logits within float rounding, on every backend, with and without a LoRA adapter, with
 * every matrix factorized and with a mix (a stage whose other products stay dense and fused).
 */
class LowRankLogitsTest {
    /** Two F32 computations that differ in float rounding only (B·(A·x) against (B·A)·x). */
    static final double TOL = 1e-4;

    @TempDir
    Path tmp;

    static final int[] TOKENS = LoraLogitsTest.TOKENS;

    static void run(String... args) {
        CliRunner.Result r = CliRunner.run(args);
        assertEquals(0, r.code(), r.toString());
    }

    /** The factorized model of base at these options, and its dense counterpart. */
    Path[] factorize(Path base, String name, String... options) {
        Path f = tmp.resolve(name + ".gguf");
        Path d = tmp.resolve(name + "-dense.gguf");
        List<String> args = new ArrayList<>(List.of("lowrank", "-m", base.toString(), "-o", f.toString(), "--threads", "2"));
        args.addAll(List.of(options));
        run(args.toArray(new String[0]));
        run("lowrank", "-m", f.toString(), "--dense", "-o", d.toString());
        return new Path[] {f, d};
    }

    @Test
    void everyMatrixFactorizedGivesTheLogitsOfItsProduct() {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 5);
        Path[] fd = factorize(base, "all", "--method", "svd", "--keep", "0.6", "--rank-step", "4");
        try (GgufFile f = GgufFile.open(fd[0]); GgufFile d = GgufFile.open(fd[1])) {
            for (String role : LowRankTensors.ROLES) {
                assertNull(f.tensor(LowRankTensors.dense(1, role)), role);
                assertEquals(GgmlType.F32, f.tensor(LowRankTensors.b(1, role)).type());
                assertNotNull(d.tensor(LowRankTensors.dense(1, role)), role);
                assertNull(d.tensor(LowRankTensors.a(1, role)), role);
            }
            assertEquals("svd", f.metadata().string(LowRankTensors.KEY_METHOD).orElseThrow());
        }
        float[][] baseLogits = LoraLogitsTest.logits(base, "ref", List.of(), TOKENS);
        float[][] want = LoraLogitsTest.logits(fd[1], "ref", List.of(), TOKENS);
        assertTrue(LoraLogitsTest.relRms(want, baseLogits) > 0.01, "rank 4..8 of 32..64 changes the model: "
                + LoraLogitsTest.relRms(want, baseLogits));
        for (String backend : new String[] {"ref", "cpu"}) {
            LoraLogitsTest.close("lowrank tiny on " + backend + ": factors vs B·A dense", LoraLogitsTest.logits(fd[0], backend, List.of(), TOKENS),
                    want, TOL);
            LoraLogitsTest.close("lowrank tiny on " + backend + ": one token per step vs B·A dense", steps(fd[0], backend), want, TOL);
        }
    }

    @Test
    void aMixOfDenseAndFactorizedProductsInOneStage() {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 6);
        // k (of q, k, v) and up (of gate, up) factorized; the SwiGLU then waits for B·t
        Path[] fd = factorize(base, "mix", "--method", "svd", "--keep", "0.5", "--rank-step", "4", "--targets", "attn_k,ffn_up,ffn_down");
        try (GgufFile f = GgufFile.open(fd[0])) {
            assertNotNull(f.tensor("blk.0.attn_q.weight"));
            assertNotNull(f.tensor("blk.0.attn_k_lr_a.weight"));
            assertNotNull(f.tensor("blk.0.ffn_gate.weight"));
            assertNotNull(f.tensor("blk.0.ffn_up_lr_b.weight"));
        }
        float[][] want = LoraLogitsTest.logits(fd[1], "ref", List.of(), TOKENS);
        for (String backend : new String[] {"ref", "cpu"}) {
            LoraLogitsTest.close("lowrank mix on " + backend + ": factors vs B·A dense", LoraLogitsTest.logits(fd[0], backend, List.of(), TOKENS),
                    want, TOL);
        }
    }

    @Test
    void aLoraAdapterOnAFactorizedModelIsAppliedAfterTheFactors() {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 7);
        Path[] fd = factorize(base, "lora", "--method", "svd", "--keep", "0.6", "--rank-step", "4");
        Path a = TestAdapters.write(tmp.resolve("a.gguf"), 6f, TestAdapters.random(base, 3, 21, 0.3, 2.0, TestAdapters.ALL));
        List<LoraSpec> lora = List.of(LoraSpec.of(a));
        float[][] want = LoraLogitsTest.logits(fd[1], "ref", lora, TOKENS);
        assertTrue(LoraLogitsTest.relRms(want, LoraLogitsTest.logits(fd[1], "ref", List.of(), TOKENS)) > 0.02, "the adapter changes the logits");
        for (String backend : new String[] {"ref", "cpu"}) {
            LoraLogitsTest.close("lowrank + lora on " + backend + ": factors vs B·A dense", LoraLogitsTest.logits(fd[0], backend, lora, TOKENS),
                    want, TOL);
        }
        // merge cannot fold an adapter into factors: one line saying what to do
        CliRunner.Result r = CliRunner.run("merge", "-m", fd[0].toString(), "--lora", a.toString(), "-o", tmp.resolve("m.gguf").toString());
        assertEquals(1, r.code(), r.toString());
        assertTrue(r.err().strip().lines().count() == 1 && r.err().contains("--dense"), r.toString());
    }

    /** The CUDA backend (the kernels on the CPU emulator, or a GPU where there is one) needs no kernel of its own for factors. */
    @Test
    void cudaEmulatorRunsTheFactors() {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 8);
        Path[] fd = factorize(base, "cuda", "--method", "svd", "--keep", "0.6", "--rank-step", "4", "--targets",
                "attn_q,attn_v,attn_output,ffn_gate,ffn_up,ffn_down");
        float[][] want = LoraLogitsTest.logits(fd[1], "cpu", List.of(), TOKENS);
        Backend emu = cria.backend.cuda.Devices.emulator();
        try (Model m = Model.load(fd[0], new ModelOptions("cuda", 0, false, List.of()), emu, null)) {
            LoraLogitsTest.close("lowrank tiny on the CUDA emulator (batches of 5) vs B·A dense on cpu", LoraLogitsTest.logits(m, TOKENS), want, TOL);
            LoraLogitsTest.close("lowrank tiny on the CUDA emulator (one token per step) vs B·A dense on cpu", steps(m), want, TOL);
        }
    }

    /** A factorized file quantizes: each factor gets a type (B's short rows fall back), and the model still runs close to F32. */
    @Test
    void aFactorizedModelQuantizes() {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 9);
        Path[] fd = factorize(base, "q", "--method", "svd", "--keep", "0.6", "--rank-step", "4");
        Path q = tmp.resolve("q8.gguf");
        run("quantize", fd[0].toString(), q.toString(), "Q8_0");
        try (GgufFile f = GgufFile.open(q)) {
            assertEquals(GgmlType.Q8_0, f.tensor("blk.0.ffn_up_lr_a.weight").type(), "rows of 32 inputs: Q8_0");
            assertEquals(GgmlType.F16, f.tensor("blk.0.ffn_up_lr_b.weight").type(), "rows of rank 8: no 32-value blocks fit");
        }
        float[][] want = LoraLogitsTest.logits(fd[0], "ref", List.of(), TOKENS);
        for (String backend : new String[] {"ref", "cpu"}) {
            double e = LoraLogitsTest.relRms(LoraLogitsTest.logits(q, backend, List.of(), TOKENS), want);
            System.out.printf("lowrank: Q8_0 factors on %s vs F32 factors: worst rel RMS %.2e%n", backend, e);
            assertTrue(e < 0.03, backend + ": " + e);
        }
    }

    /** On a real model, SVD-LLM (calibrated on a little text) stays closer to the model's logits on other text than plain SVD. */
    @Test
    void svdLlmStaysCloserToTheModelThanSvdOnStories260K() throws Exception {
        Path base = SharedData.require("models/stories260K.gguf");
        Path text = SharedData.require("text/tinystories-lc.txt");
        byte[] all = Files.readAllBytes(text);
        Path calib = Files.write(tmp.resolve("calib.txt"), java.util.Arrays.copyOfRange(all, 0, 30_000));
        Path[] svd = factorize(base, "svd", "--method", "svd", "--keep", "0.6", "--rank-step", "8");
        Path[] llm = factorize(base, "llm", "--method", "svd-llm", "--keep", "0.6", "--rank-step", "8", "--calib", calib.toString(), "-c",
                "64", "--chunks", "8");
        String heldOut = new String(java.util.Arrays.copyOfRange(all, all.length - 2000, all.length), java.nio.charset.StandardCharsets.UTF_8);
        int[] tokens;
        try (Model m = Model.load(base, new ModelOptions("cpu", 2, false, List.of()))) {
            tokens = java.util.Arrays.copyOf(m.tokenizer().encode(heldOut, true, false), 48);
        }
        double nBase = nll(LoraLogitsTest.logits(base, "cpu", List.of(), tokens), tokens);
        double nSvd = nll(LoraLogitsTest.logits(svd[0], "cpu", List.of(), tokens), tokens);
        double nLlm = nll(LoraLogitsTest.logits(llm[0], "cpu", List.of(), tokens), tokens);
        System.out.printf("lowrank: stories260K at keep 0.6, mean NLL of held-out text: model %.3f, svd %.3f, svd-llm %.3f%n", nBase, nSvd,
                nLlm);
        assertTrue(nLlm - nBase < 0.7 * (nSvd - nBase), "svd-llm loses " + (nLlm - nBase) + " nats, svd " + (nSvd - nBase));
    }

    /** Mean negative log-likelihood of each next token. */
    static double nll(float[][] logits, int[] tokens) {
        double sum = 0;
        for (int i = 0; i + 1 < tokens.length; i++) {
            float[] l = logits[i];
            double max = Double.NEGATIVE_INFINITY;
            for (float v : l) {
                max = Math.max(max, v);
            }
            double z = 0;
            for (float v : l) {
                z += Math.exp(v - max);
            }
            sum += max + Math.log(z) - l[tokens[i + 1]];
        }
        return sum / (tokens.length - 1);
    }

    static float[][] steps(Path model, String backend) {
        try (Model m = Model.load(model, new ModelOptions(backend, 2, false, List.of()))) {
            return steps(m);
        }
    }

    static float[][] steps(Model m) {
        List<float[]> steps = new ArrayList<>();
        try (Session s = m.newSession(SessionOptions.defaults().withContextLength(64).withBatchSize(1).withKvType(KvCache.Type.F32))) {
            for (int t : TOKENS) {
                steps.add(s.eval(new int[] {t}).clone());
            }
        }
        return steps.toArray(new float[0][]);
    }
}
