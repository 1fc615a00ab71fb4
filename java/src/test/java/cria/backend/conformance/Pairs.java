// One conformance case's workspace: the target's backend beside ref, buffers in pairs, compared under the tolerance table.
package cria.backend.conformance;

import static org.junit.jupiter.api.Assertions.fail;

import cria.backend.Backend;
import cria.backend.Buf;
import cria.backend.KvCache;
import cria.backend.Ops;
import cria.backend.Weight;
import cria.backend.conformance.Tolerances.Check;
import cria.backend.ref.RefBackend;
import cria.bench.Compare;
import cria.bench.RandomWeights;
import cria.gguf.GgmlType;
import cria.tensor.Codec;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * {@link #pair} makes a buffer on the target and one on ref holding the same values (or, for an
 * output, NaN on the target so an element the op never writes shows); {@link #same} compares rows
 * with {@link Compare}. Failures name the target and the check; the case adds the seed.
 * {@code -Dcria.test.errors=true} prints every measured error beside its bound (to revisit the table).
 */
final class Pairs implements AutoCloseable {
    final Target target;
    final Device dev;
    final Backend backend;  // the backend under test
    final Backend ref = new RefBackend();
    final Random random;
    private final List<AutoCloseable> open = new ArrayList<>();

    Pairs(Target target, long seed) {
        this.target = target;
        this.random = new Random(seed);
        this.dev = target.open(seed);
        this.backend = dev.backend();
    }

    /** The target's ops. */
    Ops ops() {
        return backend.ops();
    }

    /** Closes {@code c} when the case ends, before the backends. */
    <T extends AutoCloseable> T later(T c) {
        open.add(c);
        return c;
    }

    /** A buffer on each side. */
    record Pair(Buf t, Buf r) {}

    /** A weight made resident on each side. */
    record W(Weight t, Weight r) {}

    Pair pair(String name, int rows, int cols, float[] values) {
        Buf t = backend.allocate(name, rows, cols);
        Buf r = ref.allocate(name, rows, cols);
        if (values != null) {
            put(t, r, values);
        } else {
            dev.poison(t);
        }
        return new Pair(t, r);
    }

    void put(Buf t, Buf r, float[] values) {
        dev.put(t, values);
        Device.host(ref).put(r, values);
    }

    /** Writes the same values into both buffers of a pair. */
    void put(Pair p, float[] values) {
        put(p.t(), p.r(), values);
    }

    W weight(Tensor tensor) {
        return new W(backend.weight(tensor), ref.weight(tensor));
    }

    /** A random {@code rows x cols} weight of type {@code t} ({@link RandomWeights}: every bit pattern, sane scales). */
    Tensor matrix(String name, GgmlType t, int rows, int cols) {
        return RandomWeights.matrix(name, t, rows, cols, random);
    }

    /**
     * A {@code rows x cols} weight of type {@code t} as the quantizer makes it from gaussian values
     * (sd 0.5): the distribution of a real model's weights, where {@link #matrix} covers every bit pattern.
     */
    Tensor quantized(String name, GgmlType t, int rows, int cols) {
        Codec c = Codecs.of(t);
        MemorySegment seg = Arena.ofAuto().allocate(t.rowBytes(cols) * rows, 64);
        for (int r = 0; r < rows; r++) {
            float[] row = gaussian(cols, 0.5);
            c.quantize(row, 0, cols, seg, r * t.rowBytes(cols));
        }
        return new Tensor(name, t, new long[] {cols, rows}, seg);
    }

    float[] gaussian(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (random.nextGaussian() * scale);
        }
        return a;
    }

    /** Rows [0, n) of a buffer of the target. */
    float[] down(Buf buf, int n) {
        return down(backend, buf, n);
    }

    static float[] down(Backend b, Buf buf, int rows) {
        float[] a = new float[rows * buf.cols()];
        b.download(buf, rows, a);
        return a;
    }

    /** Rows [0, n) of a pair agree within the table's bound for {@code check} on this target. */
    void same(String what, Pair p, int n, Check check) {
        same(what, p, n, Tolerances.of(check, target.kind()));
    }

    /** Rows [0, n) of a pair agree within {@code tol} (relative RMS) and no element is far off. */
    void same(String what, Pair p, int n, double tol) {
        float[] got = down(backend, p.t(), n);
        float[] want = down(ref, p.r(), n);
        judge(what, got, want, p.t().cols(), tol);
    }

    /** {@code got} against {@code want} (rows of {@code cols} values) within {@code tol}. */
    void judge(String what, float[] got, float[] want, int cols, double tol) {
        String bad = Compare.check(got, want, got.length, cols, tol);
        if (Boolean.getBoolean("cria.test.errors")) {
            System.out.printf("[error] %-22s %-70s %.3g (limit %.3g)%n", target.name(), what, Compare.relErr(got, want, got.length), tol);
        }
        if (bad != null) {
            fail(target.name() + ": " + what + ": " + bad.replace("cuda ", "got "));
        }
    }

    /** Both caches hold the same K and V bytes. */
    void sameCache(String what, KvCache t, KvCache r) {
        byte[][] got = dev.cacheBytes(t);
        byte[][] want = Device.host(ref).cacheBytes(r);
        KvCache.Config c = r.config();
        for (int kv = 0; kv < 2; kv++) {
            for (int i = 0; i < want[kv].length; i++) {
                if (got[kv][i] != want[kv][i]) {
                    int el = i / c.type().bytes();
                    int d = el % r.kvDim();
                    int slot = el / r.kvDim() % r.pageSize();
                    int page = el / r.kvDim() / r.pageSize() % c.pages();
                    int layer = el / r.kvDim() / r.pageSize() / c.pages();
                    fail(target.name() + ": " + what + ": cache " + (kv == 0 ? "K" : "V") + " differs at layer " + layer + " page "
                            + page + " slot " + slot + " dim " + d);
                }
            }
        }
    }

    @Override
    public void close() {
        try {
            for (int i = open.size() - 1; i >= 0; i--) {
                open.get(i).close();
            }
        } catch (Exception e) {
            throw new IllegalStateException(e);
        } finally {
            dev.close();
            ref.close();
        }
    }
}
