// Phi-3's long-rope scaling (short and long per-frequency factors, the attention factor) against llama.cpp's logits.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.Backend;
import cria.backend.cuda.Devices;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import cria.quantize.LlamaFileType;
import cria.synth.Synth;
import cria.synth.SynthShape;
import cria.tensor.Tensor;
import cria.tokenizer.Tokenizer;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * A small phi3 file (the 128-wide phi3-f32 case of {@link ArchitectureLogitsTest}, whole heads
 * rotating) given Phi-3.5's kind of long-rope scaling: {@code rope_factors_short} and
 * {@code rope_factors_long} (made-up factors, 1 + i/20 and 1 + i/2) and an attention factor of
 * 1.2. With a context of 128, llama.cpp takes the long factors when the original context is 64
 * and the short ones when it is 256; the references (src/test/resources/cria/engine/arch/README.md)
 * are its logits of the prompt for both. Every backend must match them as the other arch cases do,
 * and the two references must differ (else a wrong choice of factors could pass).
 */
class LongRopeLogitsTest {
    static final int CONTEXT = 128;

    @TempDir
    static Path dir;

    /** The synth phi3 file with long-rope tensors and keys added; originalContext picks which factors llama.cpp uses. */
    static Path write(Path out, int originalContext) {
        return write(out, originalContext, 0, true, 16, 1.2f);
    }

