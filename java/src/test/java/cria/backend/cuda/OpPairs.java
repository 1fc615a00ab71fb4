// Test helper: one CUDA backend (emulator or GPU) beside the ref backend, buffers in pairs, compared as the conformance test compares.
package cria.backend.cuda;

import static org.junit.jupiter.api.Assertions.fail;

import cria.backend.Backend;
import cria.backend.Buf;
import cria.backend.ref.RefBackend;
import cria.bench.Compare;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Opens {@code cuda} on a device (skipping when absent) and {@code ref}; {@link #pair} makes a
 * buffer on each holding the same values (or NaN on the CUDA side, so unwritten outputs show);
 * {@link #same} compares rows with {@link Compare} and names the first bad element and the seed.
 */
final class OpPairs implements AutoCloseable {
    final CudaBackend cuda;
    final Backend ref = new RefBackend();
    final Random random;
    final long seed;
    private final List<AutoCloseable> open = new ArrayList<>();

    OpPairs(String device) {
        seed = new Random().nextLong();
        random = new Random(seed);
        cuda = Devices.open(device);
    }

    /** Closes this at the end (caches and the like), before the backends. */
    <T extends AutoCloseable> T later(T c) {
        open.add(c);
        return c;
    }

    record Pair(Buf c, Buf r) {}

    Pair pair(String name, int rows, int cols, float[] values) {
        Buf c = cuda.allocate(name, rows, cols);
        Buf r = ref.allocate(name, rows, cols);
        if (values != null) {
            Devices.put(cuda, c, values);
            Devices.put(ref, r, values);
        } else {
            Devices.poison(cuda, c);
        }
        return new Pair(c, r);
    }

    float[] gaussian(int n, double scale) {
        return Devices.gaussian(random, n, scale);
    }

    static float[] down(Backend b, Buf buf, int rows) {
        float[] a = new float[rows * buf.cols()];
        b.download(buf, rows, a);
        return a;
    }

    /** Rows [0, n) of a pair agree within {@code tol} (relative RMS) and no element is far off. */
    void same(String what, Pair p, int n, double tol) {
        float[] got = down(cuda, p.c(), n);
        float[] want = down(ref, p.r(), n);
        String bad = Compare.check(got, want, got.length, p.c().cols(), tol);
        if (bad != null) {
            fail(what + ": " + bad + " [seed " + seed + "]");
        }
    }

    @Override
    public void close() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
        cuda.close();
        ref.close();
    }
}
