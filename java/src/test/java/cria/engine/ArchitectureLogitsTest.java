// qwen2, qwen3, phi3 and gemma3 files made by `cria synth --arch`, on every backend: logits within the reference tolerances of llama.cpp's, tokens exact.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.Backend;
import cria.backend.cpu.CpuBackend;
import cria.backend.cuda.Devices;
import cria.backend.ref.RefBackend;
import cria.gguf.GgufFile;
import cria.quantize.LlamaFileType;
import cria.synth.Synth;
import cria.synth.SynthShape;
import cria.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each case is a small random-weight file that the test writes again with {@link Synth} (fixed
 * shape, type and seed: the same bytes as the {@code cria synth} command in
 * src/test/resources/cria/engine/arch/README.md, from which llama.cpp's logits of the prompt below
 * were computed). The qwen2 cases have q, k, v biases; the qwen3 ones per-head q/k norms and heads
 * wider than dim / heads; the phi3 ones fused q/k/v and gate/up matrices, grouped KV heads (so the k
 * and v rows of attn_qkv start where q's end) and rope over part of each head; the gemma3 ones
 * the scaled embedding, post-norms, GELU, per-head q/k norms and a windowed layer with its own rope
 * base beside a global one. Every backend evaluates the prompt in one batch and one token per step;
 * each position's logits must be within {@link ReferenceLogits#tolerance} (relative RMS) of
 * llama.cpp's, with argmax agreement as in {@link ReferenceLogitsTest}. The prompt's tokens, from
 * Cria's tokenizer of the file's made-up vocabulary (qwen2-style byte-level BPE; SentencePiece-style
 * for phi3), must be llama.cpp's exactly.
 */
class ArchitectureLogitsTest {
    /** The prompt whose logits the references hold. */
    static final String PROMPT = "the quick brown fox jumps over the lazy dog. Hello, world: 12345!";

    /** One reference file: its synth arguments. */
    record Case(String name, String arch, int dim, int heads, int kvHeads, int headDim, int ffn, LlamaFileType type, long seed, int ropeDims,
                UnaryOperator<SynthShape> more) {
        Case(String name, String arch, int dim, int heads, int kvHeads, int headDim, int ffn, LlamaFileType type, long seed, int ropeDims) {
            this(name, arch, dim, heads, kvHeads, headDim, ffn, type, seed, ropeDims, s -> s);
        }

        Case(String name, String arch, int dim, int heads, int kvHeads, int headDim, int ffn, LlamaFileType type, long seed) {
            this(name, arch, dim, heads, kvHeads, headDim, ffn, type, seed, 0);
        }

        SynthShape shape() {
            SynthShape s = SynthShape.preset("tiny").with(dim, 2, heads, kvHeads, ffn, 512, null).withArch(arch).withRopeDims(ropeDims);
            return more.apply(headDim > 0 ? s.withHeadDim(headDim) : s).validate();
        }
    }

    static final List<Case> CASES = List.of(
            new Case("qwen2-f32", "qwen2", 128, 4, 2, 0, 256, LlamaFileType.F32, 7),
            new Case("qwen3-f32", "qwen3", 128, 4, 2, 64, 256, LlamaFileType.F32, 7),
            new Case("qwen2-q8_0", "qwen2", 256, 4, 2, 0, 512, LlamaFileType.parse("Q8_0"), 11),
            new Case("qwen3-q4_k_m", "qwen3", 256, 4, 2, 128, 512, LlamaFileType.parse("Q4_K_M"), 11),
            new Case("phi3-f32", "phi3", 128, 4, 2, 0, 256, LlamaFileType.F32, 7, 16),
            new Case("phi3-q4_k_m", "phi3", 256, 4, 2, 0, 512, LlamaFileType.parse("Q4_K_M"), 11, 48),
            // layer 0 windowed (rope base 10000, the gemma3 default), layer 1 global (base 1e6); the window is wider than the prompt
            new Case("gemma3-f32", "gemma3", 128, 4, 2, 64, 256, LlamaFileType.F32, 7, 0, s -> s.withRopeBase(1e6f).withWindow(null, 2)),
            new Case("gemma3-q4_k_m", "gemma3", 256, 4, 2, 128, 512, LlamaFileType.parse("Q4_K_M"), 11, 0,
                    s -> s.withRopeBase(1e6f).withWindow(null, 2)),
            // gemma2: layer 0 windowed, layer 1 global, both rope base 10000; attention soft-cap 50, final 30
            new Case("gemma2-f32", "gemma2", 128, 4, 2, 64, 256, LlamaFileType.F32, 7),
            new Case("gemma2-q8_0", "gemma2", 256, 4, 2, 64, 512, LlamaFileType.parse("Q8_0"), 11),
            // windows of 16 over the 51-token prompt: gemma2's layer 0; gemma3's layers 0 and 1 (pattern 3), layer 2 global;
            // soft caps near the scores' and logits' own size (about 0.05 and 0.2 here), where the defaults 50 and 30 change nothing
            new Case("gemma2-swa16-f32", "gemma2", 128, 4, 2, 64, 256, LlamaFileType.F32, 5, 0,
                    s -> s.withWindow(16, null).withSoftcaps(0.1f, 0.3f)),
            new Case("gemma3-swa16-f32", "gemma3", 128, 4, 2, 64, 256, LlamaFileType.F32, 5, 0,
                    s -> s.with(null, 3, null, null, null, null, null).withRopeBase(1e6f).withWindow(16, 3).withSoftcaps(null, 0.3f)));

    @TempDir
    static Path dir;
    private static final Map<String, Path> FILES = new HashMap<>();

    /** The case's file, written once per run. */
    static synchronized Path file(Case c) {
        return FILES.computeIfAbsent(c.name(), n -> {
            Path p = dir.resolve(n + ".gguf");
            Synth.write(p, c.shape(), c.type(), false, null, c.seed(), 2, null);
            return p;
        });
    }

    static ReferenceLogits reference(Case c) throws Exception {
        Path res = Path.of(ArchitectureLogitsTest.class.getResource("/cria/engine/arch/" + c.name() + ".prompt_ids.txt").toURI()).getParent();
        return ReferenceLogits.read(res, c.name());
    }

    @TestFactory
    Stream<DynamicTest> promptTokensAreLlamaCpps() {
        return CASES.stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
            try (GgufFile f = GgufFile.open(file(c))) {
                boolean spm = c.arch().equals("phi3") || c.arch().startsWith("gemma");
                assertEquals(spm ? "llama" : "gpt2", f.metadata().string("tokenizer.ggml.model").orElse(null));
                int[] ids = Tokenizer.fromMetadata(f.metadata()).encode(PROMPT, true, false);
                assertArrayEquals(reference(c).promptIds(), ids, c.name() + ": token ids differ from llama.cpp's");
            }
        }));
    }

    /**
     * The Gemma-style vocabulary (no space prefix, turn markers as control tokens) against
     * llama-tokenize (same llama.cpp build; {@code llama-tokenize -m gemma3-f32.gguf -p TEXT --ids},
     * which parses special tokens): spaces at the start and doubled, a chat turn, non-Latin text
     * through the byte tokens, tabs and newlines, digits and punctuation.
     */
    @org.junit.jupiter.api.Test
    void gemmaVocabularyTokenizesAsLlamaTokenize() throws Exception {
        String[] texts = {"Hello world", "  leading spaces and  double", "<start_of_turn>user\nHi there!<end_of_turn>\n<start_of_turn>model\n",
            "\u00dcn\u00efc\u00f6d\u00e9 \u2713 \u65e5\u672c tabs\tand\nnewlines", "12345 quick-brown_fox?"};
        int[][] want = {{2, 369, 427, 281, 267, 292, 267, 277, 281, 279},
            {2, 260, 282, 411, 279, 269, 271, 301, 274, 295, 265, 285, 419, 266, 271, 279, 260, 280, 267, 283, 299, 281, 261},
            {2, 510, 283, 273, 423, 14, 369, 269, 474, 423, 261, 317, 511, 14, 510, 287, 267, 279, 427, 14},
            {2, 199, 160, 271, 199, 179, 285, 199, 186, 279, 199, 173, 260, 230, 160, 151, 260, 234, 155, 169, 234, 160, 176, 464, 299, 273, 13,
                265, 271, 279, 14, 271, 437, 281, 269, 271, 419},
            {2, 337, 339, 341, 343, 345, 308, 283, 269, 285, 303, 325, 299, 277, 267, 291, 271, 99, 289, 267, 309, 319}};
        Case c = CASES.stream().filter(x -> x.name().equals("gemma3-f32")).findFirst().orElseThrow();
        try (GgufFile f = GgufFile.open(file(c))) {
            Tokenizer tok = Tokenizer.fromMetadata(f.metadata());
            for (int i = 0; i < texts.length; i++) {
                assertArrayEquals(want[i], tok.encode(texts[i], true, true), "'" + texts[i] + "'");
            }
        }
    }

    /** Every backend the reference cases run on, by name; the CUDA ones skip without an emulator or a device. */
    static Map<String, Supplier<Backend>> backends() {
        Map<String, Supplier<Backend>> backends = new java.util.LinkedHashMap<>();
        backends.put("ref", RefBackend::new);
        backends.put("cpu", () -> new CpuBackend(2, true));
        backends.put("cpu-java", () -> new CpuBackend(2, false));
        backends.put("cuda-" + Devices.EMULATOR, Devices::emulator);
        backends.put("cuda-" + Devices.GPU, () -> Devices.open(Devices.GPU));
        return backends;
    }

    @TestFactory
    Stream<DynamicTest> logitsMatchLlamaCpp() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Case c : CASES) {
            for (Map.Entry<String, Supplier<Backend>> b : backends().entrySet()) {
                tests.add(DynamicTest.dynamicTest(c.name() + " on " + b.getKey(), () -> check(c, b.getKey(), b.getValue())));
            }
        }
        return tests.stream();
    }

    private static void check(Case c, String name, Supplier<Backend> open) throws Exception {
        ReferenceLogits ref = reference(c);
        int[] tokens = ref.promptIds();
        int decode = name.equals("cuda-" + Devices.EMULATOR) ? 4 : tokens.length;  // token-by-token steps are slow in the emulator
        float[][][] got;
        try (Backend b = open.get()) {  // the CUDA ones skip without an emulator or a device
            got = CudaLogitsTest.logits(b, file(c), tokens, decode);
        }
        double tol = ReferenceLogits.tolerance(c.name());
        double worst = 0;
        int agree = 0;
        int rows = 0;
        for (int mode = 0; mode < 2; mode++) {
            for (int i = 0; i < (mode == 0 ? tokens.length : decode); i++) {
                assertEquals(ref.logits()[i].length, got[mode][i].length);
                worst = Math.max(worst, ReferenceLogits.relRms(got[mode][i], ref.logits()[i]));
                agree += ReferenceLogits.argmax(got[mode][i]) == ReferenceLogits.argmax(ref.logits()[i]) ? 1 : 0;
                rows++;
            }
        }
        System.out.printf("%-14s %-14s worst rel RMS %.2e (limit %.0e), argmax agrees %d/%d%n", c.name(), name, worst, tol, agree, rows);
        assertTrue(worst <= tol, c.name() + " on " + name + ": relative RMS error " + worst + " > " + tol);
        double need = ReferenceLogits.isFloatModel(c.name()) ? 1.0 : 0.85;
        assertTrue(agree >= Math.ceil(need * rows), c.name() + " on " + name + ": argmax agrees at " + agree + "/" + rows);
    }
}
