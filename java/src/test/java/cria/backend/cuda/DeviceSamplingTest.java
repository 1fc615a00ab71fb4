// Sampling on the device gives exactly the tokens the host sampler gives from the same logits and seed (kernels and end to end).
package cria.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import cria.TestModels;
import cria.backend.Backend;
import cria.backend.Buf;
import cria.engine.GenerateOptions;
import cria.engine.Generation;
import cria.engine.Model;
import cria.engine.Session;
import cria.engine.SessionOptions;
import cria.sample.Sampler;
import cria.sample.SamplerParams;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The argmax, softmax and sampling kernels against the host's {@link Sampler} on the same logits
 * (ties at the top, many equal values around the k-th), on the emulator (also with its threads in
 * reverse and random orders, which expose missing barriers) and on a GPU; then whole generations.
 * The seed of each kernel check is printed on failure.
 */
class DeviceSamplingTest {
    @TempDir
    Path tmp;

    static int[] run(Backend b, Path model, GenerateOptions o, boolean device) {
        String old = System.getProperty("cria.deviceSampling");
        System.setProperty("cria.deviceSampling", Boolean.toString(device));
        try (Model m = Model.load(model, b, null); Session s = m.newSession(SessionOptions.defaults().withContextLength(64))) {
            Generation g = s.generate("abc", o, (id, t) -> true);
            return g.tokens();
        } finally {
            if (old == null) {
                System.clearProperty("cria.deviceSampling");
            } else {
                System.setProperty("cria.deviceSampling", old);
            }
        }
    }

    @Test
    void greedyAndTopKMatchTheHostSamplerOnTheEmulator() {
        Path model = TestModels.tinyLlama(tmp.resolve("t.gguf"), 41);
        for (SamplerParams p : new SamplerParams[] {SamplerParams.greedy(),
            SamplerParams.defaults().withTemperature(1.3f).withTopK(20).withTopP(0.9f).withMinP(0.02f).withSeed(9)}) {
            GenerateOptions o = GenerateOptions.defaults().withMaxTokens(12).withSampler(p).withIgnoreEos(true);
            int[] host = run(Devices.emulator(), model, o, false);
            int[] device = run(Devices.emulator(), model, o, true);
            assertTrue(host.length == 12, "generated " + host.length);
            assertArrayEquals(host, device, "temperature " + p.temperature());
        }
    }

    @AfterEach
    void forwardSchedule() {
        EmuGpu.schedule(EmuGpu.Schedule.FORWARD, 0);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"emulator", "emulator REVERSE", "emulator RANDOM", "gpu"})
    void argmaxSoftmaxAndTopKSamplingMatchTheHostSampler(String where) throws Exception {
        long seed = new Random().nextLong();
        Random random = new Random(seed);
        String at = " [" + where + ", seed " + seed + "]";
        String[] parts = where.split(" ");
        boolean quick = where.endsWith("RANDOM");  // the random schedule is slow: one setting, one trial
        try (CudaBackend cuda = Devices.open(parts[0])) {
            if (parts.length > 1) {
                EmuGpu.schedule(EmuGpu.Schedule.valueOf(parts[1]), seed);
            }
            int vocab = 3000;
            int rows = 3;
            float[] logits = Devices.gaussian(random, rows * vocab, 2);
            for (int r = 0; r < rows; r++) {  // ties at the top, and many equal values around the k-th
                logits[r * vocab + 17] = 9f;
                logits[r * vocab + 2900] = 9f;
                for (int j = 0; j < 60; j++) {
                    logits[r * vocab + 100 + 37 * j] = 1.25f;
                }
            }
            Buf buf = cuda.allocate("logits", rows, vocab);
            Devices.put(cuda, buf, logits);
            int[] got = new int[rows];
            cuda.argmax(buf, rows, vocab, got);
            for (int r = 0; r < rows; r++) {
                assertEquals(Sampler.argmax(Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab)), got[r], "argmax of row " + r + at);
            }
            Buf probs = cuda.allocate("probs", rows, vocab);
            Devices.poison(cuda, probs);
            cuda.softmax(buf, rows, vocab, 0.7f, probs);
            float[] prob = new float[rows * vocab];
            cuda.download(probs, rows, prob);
            float[] exact = new float[rows * vocab];
            for (int r = 0; r < rows; r++) {
                double max = Double.NEGATIVE_INFINITY;
                double sum = 0;
                for (int j = 0; j < vocab; j++) {
                    max = Math.max(max, logits[r * vocab + j]);
                }
                for (int j = 0; j < vocab; j++) {
                    sum += Math.exp((logits[r * vocab + j] - max) / 0.7);
                }
                for (int j = 0; j < vocab; j++) {
                    exact[r * vocab + j] = (float) (Math.exp((logits[r * vocab + j] - max) / 0.7) / sum);
                }
            }
            double e = Devices.relErr(prob, exact, prob.length);
            if (!(e < 1e-5)) {
                fail("softmax at temperature 0.7: relative error " + e + at);
            }
            SamplerParams base = SamplerParams.defaults();
            SamplerParams[] settings = {
                base,                                                  // t 0.8, k 40, p 0.95, min-p 0.05
                base.withTopK(1000).withTopP(0.9f).withMinP(0).withTemperature(1.5f),
                base.withTopK(1024).withTopP(1).withMinP(0).withTemperature(1f),
                base.withTopK(70).withTopP(0.5f).withMinP(0.2f).withTemperature(0.3f),  // k cuts inside the tie at 1.25
                base.withTopK(1).withTemperature(1f),
            };
            for (SamplerParams p : quick ? Arrays.copyOf(settings, 1) : settings) {
                for (int trial = 0; trial < (quick ? 1 : 4); trial++) {
                    long s = random.nextLong();
                    SplittableRandom draws = new SplittableRandom(s);
                    double[] u = new double[rows];
                    for (int r = 0; r < rows; r++) {
                        u[r] = draws.nextDouble();
                    }
                    Sampler host = new Sampler(p.withSeed(s), vocab);
                    int[] want = new int[rows];
                    for (int r = 0; r < rows; r++) {
                        want[r] = host.sample(Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab));
                    }
                    cuda.sample(buf, rows, vocab, p.temperature(), p.topK(), p.topP(), p.minP(), u, got);
                    assertArrayEquals(want, got, "device sampling with " + p + at);
                }
            }
        }
    }
}
