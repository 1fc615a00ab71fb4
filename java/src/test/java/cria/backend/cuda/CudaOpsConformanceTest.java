// Every CUDA op against the ref backend on fresh random inputs, for every weight type: on the kernel emulator and on a GPU.
package cria.backend.cuda;

import static cria.backend.cuda.Devices.gaussian;
import static cria.backend.cuda.Devices.put;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import cria.backend.Backend;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.HostKvCache;
import cria.backend.KvCache;
import cria.backend.Rope;
import cria.backend.Weight;
import cria.backend.ref.RefBackend;
import cria.bench.Compare;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * ARCHITECTURE.md rule 5 for the CUDA backend. Each test runs the op on the CUDA backend and on
 * {@code ref} with the same inputs and compares: ||cuda - ref|| / ||ref|| under a bound per op
 * (f32 accumulation in a different order; f16 rounding where the cache is f16), every output
 * element written (outputs start as NaN), and on failure the first wrong element with its
 * coordinates. "emulator" runs the kernel sources on the CPU (skipped without g++ and libffi);
 * "gpu" runs them on a device (skipped without one).
 */
class CudaOpsConformanceTest {
    private final List<AutoCloseable> open = new ArrayList<>();
    private CudaBackend cuda;
    private Backend ref;
    private final Random random = new Random(System.nanoTime());
    private long seed;
    /** Fewer cases per body (the slow random-schedule runs). */
    private boolean quick;

    private void setUp(String device) {
        seed = random.nextLong();
        random.setSeed(seed);
        cuda = Devices.open(device);
        ref = new RefBackend();
        open.add(cuda);
        open.add(ref);
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
        open.clear();
        EmuGpu.schedule(EmuGpu.Schedule.FORWARD, 0);
    }

    private String where() {
        return " [seed " + seed + "]";
    }

    /** A pair of buffers, one per backend, holding the same values. */
    private record Pair(Buf c, Buf r) {}

    private Pair pair(String name, int rows, int cols, float[] values) {
        Buf c = cuda.allocate(name, rows, cols);
        Buf r = ref.allocate(name, rows, cols);
        if (values != null) {
            put(cuda, c, values);
            put(ref, r, values);
        } else {
            Devices.poison(cuda, c);
        }
        return new Pair(c, r);
    }

    private float[] down(Backend b, Buf buf, int rows) {
        float[] a = new float[rows * buf.cols()];
        b.download(buf, rows, a);
        return a;
    }

    /** Compares rows [0, n) of a pair ({@link Compare}, as {@code cria kernels} does); on failure names the first wrong element. */
    private void same(String what, Pair p, int n, double tol) {
        float[] got = down(cuda, p.c(), n);
        float[] want = down(ref, p.r(), n);
        String bad = Compare.check(got, want, got.length, p.c().cols(), tol);
        if (bad != null) {
            fail(what + ": " + bad + where());
        }
    }

    // ---- matmul and embed: every weight type --------------------------------------------------

    /** Column counts exercising full chunks, K-quant super-blocks and (float types) partial chunks. */
    private static int[] colsFor(GgmlType t) {
        if (t.blockSize() == 256) {
            return new int[] {256, 768};
        }
        if (t.blockSize() == 32) {
            return new int[] {32, 160};
        }
        return new int[] {64, 172, 100};  // 172: stories260K's ffn (not a multiple of 32); 100: not of 8 either
    }

