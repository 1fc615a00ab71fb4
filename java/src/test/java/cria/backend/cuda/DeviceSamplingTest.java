// Sampling on the device gives exactly the tokens the host sampler gives from the same logits and seed.
package cria.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.TestModels;
import cria.backend.Backend;
import cria.engine.GenerateOptions;
import cria.engine.Generation;
import cria.engine.Model;
import cria.engine.Session;
import cria.engine.SessionOptions;
import cria.sample.SamplerParams;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
}