    /** A variant: ropeDims (0: all), whether the short factors are there, how many long ones, the attention factor. */
    static Path write(Path out, int originalContext, int ropeDims, boolean withShort, int longCount, float attnFactor) {
        Path base = out.resolveSibling(out.getFileName() + ".base.gguf");
        SynthShape s = SynthShape.preset("tiny").with(128, 2, 4, 2, 256, 512, null).withArch("phi3").withRopeDims(ropeDims).validate();
        Synth.write(base, s, LlamaFileType.F32, false, null, 7, 2, null);
        try (GgufFile f = GgufFile.open(base)) {
            Metadata md = new Metadata(out.toString());
            f.metadata().asMap().forEach(md::put);
            md.put("phi3.rope.scaling.attn_factor", GgufValue.ofF32(attnFactor));
            md.put("phi3.rope.scaling.original_context_length", GgufValue.ofU32(originalContext));
            GgufWriter w = new GgufWriter(md);
            for (GgufTensorInfo t : f.tensors()) {
                w.addTensor(t.name(), t.type(), t.shape(), Tensor.of(f, t).data());
            }
            int half = (ropeDims == 0 ? 32 : ropeDims) / 2; // head size 128 / 4
            float[] shortF = new float[half];
            float[] longF = new float[longCount];
            for (int i = 0; i < Math.max(half, longCount); i++) {
                if (i < half) {
                    shortF[i] = 1 + i / 20f;
                }
                if (i < longCount) {
                    longF[i] = 1 + i / 2f;
                }
            }
            w.addTensor("rope_factors_long.weight", GgmlType.F32, new long[] {longCount}, MemorySegment.ofArray(longF));
            if (withShort) {
                w.addTensor("rope_factors_short.weight", GgmlType.F32, new long[] {half}, MemorySegment.ofArray(shortF));
            }
            w.write(out);
        }
        try {
            Files.delete(base);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return out;
    }

    /** Writes the two files for making references: {@code main DIR}. */
    public static void main(String[] args) {
        write(Path.of(args[0], "phi3-longrope-long.gguf"), 64);
        write(Path.of(args[0], "phi3-longrope-short.gguf"), 256);
    }

    record Case(String name, int originalContext) {}

    static final List<Case> CASES = List.of(new Case("phi3-longrope-long", 64), new Case("phi3-longrope-short", 256));
    private static final Map<String, Path> FILES = new java.util.HashMap<>();

    static synchronized Path file(Case c) {
        return FILES.computeIfAbsent(c.name(), n -> write(dir.resolve(n + ".gguf"), c.originalContext()));
    }

    static ReferenceLogits reference(String name) throws Exception {
        Path res = Path.of(LongRopeLogitsTest.class.getResource("/cria/engine/arch/" + name + ".prompt_ids.txt").toURI()).getParent();
        return ReferenceLogits.read(res, name);
    }

    @TestFactory
    Stream<DynamicTest> logitsMatchLlamaCpp() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Case c : CASES) {
            for (Map.Entry<String, Supplier<Backend>> b : ArchitectureLogitsTest.backends().entrySet()) {
                tests.add(DynamicTest.dynamicTest(c.name() + " on " + b.getKey(), () -> check(c, b.getKey(), b.getValue())));
            }
        }
        tests.add(DynamicTest.dynamicTest("the references tell the cases apart", LongRopeLogitsTest::referencesDiffer));
        return tests.stream();
    }

    private static void check(Case c, String name, Supplier<Backend> open) throws Exception {
        ReferenceLogits ref = reference(c.name());
        try (GgufFile f = GgufFile.open(file(c))) {
            assertArrayEquals(ref.promptIds(), Tokenizer.fromMetadata(f.metadata()).encode(ArchitectureLogitsTest.PROMPT, true, false));
        }
        int[] tokens = ref.promptIds();
        int decode = name.equals("cuda-" + Devices.EMULATOR) ? 4 : tokens.length;
        float[][][] got;
        try (Backend b = open.get()) {
            got = CudaLogitsTest.logits(b, file(c), tokens, decode, CONTEXT);
        }
        double tol = ReferenceLogits.tolerance("phi3-f32");
        double worst = 0;
        for (int mode = 0; mode < 2; mode++) {
            for (int i = 0; i < (mode == 0 ? tokens.length : decode); i++) {
                worst = Math.max(worst, ReferenceLogits.relRms(got[mode][i], ref.logits()[i]));
                assertTrue(ReferenceLogits.argmax(got[mode][i]) == ReferenceLogits.argmax(ref.logits()[i]), c.name() + " on " + name
                        + ": argmax differs at " + i);
            }
        }
        System.out.printf("%-20s %-14s worst rel RMS %.2e (limit %.0e)%n", c.name(), name, worst, tol);
        assertTrue(worst <= tol, c.name() + " on " + name + ": relative RMS error " + worst + " > " + tol);
    }

    @org.junit.jupiter.api.Test
    void brokenLongRopeFilesAreRefusedInOneLine() {
        Object[][] cases = {
            {write(dir.resolve("no-short.gguf"), 64, 0, false, 16, 1.2f), "rope_factors_short.weight is missing"},
            {write(dir.resolve("count.gguf"), 64, 0, true, 15, 1.2f), "expected 16"},
            {write(dir.resolve("factor.gguf"), 64, 0, true, 16, -1f), "not a usable attention factor"},
            {write(dir.resolve("partial.gguf"), 64, 16, true, 8, 1.2f), "partial rotary"},
            {write(dir.resolve("original.gguf"), 100_000, 0, true, 16, 1.2f), "outside 1..512"},
        };
        for (Object[] c : cases) {
            cria.CliRunner.Result r = cria.CliRunner.run("generate", "-m", c[0].toString(), "-p", "hi", "-n", "1");
            assertTrue(r.code() == 1 && r.err().strip().lines().count() == 1 && r.err().contains((String) c[1]), c[1] + ": " + r);
        }
        // the attention factor without partial rotary, and a factor of 1 with it, run
        cria.CliRunner.Result ok = cria.CliRunner.run("generate", "-m", write(dir.resolve("partial-1.gguf"), 64, 16, true, 8, 1f).toString(),
                "-p", "hi", "-n", "1");
        assertTrue(ok.code() == 0, ok.toString());
    }

    // The long and short factors give different logits: a wrong choice cannot pass both cases.
    private static void referencesDiffer() throws Exception {
        ReferenceLogits lo = reference("phi3-longrope-long");
        ReferenceLogits sh = reference("phi3-longrope-short");
        double most = 0;
        for (int i = 0; i < lo.promptIds().length; i++) {
            most = Math.max(most, ReferenceLogits.relRms(lo.logits()[i], sh.logits()[i]));
        }
        // measured 1.9e-2: the wrong factors would miss the tolerance several times over
        assertTrue(most > 5 * ReferenceLogits.tolerance("phi3-f32"), "long vs short differ by " + most);
    }
}
