// The device KV cache's page copies: prefix sharing and copy on write move every layer's keys and values, and nothing else.
package cria.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import cria.backend.KvCache;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class CudaKvCacheTest {
    private static final int LAYERS = 3;
    private static final int KV_DIM = 8;
    private static final int PAGE = 4;

    /** Every float of K (then V) of every page, downloaded. */
    static float[] contents(CudaBackend b, CudaKvCache c, boolean keys) {
        float[] out = new float[(int) (c.config().bytes() / 2 / 4)];
        b.gpu().download(keys ? c.keys() : c.values(), MemorySegment.ofArray(out), 4L * out.length);
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void sharingCopiesThePartlyFilledPageOfEveryLayer(String device) {
        CudaBackend b = Devices.open(device);
        try (b; CudaKvCache c = (CudaKvCache) b.kvCache(new KvCache.Config(LAYERS, KV_DIM, KvCache.Type.F32, PAGE, 8, 2, 32))) {
            int src = c.newSequence();
            c.reserve(src, 10);
            float[] k = new float[(int) (c.config().bytes() / 2 / 4)];
            float[] v = new float[k.length];
            for (int i = 0; i < k.length; i++) {
                k[i] = i + 1;
                v[i] = -(i + 1);
            }
            b.gpu().upload(c.keys(), MemorySegment.ofArray(k), 4L * k.length);
            b.gpu().upload(c.values(), MemorySegment.ofArray(v), 4L * v.length);
            int dst = c.newSequence();
            c.sharePrefix(src, dst, 9);              // pages 0, 1 shared; page 2 copied
            assertEquals(c.page(src, 0), c.page(dst, 0));
            int from = c.page(src, 8);
            int to = c.page(dst, 8);
            assertNotEquals(from, to);
            float[] k2 = contents(b, c, true);
            float[] v2 = contents(b, c, false);
            float[] kWant = k.clone();
            float[] vWant = v.clone();
            for (int l = 0; l < LAYERS; l++) {
                int n = PAGE * KV_DIM;
                System.arraycopy(k, (int) c.index(l, from, 0), kWant, (int) c.index(l, to, 0), n);
                System.arraycopy(v, (int) c.index(l, from, 0), vWant, (int) c.index(l, to, 0), n);
            }
            assertArrayEquals(kWant, k2, "keys: the copied page of every layer, nothing else changed");
            assertArrayEquals(vWant, v2, "values: the copied page of every layer, nothing else changed");
        }
    }
}
