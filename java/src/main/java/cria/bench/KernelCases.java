// The cases of `cria kernels`: one kernel family at one shape, set up on fresh random data, checked against ref, launched.
package cria.bench;

import cria.backend.AttnSpec;
import cria.backend.Backend;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.HostBuf;
import cria.backend.KvCache;
import cria.backend.Rope;
import cria.backend.Weight;
import cria.backend.cuda.AttentionKernels;
import cria.backend.cuda.CudaBackend;
import cria.backend.cuda.CudaBuf;
import cria.backend.cuda.CudaKvCache;
import cria.backend.cuda.CudaOps;
import cria.backend.cuda.CudaTypes;
import cria.backend.cuda.CudaWeight;
import cria.backend.cuda.FlashKernels;
import cria.backend.cuda.GemmKernels;
import cria.backend.cuda.GemvKernels;
import cria.backend.ref.RefBackend;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Each case owns its inputs: several copies of the weights (or KV layers) when one copy would sit
 * in L2 between launches, so that timed launches rotate through more bytes than the cache holds.
 * {@link Case#check} runs the kernel once and compares with the ref backend as the conformance
 * tests do ({@link Compare}); {@link Case#launch} queues one timed unit.
 * Geometry of the attention families: llama3-8b's (32 query heads, 8 KV heads, head size 128).
 */
final class KernelCases {
    static final int HEADS = 32;
    static final int KV_HEADS = 8;
    static final int HEAD_DIM = 128;
    static final int DIM = 4096;
    static final int FFN = 14336;

    private final CudaBackend cuda;
    private final Backend ref = new RefBackend();
    private final Random random;
    private final long rotateBytes;

    KernelCases(CudaBackend cuda, long seed, long rotateBytes) {
        this.cuda = cuda;
        this.random = new Random(seed);
        this.rotateBytes = rotateBytes;
    }

    /** One kernel at one shape. */
    abstract class Case implements AutoCloseable {
        final String family;
        final String kernel;
        final String shape;
        final List<Long> owned = new ArrayList<>();
        double relErr = Double.NaN;

        Case(String family, String kernel, String shape) {
            this.family = family;
            this.kernel = kernel;
            this.shape = shape;
        }

        /** Bytes one launch must move at least (inputs read once, outputs written once). */
        abstract double bytes();

        /** Floating-point operations of one launch (0 for the memory-bound families). */
        double flops() {
            return 0;
        }

        /** How many input sets the timed launches rotate through. */
        int sets() {
            return 1;
        }

        /** Runs once and compares with ref: null when right, else one line. */
        abstract String check();

        /** Queues one timed unit on input set {@code i % sets()}. */
        abstract void launch(int i);

        @Override
        public void close() {
            for (long p : owned) {
                cuda.gpu().free(p);
            }
            owned.clear();
        }

        /** Compares a CUDA buffer's first rows with a ref buffer's and records the error. */
        String compare(Buf c, Buf r, int rows, double tol) {
            float[] got = download(cuda, c, rows);
            float[] want = download(ref, r, rows);
            relErr = Compare.relErr(got, want, got.length);
            return Compare.check(got, want, got.length, c.cols(), tol);
        }
    }

    /** A case that runs over a KV cache on each side, inside one step: it ends the step and frees both caches. */
    abstract class CacheCase extends Case {
        private final KvCache cudaCache;
        private final KvCache refCache;

        CacheCase(String family, String kernel, String shape, KvCache cudaCache, KvCache refCache) {
            super(family, kernel, shape);
            this.cudaCache = cudaCache;
            this.refCache = refCache;
        }

        @Override
        public void close() {
            cuda.ops().endStep();
            cudaCache.close();
            refCache.close();
            super.close();
        }
    }

    // ---- helpers -------------------------------------------------------------------------------

    static float[] download(Backend b, Buf buf, int rows) {
        float[] a = new float[rows * buf.cols()];
        b.download(buf, rows, a);
        return a;
    }

    private void put(Backend b, Buf buf, float[] v) {
        if (buf instanceof HostBuf h) {
            MemorySegment.copy(v, 0, h.segment(), ValueLayout.JAVA_FLOAT, 0, v.length);
        } else {
            cuda.gpu().upload(((CudaBuf) buf).ptr(), MemorySegment.ofArray(v), 4L * v.length);
        }
    }

    private float[] gaussian(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (random.nextGaussian() * scale);
        }
        return a;
    }

    /** The same random values in a CUDA buffer and a ref buffer. */
    private Buf[] pair(String name, int rows, int cols, double scale) {
        float[] v = gaussian(rows * cols, scale);
        Buf c = cuda.allocate(name, rows, cols);
        Buf r = ref.allocate(name, rows, cols);
        put(cuda, c, v);
        put(ref, r, v);
        return new Buf[] {c, r};
    }

    private static long ptr(Buf b) {
        return ((CudaBuf) b).ptr();
    }

    /** The weight on the device plus copies, so that launches rotate over at least rotateBytes. */
    private long[] rotated(Case c, CudaWeight w) {
        int sets = (int) Math.max(1, Math.min(64, (rotateBytes + w.bytes() - 1) / Math.max(1, w.bytes())));
        long[] p = new long[sets];
        p[0] = w.ptr();
        for (int i = 1; i < sets; i++) {
            p[i] = cuda.gpu().malloc(w.bytes(), "a copy of a benchmark weight");
            c.owned.add(p[i]);
            cuda.gpu().copy(p[i], w.ptr(), w.bytes());
        }
        return p;
    }

    private CudaWeight upload(Tensor t) {
        CudaWeight w = (CudaWeight) cuda.weight(t);
        cuda.ops();  // uploads it
        return w;
    }

    // ---- products --------------------------------------------------------------------------------

    /** Decode: one row of x times a rows x cols weight (kernels/gemv.cu); null when gemv cannot take the shape. */
    Case gemv(GgmlType type, int rows, int cols) {
        if (!GemvKernels.eligible(type, cols, 1, cols)) {
            return null;
        }
        Tensor t = RandomWeights.matrix("w", type, rows, cols, random);
        return new Case("gemv", "gemv_" + CudaTypes.suffix(type), rows + "x" + cols) {
            final CudaWeight w = upload(t);
            final long[] sets = rotated(this, w);
            final Buf[] x = pair("x", 1, cols, 1);
            final Buf out = cuda.allocate("out", 1, rows);

            @Override
            double bytes() {
                return w.bytes() + 4.0 * cols + 4.0 * rows;
            }

            @Override
            int sets() {
                return sets.length;
            }

            @Override
            void launch(int i) {
                cuda.kernels().gemv.gemv(type, cols, ptr(x[0]), cols, 1,
                        new GemvKernels.Part[] {new GemvKernels.Part(sets[i % sets.length], rows, ptr(out), rows)}, GemvKernels.PLAIN, 0, 0);
            }

            @Override
            String check() {
                Buf want = ref.allocate("out", 1, rows);
                launch(0);
                ref.ops().matmul(x[1], 1, new Weight[] {ref.weight(t)}, new Buf[] {want});
                return compare(out, want, 1, 2e-5);
            }
        };
    }

    /** Prefill: n rows of x times a rows x cols weight on the tensor cores (the f16 conversion of x included). */
    Case gemm(GgmlType type, int rows, int cols, int n) {
        if (!GemmKernels.supports(type)) {
            return null;
        }
        Tensor t = RandomWeights.matrix("w", type, rows, cols, random);
        return new Case("gemm", "gemm_" + CudaTypes.suffix(type), rows + "x" + cols + " n=" + n) {
            final CudaWeight w = upload(t);
            final long[] sets = rotated(this, w);
            final Buf[] x = pair("x", n, cols, 1);
            final Buf out = cuda.allocate("out", n, rows);

            @Override
            double bytes() {
                return w.bytes() + 4.0 * n * cols + 4.0 * n * rows;
            }

            @Override
            double flops() {
                return 2.0 * rows * cols * n;
            }

            @Override
            int sets() {
                return sets.length;
            }

            @Override
            void launch(int i) {
                long xh = cuda.kernels().gemm.convert(ptr(x[0]), cols, cols, n);
                cuda.kernels().gemm.gemm(type, sets[i % sets.length], rows, cols, xh, n, ptr(out), rows);
            }

            @Override
            String check() {
                // ref on the first 128 weight rows (a full tile) only: the whole product would take minutes in Java
                int m = Math.min(rows, GemmKernels.BM);
                Tensor slice = new Tensor("w0", type, new long[] {cols, m}, t.data().asSlice(0, m * type.rowBytes(cols)));
                Buf want = ref.allocate("out", n, m);
                launch(0);
                ref.ops().matmul(x[1], n, new Weight[] {ref.weight(slice)}, new Buf[] {want});
                float[] all = download(cuda, out, n);
                Buf got = cuda.allocate("got", n, m);
                float[] g = new float[n * m];
                for (int i = 0; i < n; i++) {
                    System.arraycopy(all, i * rows, g, i * m, m);
                }
                put(cuda, got, g);
                return compare(got, want, n, 2e-3);
            }
        };
    }

    // ---- attention -------------------------------------------------------------------------------

    /** Fills positions [0, len) of one sequence in both caches (every CUDA layer gets layer 0's values). */
    private int fill(KvCache cc, KvCache rc, int len) {
        int seq = cc.newSequence();
        rc.newSequence();
        cc.reserve(seq, len);
        rc.reserve(seq, len);
        int kvDim = cc.kvDim();
        int chunk = Math.min(256, len);
        Batch b = new Batch(chunk);
        Buf[] k = {cuda.allocate("k", chunk, kvDim), ref.allocate("k", chunk, kvDim)};
        Buf[] v = {cuda.allocate("v", chunk, kvDim), ref.allocate("v", chunk, kvDim)};
        for (int from = 0; from < len; from += chunk) {
            int m = Math.min(chunk, len - from);
            b.clear();
            for (int i = 0; i < m; i++) {
                b.add(0, from + i, seq, false);
            }
            for (Buf[] kv : new Buf[][] {k, v}) {
                float[] vals = gaussian(chunk * kvDim, 1);
                put(cuda, kv[0], vals);
                put(ref, kv[1], vals);
            }
            cuda.ops().beginStep(b, cc);
            for (int layer = 0; layer < cc.config().layers(); layer++) {
                cuda.ops().storeKv(cc, layer, k[0], v[0], b);
            }
            cuda.ops().endStep();
            ref.ops().storeKv(rc, 0, k[1], v[1], b);
        }
        return seq;
    }

    /** Decode attention of one query at position len - 1 (split over the sequence, then merged). */
    Case attention(int len) {
        int kvDim = KV_HEADS * HEAD_DIM;
        long layerBytes = 2L * len * kvDim * 2;
        int layers = (int) Math.max(1, Math.min(64, (rotateBytes + layerBytes - 1) / layerBytes));
        int pages = (len + 15) / 16;
        KvCache cc = cuda.kvCache(new KvCache.Config(layers, kvDim, KvCache.Type.F16, 16, pages, 1, len));
        KvCache rc = ref.kvCache(new KvCache.Config(1, kvDim, KvCache.Type.F16, 16, pages, 1, len));
        int seq = fill(cc, rc, len);
        Batch batch = new Batch(1);
        batch.add(0, len - 1, seq, false);
        return new CacheCase("attention", "attention_f16", "ctx " + len, cc, rc) {
            final Buf[] q = pair("q", 1, HEADS * HEAD_DIM, 1);
            final Buf out = cuda.allocate("att", 1, HEADS * HEAD_DIM);
            final CudaKvCache c = (CudaKvCache) cc;

            @Override
            double bytes() {
                return layerBytes + 8.0 * HEADS * HEAD_DIM;
            }

            @Override
            int sets() {
                return layers;
            }

            @Override
            void launch(int i) {
                CudaOps ops = cuda.cudaOps();
                KvCache.Config g = cc.config();
                cuda.kernels().attention.attention(new AttentionKernels.Call(ptr(q[0]), q[0].cols(), true, c.keys(), c.values(),
                        ops.positions(), ops.sequences(), c.table(), g.maxPagesPerSequence(), g.pageSize(), g.pages(), i % layers, kvDim,
                        HEADS, KV_HEADS, HEAD_DIM, 1, len, ptr(out), out.cols()));
            }

            @Override
            String check() {
                cuda.ops().beginStep(batch, cc);  // the batch stays on the device while this case runs
                Buf want = ref.allocate("att", 1, HEADS * HEAD_DIM);
                launch(0);
                ref.ops().attention(q[1], rc, 0, HEADS, KV_HEADS, HEAD_DIM, AttnSpec.plain(HEAD_DIM), batch, want);
                return compare(out, want, 1, 1e-5);
            }
        };
    }

    /** Prompt attention of n queries at positions 0..n-1 of one sequence (causal, flash). */
    Case flash(int n) {
        int kvDim = KV_HEADS * HEAD_DIM;
        int pages = (n + 15) / 16;
        KvCache cc = cuda.kvCache(new KvCache.Config(1, kvDim, KvCache.Type.F16, 16, pages, 1, n));
        KvCache rc = ref.kvCache(new KvCache.Config(1, kvDim, KvCache.Type.F16, 16, pages, 1, n));
        int seq = fill(cc, rc, n);
        Batch batch = new Batch(n);
        for (int i = 0; i < n; i++) {
            batch.add(0, i, seq, false);
        }
        return new CacheCase("flash", "flash_f16_" + HEAD_DIM, "n=" + n + " causal", cc, rc) {
            final Buf[] q = pair("q", n, HEADS * HEAD_DIM, 1);
            final Buf out = cuda.allocate("att", n, HEADS * HEAD_DIM);
            final CudaKvCache c = (CudaKvCache) cc;

            @Override
            double bytes() {
                return 2.0 * n * kvDim * 2 + 8.0 * n * HEADS * HEAD_DIM;
            }

            @Override
            double flops() {
                return 4.0 * HEAD_DIM * HEADS * n * (n + 1.0) / 2;  // QK^T and PV over the causal triangle
            }

            @Override
            void launch(int i) {
                CudaOps ops = cuda.cudaOps();
                KvCache.Config g = cc.config();
                cuda.kernels().flash.attention(new FlashKernels.Call(ptr(q[0]), q[0].cols(), c.keys(), c.values(), ops.positions(),
                        ops.sequences(), c.table(), g.maxPagesPerSequence(), g.pageSize(), g.pages(), 0, kvDim, HEADS, KV_HEADS,
                        HEAD_DIM, batch, n, ptr(out), out.cols()), i > 0);
            }

            @Override
            String check() {
                cuda.ops().beginStep(batch, cc);
                launch(0);
                // ref for every 8th query (the whole causal triangle in Java takes long); rows compared as gathered
                int m = (n + 7) / 8;
                Batch some = new Batch(m);
                for (int i = 0; i < n; i += 8) {
                    some.add(0, i, seq, false);
                }
                float[] qAll = download(ref, q[1], n);
                Buf qs = ref.allocate("qs", m, HEADS * HEAD_DIM);
                float[] qv = new float[m * HEADS * HEAD_DIM];
                float[] all = download(cuda, out, n);
                float[] got = new float[m * HEADS * HEAD_DIM];
                for (int j = 0; j < m; j++) {
                    System.arraycopy(qAll, 8 * j * HEADS * HEAD_DIM, qv, j * HEADS * HEAD_DIM, HEADS * HEAD_DIM);
                    System.arraycopy(all, 8 * j * HEADS * HEAD_DIM, got, j * HEADS * HEAD_DIM, HEADS * HEAD_DIM);
                }
                put(ref, qs, qv);
                Buf want = ref.allocate("att", m, HEADS * HEAD_DIM);
                ref.ops().attention(qs, rc, 0, HEADS, KV_HEADS, HEAD_DIM, AttnSpec.plain(HEAD_DIM), some, want);
                Buf g = cuda.allocate("got", m, HEADS * HEAD_DIM);
                put(cuda, g, got);
                return compare(g, want, m, 3e-3);
            }
        };
    }

    // ---- row-wise kernels ------------------------------------------------------------------------

    /** rmsnorm of n rows of DIM values with an F32 weight. */
    Case rmsnorm(int n) {
        Tensor g = RandomWeights.matrix("norm", GgmlType.F32, 1, DIM, random);
        return new Case("rmsnorm", "rmsnorm_f32", "n=" + n + " x " + DIM) {
            final CudaWeight w = upload(g);
            final Buf[] x = pair("x", n, DIM, 3);
            final Buf out = cuda.allocate("out", n, DIM);

            @Override
            double bytes() {
                return 8.0 * n * DIM + 4.0 * DIM;
            }

            @Override
            void launch(int i) {
                cuda.kernels().rmsnorm.rmsnorm(ptr(x[0]), DIM, GgmlType.F32, w.ptr(), 1e-5f, DIM, n, ptr(out), DIM);
            }

            @Override
            String check() {
                Buf want = ref.allocate("out", n, DIM);
                launch(0);
                ref.ops().rmsnorm(x[1], ref.weight(g), 1e-5f, n, want);
                return compare(out, want, n, 1e-6);
            }
        };
    }

    /** a = silu(a) * b over n rows of FFN values (in place: the timed launches keep rewriting a). */
    Case swiglu(int n) {
        return new Case("swiglu", "eltwise_swiglu", "n=" + n + " x " + FFN) {
            final Buf[] a = pair("a", n, FFN, 2);
            final Buf[] b = pair("b", n, FFN, 1);

            @Override
            double bytes() {
                return 12.0 * n * FFN;
            }

            @Override
            void launch(int i) {
                cuda.kernels().eltwise.swiglu(ptr(a[0]), ptr(b[0]), n * FFN);
            }

            @Override
            String check() {
                launch(0);
                ref.ops().swiglu(a[1], b[1], n);
                return compare(a[0], a[1], n, 1e-6);
            }
        };
    }

    /** Rope of q and k fused with the f16 KV store, n rows at positions 0..n-1 (in place: later launches rotate again). */
    Case ropekv(int n) {
        int kvDim = KV_HEADS * HEAD_DIM;
        int pages = (n + 15) / 16;
        KvCache cc = cuda.kvCache(new KvCache.Config(1, kvDim, KvCache.Type.F16, 16, pages, 1, n));
        KvCache rc = ref.kvCache(new KvCache.Config(1, kvDim, KvCache.Type.F16, 16, pages, 1, n));
        int seq = cc.newSequence();
        rc.newSequence();
        cc.reserve(seq, n);
        rc.reserve(seq, n);
        Batch batch = new Batch(n);
        for (int i = 0; i < n; i++) {
            batch.add(0, i, seq, false);
        }
        Rope rope = new Rope(HEAD_DIM, 500000f, 1f, null, false);
        return new CacheCase("ropekv", "ropekv_norm_f16", "n=" + n, cc, rc) {
            final Buf[] q = pair("q", n, HEADS * HEAD_DIM, 1);
            final Buf[] k = pair("k", n, kvDim, 1);
            final Buf[] v = pair("v", n, kvDim, 1);

            @Override
            double bytes() {
                return 8.0 * n * (HEADS * HEAD_DIM + kvDim) + 4.0 * n * kvDim + 4.0 * n * kvDim;
            }

            @Override
            void launch(int i) {
                cuda.ops().ropeStoreKv(q[0], k[0], v[0], HEAD_DIM, batch, rope, cc, 0);  // one ropekv launch
            }

            @Override
            String check() {
                cuda.ops().beginStep(batch, cc);
                launch(0);
                ref.ops().rope(q[1], k[1], HEAD_DIM, batch, rope);
                ref.ops().storeKv(rc, 0, k[1], v[1], batch);
                String bad = compare(k[0], k[1], n, 1e-6);
                return bad != null ? bad : compare(q[0], q[1], n, 1e-6);
            }
        };
    }

    void close() {
        ref.close();
    }
}
