// Llama files with llama.attention.sliding_window W, end to end: past W the logits follow the window (ref and cpu agree), before W nothing changes.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.backend.cpu.CpuBackend;
import cria.backend.cuda.Devices;
import cria.gguf.GgufFile;
import cria.model.LlamaConfig;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code cria synth --sliding-window 4} writes the same random model as without the option plus
 * the key (Mistral 7B v0.1's). Over a 12-token prompt (prefill steps of 5, so the steps straddle
 * the window's edge, and one token per step) the windowed model's logits at positions 0..3 are
 * the full-attention model's bit for bit on ref, and at every position from 4 on differ from them:
 * attention honours the window. The CPU backend (native kernels where built, and its Java ops)
 * and the CUDA kernels on the emulator give ref's logits for the windowed model.
 */
class SlidingWindowLogitsTest {
    static final int W = 4;
    /** F32 weights: the backends differ in float rounding only. */
    static final double TOL = 1e-4;

    @TempDir
    Path tmp;

    private Path synth(String name, String... more) {
        Path out = tmp.resolve(name);
        String[] args = {"synth", "--like", "tiny", "--type", "F32", "--layers", "2", "-o", out.toString()};
        String[] all = java.util.Arrays.copyOf(args, args.length + more.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        CliRunner.Result r = CliRunner.run(all);
        assertEquals(0, r.code(), r.toString());
        return out;
    }

    @Test
    void logitsPastTheWindowFollowItOnRefAndCpu() {
        Path full = synth("full.gguf");
        Path windowed = synth("w4.gguf", "--sliding-window", String.valueOf(W));
        try (GgufFile f = GgufFile.open(windowed)) {
            LlamaConfig c = LlamaConfig.from(f.metadata(), 0);
            assertEquals(W, c.slidingWindow());
            assertEquals(W, c.attnSpec(1).window());
        }
        int[] tokens = LoraLogitsTest.TOKENS;
        float[][] want = LoraLogitsTest.logits(windowed, "ref", List.of(), tokens);
        float[][] plain = LoraLogitsTest.logits(full, "ref", List.of(), tokens);
        double least = Double.MAX_VALUE;
        for (int p = 0; p < tokens.length; p++) {
            if (p < W) {
                assertArrayEquals(plain[p], want[p], "position " + p + " < W: the window hides nothing");
            } else {
                double d = ReferenceLogits.relRms(want[p], plain[p]);
                least = Math.min(least, d);
                assertTrue(d > 1e-3, "position " + p + " >= W: the window must change the logits (rel RMS " + d + ")");
            }
        }
        System.out.printf("window %d changes the logits at positions %d..%d by a rel RMS of %.2e or more%n", W, W, tokens.length - 1, least);
        for (String backend : new String[] {"ref", "cpu"}) {
            LoraLogitsTest.close("window " + W + " on " + backend + ", one token per step", steps(windowed, backend, tokens), want, TOL);
        }
        LoraLogitsTest.close("window " + W + " on cpu, prefill steps of 5", LoraLogitsTest.logits(windowed, "cpu", List.of(), tokens), want,
                TOL);
        try (Model m = Model.load(windowed, new CpuBackend(2, false), msg -> { })) {
            LoraLogitsTest.close("window " + W + " on cpu without native kernels, prefill steps of 5", LoraLogitsTest.logits(m, tokens), want,
                    TOL);
        }
    }

    /** The CUDA kernels on the emulator (skipped without it): prefill steps of 5 and the first tokens one by one. */
    @Test
    void theCudaKernelsFollowTheWindowOnTheEmulator() {
        cudaFollowsTheWindow(Devices.EMULATOR, W + 2);
    }

    /** The same on a GPU (skipped without one), every token one by one. */
    @Test
    void theCudaKernelsFollowTheWindowOnAGpu() {
        cudaFollowsTheWindow(Devices.GPU, LoraLogitsTest.TOKENS.length);
    }

    private void cudaFollowsTheWindow(String device, int oneByOne) {
        Path windowed = synth("w4.gguf", "--sliding-window", String.valueOf(W));
        int[] tokens = LoraLogitsTest.TOKENS;
        float[][] want = LoraLogitsTest.logits(windowed, "ref", List.of(), tokens);
        try (Model m = Model.load(windowed, Devices.open(device), msg -> { })) {
            LoraLogitsTest.close("window " + W + " on cuda-" + device + ", prefill steps of 5", LoraLogitsTest.logits(m, tokens), want, TOL);
            float[][] steps = steps(m, java.util.Arrays.copyOf(tokens, oneByOne));
            LoraLogitsTest.close("window " + W + " on cuda-" + device + ", one token per step", steps,
                    java.util.Arrays.copyOf(want, oneByOne), TOL);
        }
    }

    private static float[][] steps(Path model, String backend, int[] tokens) {
        try (Model m = Model.load(model, new ModelOptions(backend, 2, false, List.of()))) {
            return steps(m, tokens);
        }
    }

    private static float[][] steps(Model m, int[] tokens) {
        try (Session s = m.newSession(SessionOptions.defaults().withContextLength(64).withBatchSize(1)
                .withKvType(cria.backend.KvCache.Type.F32))) {
            float[][] out = new float[tokens.length][];
            for (int i = 0; i < tokens.length; i++) {
                out[i] = s.eval(new int[] {tokens[i]}).clone();
            }
            return out;
        }
    }
}
