// LoRA end to end: unmerged logits on ref, cpu (and the CUDA emulator) equal those of the merged model, computed two ways.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.SharedData;
import cria.TestAdapters;
import cria.TestModels;
import cria.backend.Backend;
import cria.backend.KvCache;
import cria.model.LoraAdapterWriter;
import cria.quantize.LlamaFileType;
import cria.synth.Synth;
import cria.synth.SynthShape;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A random adapter (fixed seed, written with {@link LoraAdapterWriter}) over a tiny model the test
 * writes and over ../shared's stories260K: the base with the adapter unmerged gives, on every
 * backend, the logits of the model {@code cria merge} writes and of the merged model
 * {@link TestAdapters#mergedModel} computes independently in double (run on ref). Scale 0 gives
 * the base's logits exactly; two adapters add up.
 */
class LoraLogitsTest {
    /**
     * Whole-model logits of two F32 computations that differ only in float rounding (measured: below
     * 4e-6). The KV cache is F32: an F16 cache turns differences in the last bits into flipped
     * roundings (measured 1e-3 on stories260K), which says nothing about the adapters.
     */
    static final double TOL = 1e-4;

    @TempDir
    Path tmp;

    static final int[] TOKENS = {1, 5, 9, 33, 17, 2, 40, 41, 7, 12, 60, 3};

    /** Logits of every token, evaluated 5 at a time (prefill steps and a short one), on a backend made from options. */
    static float[][] logits(Path model, String backend, List<LoraSpec> loras, int[] tokens) {
        ModelOptions o = new ModelOptions(backend, 2, false, loras);
        try (Model m = Model.load(model, o)) {
            return logits(m, tokens);
        }
    }

    static float[][] logits(Model m, int[] tokens) {
        float[][] out = new float[tokens.length][];
        try (Session s = m.newSession(SessionOptions.defaults().withAllLogits(true).withContextLength(64).withBatchSize(5)
                .withKvType(KvCache.Type.F32))) {
            s.evalAll(tokens, (i, l) -> out[i] = l.clone());
        }
        return out;
    }

    static double relRms(float[][] a, float[][] b) {
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, ReferenceLogits.relRms(a[i], b[i]));
        }
        return worst;
    }

    static void close(String what, float[][] got, float[][] want, double tol) {
        double e = relRms(got, want);
        System.out.printf("lora: %-58s worst rel RMS %.2e (limit %.0e)%n", what, e, tol);
        assertTrue(e <= tol, what + ": relative RMS error " + e + " > " + tol);
    }

    /** The checks on one base: one adapter everywhere, a second on some products, scale 0. */
    void checkBase(Path base, int[] tokens, String name) {
        checkBase(base, tokens, name, "llama", "blk\\.\\d+\\.(attn_q|attn_v|ffn_gate)\\.weight");
    }

    /** As above for a base of architecture {@code arch}; {@code second}: the products the second adapter changes. */
    void checkBase(Path base, int[] tokens, String name, String arch, String second) {
        float alpha1 = 6f;
        int rank1 = 3;
        float scale1 = 1f;
        double s1 = scale1 * alpha1 / rank1;
        Map<String, LoraAdapterWriter.Factors> f1 = TestAdapters.random(base, rank1, 11, 0.3, s1, TestAdapters.ALL);
        Path a1 = TestAdapters.write(tmp.resolve(name + "-a1.gguf"), arch, alpha1, f1);
        // the second: rank 5, alpha 0 (its factor is the user scale alone), only q, v and gate
        float scale2 = 0.5f;
        Map<String, LoraAdapterWriter.Factors> f2 = TestAdapters.random(base, 5, 12, 0.3, scale2, n -> n.matches(second));
        Path a2 = TestAdapters.write(tmp.resolve(name + "-a2.gguf"), arch, 0f, f2);

        Path oracle1 = TestAdapters.mergedModel(base, tmp.resolve(name + "-oracle1.gguf"), List.of(new TestAdapters.Applied(f1, s1)));
        Path oracle12 = TestAdapters.mergedModel(base, tmp.resolve(name + "-oracle12.gguf"),
                List.of(new TestAdapters.Applied(f1, s1), new TestAdapters.Applied(f2, scale2)));
        Path merged1 = tmp.resolve(name + "-merged1.gguf");
        CliRunner.Result r = CliRunner.run("merge", "-m", base.toString(), "--lora", a1.toString(), "-o", merged1.toString());
        assertEquals(0, r.code(), r.toString());
        Path merged12 = tmp.resolve(name + "-merged12.gguf");
        r = CliRunner.run("merge", "-m", base.toString(), "--lora", a1.toString(), "--lora", a2 + ":" + scale2, "-o", merged12.toString(),
                "--threads", "2");
        assertEquals(0, r.code(), r.toString());

        float[][] baseLogits = logits(base, "ref", List.of(), tokens);
        float[][] want1 = logits(oracle1, "ref", List.of(), tokens);
        float[][] want12 = logits(oracle12, "ref", List.of(), tokens);
        assertTrue(relRms(want1, baseLogits) > 0.02, "the adapter changes the logits (else the test shows nothing): "
                + relRms(want1, baseLogits));
        assertTrue(relRms(want12, want1) > 0.01, "the second adapter changes them again: " + relRms(want12, want1));
        for (String backend : new String[] {"ref", "cpu"}) {
            String on = name + " on " + backend;
            close(on + ": merge output vs independent merge", logits(merged1, backend, List.of(), tokens), want1, TOL);
            close(on + ": unmerged vs independent merge", logits(base, backend, List.of(new LoraSpec(a1, scale1)), tokens), want1, TOL);
            close(on + ": unmerged vs cria merge", logits(base, backend, List.of(new LoraSpec(a1, scale1)), tokens),
                    logits(merged1, backend, List.of(), tokens), TOL);
            List<LoraSpec> both = List.of(new LoraSpec(a1, scale1), new LoraSpec(a2, scale2));
            close(on + ": two adapters unmerged vs independent merge", logits(base, backend, both, tokens), want12, TOL);
            close(on + ": two adapters, merge output vs independent", logits(merged12, backend, List.of(), tokens), want12, TOL);
            float[][] off = logits(base, backend, List.of(new LoraSpec(a1, 0f)), tokens);
            float[][] plain = logits(base, backend, List.of(), tokens);
            for (int i = 0; i < tokens.length; i++) {
                assertArrayEquals(plain[i], off[i], on + ": scale 0 gives the base's logits exactly, token " + i);
            }
        }
    }

    @Test
    void tinyModel() {
        checkBase(TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 5), TOKENS, "tiny");
    }

    /** qwen3 (per-head q/k norms, heads wider than dim / heads) and phi3, whose fused attn_qkv and ffn_up are adapted as one matrix each. */
    @Test
    void otherArchitectures() {
        SynthShape tiny = SynthShape.preset("tiny");
        Path qwen3 = tmp.resolve("qwen3.gguf");
        Synth.write(qwen3, tiny.with(128, 2, 4, 2, 256, 512, null).withArch("qwen3").withHeadDim(64).validate(), LlamaFileType.F32, false,
                null, 7, 2, null);
        checkBase(qwen3, TOKENS, "qwen3", "qwen3", "blk\\.\\d+\\.(attn_q|attn_v|ffn_gate)\\.weight");
        Path phi3 = tmp.resolve("phi3.gguf");
        Synth.write(phi3, tiny.with(128, 2, 4, 2, 256, 512, null).withArch("phi3").withRopeDims(16).validate(), LlamaFileType.F32, false,
                null, 7, 2, null);
        checkBase(phi3, TOKENS, "phi3", "phi3", "blk\\.\\d+\\.(attn_qkv|ffn_up)\\.weight");
    }

    /**
     * gemma2 and gemma3 bases (window 8 on layer 0 over the 12 tokens, post-norms, soft caps, gemma3's
     * q/k norms, tied output): the corrections of attn_output and ffn_down land before the
     * post-norms, as a merged matrix's would; a second adapter on attn_output and ffn_down shows it.
     */
    @Test
    void gemmaArchitectures() {
        SynthShape tiny = SynthShape.preset("tiny");
        for (String arch : new String[] {"gemma2", "gemma3"}) {
            Path p = tmp.resolve(arch + ".gguf");
            Synth.write(p, tiny.with(128, 2, 4, 2, 256, 512, null).withArch(arch).withHeadDim(64).withWindow(8, 2).validate(),
                    LlamaFileType.F32, false, null, 7, 2, null);
            checkBase(p, TOKENS, arch, arch, "blk\\.\\d+\\.(attn_output|ffn_down)\\.weight");
        }
    }

    @Test
    void stories260K() {
        checkBase(SharedData.require("models/stories260K.gguf"), new int[] {1, 403, 407, 261, 378, 275, 300, 423, 266, 506, 290, 30},
                "stories260K");
    }

    /** Many decode steps of one token (the products of one row take other kernels than prefill batches). */
    @Test
    void decodeStepsAgreeWithOneBatch() {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 6);
        Path a = TestAdapters.write(tmp.resolve("a.gguf"), 8f, TestAdapters.random(base, 4, 3, 0.3, 2.0, TestAdapters.ALL));
        for (String backend : new String[] {"ref", "cpu"}) {
            try (Model m = Model.load(base, new ModelOptions(backend, 2, false, List.of(LoraSpec.of(a))))) {
                float[][] batch = logits(m, TOKENS);
                List<float[]> steps = new ArrayList<>();
                try (Session s = m.newSession(SessionOptions.defaults().withContextLength(64).withBatchSize(1).withKvType(KvCache.Type.F32))) {
                    for (int t : TOKENS) {
                        steps.add(s.eval(new int[] {t}).clone());
                    }
                }
                close("tiny on " + backend + ": one token per step vs batches of 5", steps.toArray(new float[0][]), batch, TOL);
            }
        }
    }

    /** The CUDA backend's kernels (run on the CPU emulator, or a GPU where there is one) against the cpu backend. */
    @Test
    void cudaEmulatorAgreesWithCpu() {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 7);
        Path a1 = TestAdapters.write(tmp.resolve("a1.gguf"), 6f, TestAdapters.random(base, 3, 21, 0.3, 2.0, TestAdapters.ALL));
        Path a2 = TestAdapters.write(tmp.resolve("a2.gguf"), 0f, TestAdapters.random(base, 2, 22, 0.3, 1.0,
                n -> n.contains("ffn_up") || n.contains("attn_k")));
        List<LoraSpec> both = List.of(LoraSpec.of(a1), LoraSpec.of(a2));
        float[][] cpu = logits(base, "cpu", both, TOKENS);
        Backend emu = cria.backend.cuda.Devices.emulator();
        try (Model m = Model.load(base, new ModelOptions("cuda", 0, false, both), emu, null)) {
            float[][] got = logits(m, TOKENS);
            List<float[]> steps = new ArrayList<>();
            try (Session s = m.newSession(SessionOptions.defaults().withContextLength(64).withBatchSize(1).withKvType(KvCache.Type.F32))) {
                for (int t : TOKENS) {
                    steps.add(s.eval(new int[] {t}).clone());
                }
            }
            close("tiny on the CUDA emulator (batches of 5) vs cpu", got, cpu, TOL);
            close("tiny on the CUDA emulator (one token per step) vs cpu", steps.toArray(new float[0][]), cpu, TOL);
        }
    }
}