    private static double matmulTolerance(GgmlType t) {
        return t == GgmlType.F32 || t == GgmlType.F16 || t == GgmlType.BF16 ? 1e-5 : 2e-5;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void matmulEveryType(String device) {
        setUp(device);
        matmulEveryTypeBody();
    }

    private void matmulEveryTypeBody() {
        for (GgmlType t : CudaTypes.all()) {
            for (int cols : colsFor(t)) {
                int rows = 37;  // not a multiple of the 4 rows per block
                Tensor w = RandomTensors.matrix("w." + t, t, rows, cols, random);
                Weight wc = cuda.weight(w);
                Weight wr = ref.weight(w);
                for (int n : new int[] {1, 9}) {  // 9 entries span two blocks of 8
                    int xStride = cols + (n == 9 ? 4 : 0);  // a padded input row once
                    Pair x = pair("x", n, xStride, gaussian(random, n * xStride, 1));
                    Pair out = pair("out", n, rows, null);
                    cuda.ops().matmul(x.c(), n, new Weight[] {wc}, new Buf[] {out.c()});
                    ref.ops().matmul(x.r(), n, new Weight[] {wr}, new Buf[] {out.r()});
                    same("matmul " + t + " rows " + rows + " cols " + cols + " n " + n, out, n, matmulTolerance(t));
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void matmulSeveralWeightsOneInput(String device) {
        setUp(device);
        matmulSeveralWeightsOneInputBody();
    }

    private void matmulSeveralWeightsOneInputBody() {
        int cols = 512;
        Tensor a = RandomTensors.matrix("a", GgmlType.Q4_K, 64, cols, random);
        Tensor b = RandomTensors.matrix("b", GgmlType.Q6_K, 16, cols, random);
        Tensor c = RandomTensors.matrix("c", GgmlType.Q8_0, 16, cols, random);
        int n = 3;
        Pair x = pair("x", n, cols, gaussian(random, n * cols, 1));
        Pair[] outs = {pair("oa", n, 64, null), pair("ob", n, 16, null), pair("oc", n, 16, null)};
        cuda.ops().matmul(x.c(), n, new Weight[] {cuda.weight(a), cuda.weight(b), cuda.weight(c)},
                new Buf[] {outs[0].c(), outs[1].c(), outs[2].c()});
        ref.ops().matmul(x.r(), n, new Weight[] {ref.weight(a), ref.weight(b), ref.weight(c)},
                new Buf[] {outs[0].r(), outs[1].r(), outs[2].r()});
        for (Pair o : outs) {
            same("matmul q/k/v-like triple", o, n, 2e-5);
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void embedEveryType(String device) {
        setUp(device);
        embedEveryTypeBody();
    }

    private void embedEveryTypeBody() {
        for (GgmlType t : CudaTypes.all()) {
            for (int cols : colsFor(t)) {
                int vocab = 50;
                Tensor table = RandomTensors.matrix("emb." + t, t, vocab, cols, random);
                Batch batch = new Batch(6);
                for (int i = 0; i < 6; i++) {
                    batch.add(i == 3 ? batch.token(1) : random.nextInt(vocab), i, 0, false);  // a repeated token too
                }
                Pair x = pair("x", 6, cols, null);
                cuda.ops().embed(cuda.weight(table), batch, x.c());
                ref.ops().embed(ref.weight(table), batch, x.r());
                same("embed " + t + " cols " + cols, x, 6, 1e-6);
            }
        }
    }

    // ---- rmsnorm, rope, element-wise ------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void rmsnormWeightTypesAndInPlace(String device) {
        setUp(device);
        rmsnormWeightTypesAndInPlaceBody();
    }

    private void rmsnormWeightTypesAndInPlaceBody() {
        for (GgmlType t : new GgmlType[] {GgmlType.F32, GgmlType.F16, GgmlType.BF16}) {
            for (int cols : new int[] {64, 172, 2048}) {
                int n = 3;
                Tensor g = RandomTensors.matrix("norm." + t, t, 1, cols, random);
                float[] xv = gaussian(random, n * cols, 3);
                Pair x = pair("x", n, cols, xv);
                Pair out = pair("out", n, cols, null);
                cuda.ops().rmsnorm(x.c(), cuda.weight(g), 1e-5f, n, out.c());
                ref.ops().rmsnorm(x.r(), ref.weight(g), 1e-5f, n, out.r());
                same("rmsnorm " + t + " cols " + cols, out, n, 1e-6);
                cuda.ops().rmsnorm(x.c(), cuda.weight(g), 1e-5f, n, x.c());  // out == x
                ref.ops().rmsnorm(x.r(), ref.weight(g), 1e-5f, n, x.r());
                same("rmsnorm in place " + t + " cols " + cols, x, n, 1e-6);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void ropeNormalNeoxPartialScaledLlama3(String device) {
        setUp(device);
        ropeNormalNeoxPartialScaledLlama3Body();
    }

    private void ropeNormalNeoxPartialScaledLlama3Body() {
        int headDim = 64;
        int qHeads = 4;
        int kHeads = 2;
        int n = 5;
        for (boolean neox : new boolean[] {false, true}) {
            for (int dims : new int[] {64, 32}) {
                float[] factors = new float[dims / 2];
                for (int i = 0; i < factors.length; i++) {
                    factors[i] = 1 + 7 * random.nextFloat();
                }
                for (Rope rope : new Rope[] {new Rope(dims, 10000f, 1f, null, neox), new Rope(dims, 500000f, 0.25f, factors, neox)}) {
                    Batch batch = new Batch(n);
                    for (int i = 0; i < n; i++) {
                        batch.add(0, i == 0 ? 0 : random.nextInt(9000), i % 2, false);
                    }
                    Pair q = pair("q", n, qHeads * headDim, gaussian(random, n * qHeads * headDim, 1));
                    Pair k = pair("k", n, kHeads * headDim, gaussian(random, n * kHeads * headDim, 1));
                    cuda.ops().rope(q.c(), k.c(), headDim, batch, rope);
                    ref.ops().rope(q.r(), k.r(), headDim, batch, rope);
                    String what = "rope neox=" + neox + " dims " + dims + " factors=" + (rope.factors() != null);
                    same(what + " q", q, n, 1e-6);
                    same(what + " k", k, n, 1e-6);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void swigluAddGather(String device) {
        setUp(device);
        swigluAddGatherBody();
    }

    private void swigluAddGatherBody() {
        int n = 3;
        int cols = 173;  // a scalar tail after the 16-byte groups
        Pair a = pair("a", n, cols, gaussian(random, n * cols, 4));
        Pair b = pair("b", n, cols, gaussian(random, n * cols, 1));
        cuda.ops().swiglu(a.c(), b.c(), n);
        ref.ops().swiglu(a.r(), b.r(), n);
        same("swiglu", a, n, 1e-6);
        cuda.ops().add(a.c(), b.c(), n);
        ref.ops().add(a.r(), b.r(), n);
        same("add", a, n, 1e-6);
        float[] fresh = gaussian(random, n * cols, 1);  // identical sources: gather must copy exactly
        put(cuda, a.c(), fresh);
        put(ref, a.r(), fresh);
        int[] rows = {2, 0, 2};
        Pair out = pair("out", 3, cols, null);
        cuda.ops().gather(a.c(), rows, 3, out.c());
        ref.ops().gather(a.r(), rows, 3, out.r());
        same("gather", out, 3, 0);
    }

    // ---- KV cache and attention -----------------------------------------------------------------

    /** Fills both caches with the same random keys and values for sequences of the given lengths; returns the sequence ids. */
    private int[] fill(KvCache cc, KvCache rc, int layers, int[] lengths, int chunk) {
        int kvDim = cc.kvDim();
        int[] seqs = new int[lengths.length];
        for (int s = 0; s < lengths.length; s++) {
            seqs[s] = cc.newSequence();
            assertEquals(seqs[s], rc.newSequence());
            cc.reserve(seqs[s], lengths[s]);
            rc.reserve(seqs[s], lengths[s]);
        }
        Pair k = pair("k", chunk, kvDim, null);
        Pair v = pair("v", chunk, kvDim, null);
        Batch batch = new Batch(chunk);
        // interleave the sequences' positions in mixed batches, as continuous batching would
        List<int[]> todo = new ArrayList<>();
        int longest = 0;
        for (int len : lengths) {
            longest = Math.max(longest, len);
        }
        for (int p = 0; p < longest; p++) {
            for (int s = 0; s < lengths.length; s++) {
                if (p < lengths[s]) {
                    todo.add(new int[] {seqs[s], p});
                }
            }
        }
        for (int from = 0; from < todo.size(); from += chunk) {
            int m = Math.min(chunk, todo.size() - from);
            batch.clear();
            for (int i = 0; i < m; i++) {
                batch.add(0, todo.get(from + i)[1], todo.get(from + i)[0], false);
            }
            for (int layer = 0; layer < layers; layer++) {
                float[] kv = gaussian(random, m * kvDim, 1);
                float[] vv = gaussian(random, m * kvDim, 1);
                put(cuda, k.c(), kv);
                put(ref, k.r(), kv);
                put(cuda, v.c(), vv);
                put(ref, v.r(), vv);
                cuda.ops().beginStep(batch, cc);
                cuda.ops().storeKv(cc, layer, k.c(), v.c(), batch);
                cuda.ops().endStep();
                ref.ops().storeKv(rc, layer, k.r(), v.r(), batch);
            }
        }
        return seqs;
    }

    /** The cache's K and V storage as read back from the device, compared byte for byte with ref's. */
    private void sameCache(CudaKvCache cc, HostKvCache rc) {
        long bytes = rc.config().bytes() / 2;
        for (int kv = 0; kv < 2; kv++) {
            byte[] got = new byte[(int) bytes];
            cuda.gpu().download(kv == 0 ? cc.keys() : cc.values(), MemorySegment.ofArray(got), bytes);
            byte[] want = (kv == 0 ? rc.keys() : rc.values()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            int pages = rc.config().pages();
            for (int i = 0; i < got.length; i++) {
                if (got[i] != want[i]) {
                    int el = i / rc.config().type().bytes();
                    int d = el % rc.kvDim();
                    int slot = el / rc.kvDim() % rc.pageSize();
                    int page = el / rc.kvDim() / rc.pageSize() % pages;
                    int layer = el / rc.kvDim() / rc.pageSize() / pages;
                    fail("storeKv " + (kv == 0 ? "K" : "V") + " differs at layer " + layer + " page " + page + " slot " + slot
                            + " dim " + d + where());
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void storeKvAndAttentionGqaPagedSplit(String device) {
        setUp(device);
        storeKvAndAttentionGqaPagedSplitBody();
    }

    private void storeKvAndAttentionGqaPagedSplitBody() {
        record Geometry(int heads, int kvHeads, int headDim, KvCache.Type type) {}
        Geometry[] geometries = {
            new Geometry(8, 2, 64, KvCache.Type.F16),
            new Geometry(4, 4, 8, KvCache.Type.F32),    // stories260K-like tiny heads, no grouping
            new Geometry(4, 1, 256, KvCache.Type.F16),  // the largest head size, two outputs per thread
        };
        for (Geometry g : quick ? java.util.Arrays.copyOf(geometries, 1) : geometries) {
            int layers = 2;
            int kvDim = g.kvHeads() * g.headDim();
            KvCache.Config config = new KvCache.Config(layers, kvDim, g.type(), 16, 48, 3, 400);
            KvCache cc = cuda.kvCache(config);
            KvCache rc = ref.kvCache(config);
            open.add(cc);
            open.add(rc);
            int[] lengths = {301, 37, 1};
            int[] seqs = fill(cc, rc, layers, lengths, 7);
            sameCache((CudaKvCache) cc, (HostKvCache) rc);
            // queries: ends of each sequence and a middle position (attends over a prefix only)
            int[][] entries = {{seqs[0], 300}, {seqs[1], 36}, {seqs[0], 130}, {seqs[2], 0}};
            Batch batch = new Batch(entries.length);
            for (int[] e : entries) {
                batch.add(0, e[1], e[0], false);
            }
            int n = entries.length;
            int qDim = g.heads() * g.headDim();
            Pair q = pair("q", n, qDim, gaussian(random, n * qDim, 1));
            for (int splits : quick ? new int[] {0, 3} : new int[] {0, 1, 3, 7}) {
                cuda.kernels().attention.forceSplits(splits);
                Pair out = pair("att", n, qDim, null);
                cuda.ops().beginStep(batch, cc);
                cuda.ops().attention(q.c(), cc, 1, g.heads(), g.kvHeads(), g.headDim(), batch, out.c());
                cuda.ops().endStep();
                ref.ops().attention(q.r(), rc, 1, g.heads(), g.kvHeads(), g.headDim(), batch, out.r());
                same("attention " + g + " splits " + (splits == 0 ? "auto" : splits), out, n, 1e-5);
            }
            cuda.kernels().attention.forceSplits(0);
        }
    }

    // ---- fused ops: each against the plain ops it stands for, run by ref --------------------------

    /**
     * rmsnormMatmul, rmsnormGateUpSwiglu and matmulAdd for every weight type, at widths the gemv
     * kernel takes: one row (the fused kernels: norm folded in for f32 norm weights, run first for
     * bf16 ones; SwiGLU fused where the type has two rows per warp) and three rows (the plain
     * kernels). Every buffer the plain ops write must hold the same afterwards.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void fusedProductsEveryType(String device) {
        setUp(device);
        fusedProductsEveryTypeBody(CudaTypes.all());
    }

    private void fusedProductsEveryTypeBody(Iterable<GgmlType> types) {
        for (GgmlType t : types) {
            int dim = CudaDecodeTest.colsFor(t);
            Tensor wq = RandomTensors.matrix("q", t, 40, dim, random);
            Tensor wk = RandomTensors.matrix("k", t, 24, dim, random);
            Tensor wv = RandomTensors.matrix("v", t, 24, dim, random);
            Tensor gate = RandomTensors.matrix("gate", t, 48, dim, random);
            Tensor up = RandomTensors.matrix("up", t, 48, dim, random);
            Tensor wo = RandomTensors.matrix("o", t, 37, dim, random);
            for (GgmlType normType : new GgmlType[] {GgmlType.F32, GgmlType.BF16}) {
                Tensor g = RandomTensors.matrix("norm", normType, 1, dim, random);
                for (int n : new int[] {1, 3}) {
                    String what = t + " dim " + dim + " norm " + normType + " n " + n;
                    Pair x = pair("x", n, dim, gaussian(random, n * dim, 3));
                    Pair xb = pair("xb", n, dim, null);
                    Pair q = pair("q", n, 40, null);
                    Pair k = pair("k", n, 24, null);
                    Pair v = pair("v", n, 24, null);
                    cuda.ops().rmsnormMatmul(x.c(), cuda.weight(g), 1e-5f, n, xb.c(),
                            new Weight[] {cuda.weight(wq), cuda.weight(wk), cuda.weight(wv)}, new Buf[] {q.c(), k.c(), v.c()});
                    ref.ops().rmsnorm(x.r(), ref.weight(g), 1e-5f, n, xb.r());
                    ref.ops().matmul(xb.r(), n, new Weight[] {ref.weight(wq), ref.weight(wk), ref.weight(wv)},
                            new Buf[] {q.r(), k.r(), v.r()});
                    same("rmsnormMatmul: the normalized rows, " + what, xb, n, 1e-6);
                    same("rmsnormMatmul: q, " + what, q, n, 2e-5);
                    same("rmsnormMatmul: k, " + what, k, n, 2e-5);
                    same("rmsnormMatmul: v, " + what, v, n, 2e-5);

                    Pair a = pair("hb", n, 48, null);
                    Pair b = pair("hb2", n, 48, null);
                    Devices.poison(cuda, xb.c());
                    cuda.ops().rmsnormGateUpSwiglu(x.c(), cuda.weight(g), 1e-5f, n, xb.c(), cuda.weight(gate), cuda.weight(up), a.c(), b.c());
                    ref.ops().rmsnorm(x.r(), ref.weight(g), 1e-5f, n, xb.r());
                    ref.ops().matmul(xb.r(), n, new Weight[] {ref.weight(gate), ref.weight(up)}, new Buf[] {a.r(), b.r()});
                    ref.ops().swiglu(a.r(), b.r(), n);
                    same("rmsnormGateUpSwiglu: the normalized rows, " + what, xb, n, 1e-6);
                    same("rmsnormGateUpSwiglu: silu(gate) * up, " + what, a, n, 2e-5);
                    same("rmsnormGateUpSwiglu: up, " + what, b, n, 2e-5);

                    Pair o = pair("o", n, 37, null);
                    Pair res = pair("res", n, 37, gaussian(random, n * 37, 1));
                    cuda.ops().matmulAdd(xb.c(), n, cuda.weight(wo), o.c(), res.c());
                    ref.ops().matmul(xb.r(), n, new Weight[] {ref.weight(wo)}, new Buf[] {o.r()});
                    ref.ops().add(res.r(), o.r(), n);
                    same("matmulAdd: the product, " + what, o, n, 2e-5);
                    same("matmulAdd: the sum, " + what, res, n, 2e-5);

                    // the logits' form: normalized in place, then one product (no folding)
                    Pair logits = pair("logits", n, 37, null);
                    cuda.ops().rmsnormMatmul(x.c(), cuda.weight(g), 1e-5f, n, x.c(), new Weight[] {cuda.weight(wo)}, new Buf[] {logits.c()});
                    ref.ops().rmsnorm(x.r(), ref.weight(g), 1e-5f, n, x.r());
                    ref.ops().matmul(x.r(), n, new Weight[] {ref.weight(wo)}, new Buf[] {logits.r()});
                    same("rmsnormMatmul in place: the normalized rows, " + what, x, n, 1e-6);
                    same("rmsnormMatmul in place: the product, " + what, logits, n, 2e-5);
                }
            }
        }
    }

    /**
     * ropeStoreKv against rope then storeKv on ref: f16 and f32 caches, llama and NeoX pairs, all
     * or half the head rotated; k exactly kvDim wide (one ropekv kernel) and wider (rope, then the
     * store). q and k must come back rotated and the cache hold what attention then reads.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void ropeStoreKvMatchesRopeThenStore(String device) {
        setUp(device);
        int headDim = 64;
        int heads = 4;
        int kvHeads = 2;
        int kvDim = kvHeads * headDim;
        for (KvCache.Type type : KvCache.Type.values()) {
            for (Rope rope : new Rope[] {new Rope(64, 10000f, 1f, null, false), new Rope(32, 500000f, 1f, null, true)}) {
                for (int kCols : new int[] {kvDim, kvDim + headDim}) {
                    KvCache.Config config = new KvCache.Config(2, kvDim, type, 16, 16, 2, 128);
                    KvCache cc = cuda.kvCache(config);
                    KvCache rc = ref.kvCache(config);
                    open.add(cc);
                    open.add(rc);
                    int s0 = cc.newSequence();
                    rc.newSequence();
                    int s1 = cc.newSequence();
                    rc.newSequence();
                    for (int sq : new int[] {s0, s1}) {
                        cc.reserve(sq, 100);
                        rc.reserve(sq, 100);
                    }
                    Batch batch = new Batch(3);
                    batch.add(0, 17, s0, false);
                    batch.add(0, 99, s1, false);
                    batch.add(0, 0, s1, false);
                    int n = batch.size();
                    Pair q = pair("q", n, heads * headDim, gaussian(random, n * heads * headDim, 1));
                    Pair k = pair("k", n, kCols, gaussian(random, n * kCols, 1));
                    Pair v = pair("v", n, kvDim, gaussian(random, n * kvDim, 1));
                    cuda.ops().beginStep(batch, cc);
                    cuda.ops().ropeStoreKv(q.c(), k.c(), v.c(), headDim, batch, rope, cc, 1);
                    cuda.ops().endStep();
                    ref.ops().rope(q.r(), k.r(), headDim, batch, rope);
                    ref.ops().storeKv(rc, 1, k.r(), v.r(), batch);
                    String what = type + " cache, neox=" + rope.neox() + " dims " + rope.dims() + ", k " + kCols + " wide";
                    same("ropeStoreKv: q, " + what, q, n, 1e-6);
                    same("ropeStoreKv: k, " + what, k, n, 1e-6);
                    same("ropeStoreKv: v unchanged, " + what, v, n, 0);
                    Pair att = pair("att", n, heads * headDim, null);
                    cuda.ops().attention(q.c(), cc, 1, heads, kvHeads, headDim, batch, att.c());
                    ref.ops().attention(q.r(), rc, 1, heads, kvHeads, headDim, batch, att.r());
                    same("attention over what ropeStoreKv stored, " + what, att, n, 1e-5);
                }
            }
        }
    }

    // ---- sampling -------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void argmaxAndTopKSamplingMatchTheHostSampler(String device) {
        setUp(device);
        argmaxAndTopKSamplingMatchTheHostSamplerBody();
    }

    private void argmaxAndTopKSamplingMatchTheHostSamplerBody() {
        int vocab = 3000;
        int rows = 3;
        float[] logits = gaussian(random, rows * vocab, 2);
        for (int r = 0; r < rows; r++) {  // ties at the top, and many equal values around the k-th
            logits[r * vocab + 17] = 9f;
            logits[r * vocab + 2900] = 9f;
            for (int j = 0; j < 60; j++) {
                logits[r * vocab + 100 + 37 * j] = 1.25f;
            }
        }
        Buf buf = cuda.allocate("logits", rows, vocab);
        put(cuda, buf, logits);
        int[] got = new int[rows];
        cuda.argmax(buf, rows, vocab, got);
        for (int r = 0; r < rows; r++) {
            float[] row = java.util.Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab);
            assertEquals(cria.sample.Sampler.argmax(row), got[r], "argmax of row " + r + where());
        }
        Buf probs = cuda.allocate("probs", rows, vocab);
        Devices.poison(cuda, probs);
        cuda.softmax(buf, rows, vocab, 0.7f, probs);
        float[] prob = down(cuda, probs, rows);
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
            fail("softmax at temperature 0.7: relative error " + e + where());
        }
        cria.sample.SamplerParams base = cria.sample.SamplerParams.defaults();
        cria.sample.SamplerParams[] settings = {
            base,                                                  // t 0.8, k 40, p 0.95, min-p 0.05
            base.withTopK(1000).withTopP(0.9f).withMinP(0).withTemperature(1.5f),
            base.withTopK(1024).withTopP(1).withMinP(0).withTemperature(1f),
            base.withTopK(70).withTopP(0.5f).withMinP(0.2f).withTemperature(0.3f),  // k cuts inside the tie at 1.25
            base.withTopK(1).withTemperature(1f),
        };
        for (cria.sample.SamplerParams p : quick ? java.util.Arrays.copyOf(settings, 1) : settings) {
            for (int trial = 0; trial < (quick ? 1 : 4); trial++) {
                long s = random.nextLong();
                java.util.SplittableRandom draws = new java.util.SplittableRandom(s);
                double[] u = new double[rows];
                for (int r = 0; r < rows; r++) {
                    u[r] = draws.nextDouble();
                }
                cria.sample.Sampler host = new cria.sample.Sampler(p.withSeed(s), vocab);
                int[] want = new int[rows];
                for (int r = 0; r < rows; r++) {
                    want[r] = host.sample(java.util.Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab));
                }
                cuda.sample(buf, rows, vocab, p.temperature(), p.topK(), p.topP(), p.minP(), u, got);
                assertArrayEquals(want, got, "device sampling with " + p + where());
            }
        }
    }

    // ---- races: the same kernels with each block's threads in other orders -------------------

    /**
     * The emulator runs a block's threads one at a time, switching at barriers and shuffles; in
     * the fixed forward order some missing barriers go unnoticed. Reverse order, and a random
     * order that also delays threads (letting others overtake them), expose those.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"REVERSE", "RANDOM"})
    void emulatorOtherSchedulesFindNoRace(String schedule) {
        setUp(Devices.EMULATOR);
        EmuGpu.schedule(EmuGpu.Schedule.valueOf(schedule), seed);
        quick = schedule.equals("RANDOM");
        rmsnormWeightTypesAndInPlaceBody();
        swigluAddGatherBody();
        matmulSeveralWeightsOneInputBody();
        storeKvAndAttentionGqaPagedSplitBody();
        argmaxAndTopKSamplingMatchTheHostSamplerBody();
        fusedProductsEveryTypeBody(quick ? List.of(GgmlType.Q4_0) : List.of(GgmlType.Q4_0, GgmlType.Q6_K, GgmlType.F16));
    }
}
