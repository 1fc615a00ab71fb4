// The decode kernels against ref: staged gemv of every type, and the fused forms (product + add, gate/up + SwiGLU, rope + KV store).
package cria.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.AttnSpec;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.KvCache;
import cria.backend.Rope;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.model.Llama;
import cria.model.LlamaConfig;
import cria.model.LlamaWeights;
import cria.tensor.Tensor;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * One-row products take kernels/gemv.cu (rows streamed through shared memory by cp.async), and
 * CudaOps runs the fused ops of Ops as one kernel each: a product with the residual add
 * (matmulAdd), gate/up with SwiGLU and the norm folded in (rmsnormGateUpSwiglu), the norm folded
 * into q/k/v (rmsnormMatmul), rope with the KV store (ropeStoreKv). All of it is f32 arithmetic,
 * so the bounds are the float-rounding ones of the op conformance test, and every output the
 * separate ops write must be written the same (ref runs the separate ops).
 */
class CudaDecodeTest {

    /** A width of a few 1024-value windows, partial at the end, whose rows are whole 16-byte pieces. */
    static int colsFor(GgmlType t) {
        if (t.blockSize() == 1) {
            return t == GgmlType.F32 ? 1100 : 1096;  // partial last chunk too
        }
        int c = t.blockSize() == 256 ? 1280 : 1120;
        while (t.rowBytes(c) % 16 != 0) {
            c += t.blockSize();
        }
        return c;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void stagedProductsOfEveryTypeMatchRef(String device) throws Exception {
        try (OpPairs p = new OpPairs(device)) {
            for (GgmlType t : CudaTypes.all()) {
                int cols = colsFor(t);
                int rows = 37;  // not a multiple of rows per warp or per block
                assertEquals(true, GemvKernels.eligible(t, cols, 1, cols), t + " " + cols);
                Tensor w = RandomTensors.matrix("w." + t, t, rows, cols, p.random);
                Weight wc = p.cuda.weight(w);
                Weight wr = p.ref.weight(w);
                for (int n : new int[] {1, 3}) {
                    OpPairs.Pair x = p.pair("x", n, cols, p.gaussian(n * cols, 1));
                    OpPairs.Pair out = p.pair("out", n, rows, null);
                    p.cuda.ops().matmul(x.c(), n, new Weight[] {wc}, new Buf[] {out.c()});
                    p.ref.ops().matmul(x.r(), n, new Weight[] {wr}, new Buf[] {out.r()});
                    p.same("gemv " + t + " cols " + cols + " n " + n, out, n, 2e-5);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void fusedProductsWriteWhatTheSeparateOpsWrite(String device) throws Exception {
        try (OpPairs p = new OpPairs(device)) {
            int dim = 512;
            int ffn = 96;  // ffn rows: not a multiple of 8 rows per block
            for (GgmlType t : new GgmlType[] {GgmlType.Q4_0, GgmlType.Q6_K, GgmlType.F16, GgmlType.Q8_0}) {
                int cols = t == GgmlType.Q6_K ? 2048 : dim;
                Tensor wq = RandomTensors.matrix("q", t, 64, cols, p.random);
                Tensor wk = RandomTensors.matrix("k", t, 32, cols, p.random);
                Tensor wv = RandomTensors.matrix("v", t, 32, cols, p.random);
                Tensor gate = RandomTensors.matrix("gate", t, ffn, cols, p.random);
                Tensor up = RandomTensors.matrix("up", t, ffn, cols, p.random);
                Tensor down = ffn % t.blockSize() == 0 ? RandomTensors.matrix("down", t, cols, ffn, p.random) : null;
                Tensor norm = RandomTensors.matrix("norm", GgmlType.F16, 1, cols, p.random);
                for (int n : new int[] {1, 2}) {
                    String what = t + " n " + n;
                    OpPairs.Pair x = p.pair("x", n, cols, p.gaussian(n * cols, 1));
                    OpPairs.Pair res = p.pair("res", n, 64, p.gaussian(n * 64, 1));
                    // q, k, v in one launch
                    OpPairs.Pair q = p.pair("q", n, 64, null);
                    OpPairs.Pair k = p.pair("k", n, 32, null);
                    OpPairs.Pair v = p.pair("v", n, 32, null);
                    p.cuda.ops().matmul(x.c(), n, new Weight[] {p.cuda.weight(wq), p.cuda.weight(wk), p.cuda.weight(wv)},
                            new Buf[] {q.c(), k.c(), v.c()});
                    p.ref.ops().matmul(x.r(), n, new Weight[] {p.ref.weight(wq), p.ref.weight(wk), p.ref.weight(wv)},
                            new Buf[] {q.r(), k.r(), v.r()});
                    // product into q, then added to res: both written
                    p.cuda.ops().matmulAdd(x.c(), n, p.cuda.weight(wq), q.c(), res.c());
                    p.ref.ops().matmul(x.r(), n, new Weight[] {p.ref.weight(wq)}, new Buf[] {q.r()});
                    p.ref.ops().add(res.r(), q.r(), n);
                    p.same("fused product + add, the product " + what, q, n, 2e-5);
                    p.same("fused product + add, the sum " + what, res, n, 2e-5);
                    p.same("one launch for q, k, v: k " + what, k, n, 2e-5);
                    p.same("one launch for q, k, v: v " + what, v, n, 2e-5);
                    // norm (f16 weights: its own kernel), then gate and up, then swiglu: a = silu(gate) * up and b = up
                    OpPairs.Pair xb = p.pair("xb", n, cols, null);
                    OpPairs.Pair a = p.pair("a", n, ffn, null);
                    OpPairs.Pair b = p.pair("b", n, ffn, null);
                    p.cuda.ops().rmsnormGateUpSwiglu(x.c(), p.cuda.weight(norm), 1e-5f, n, xb.c(), p.cuda.weight(gate), p.cuda.weight(up),
                            a.c(), b.c());
                    p.ref.ops().rmsnorm(x.r(), p.ref.weight(norm), 1e-5f, n, xb.r());
                    p.ref.ops().matmul(xb.r(), n, new Weight[] {p.ref.weight(gate), p.ref.weight(up)}, new Buf[] {a.r(), b.r()});
                    p.ref.ops().swiglu(a.r(), b.r(), n);
                    p.same("fused gate/up + swiglu, the normalized rows " + what, xb, n, 1e-6);
                    p.same("fused gate/up + swiglu, a " + what, a, n, 2e-5);
                    p.same("fused gate/up + swiglu, b " + what, b, n, 2e-5);
                    // the down product of a (ffn columns) into a fresh output, then added to x
                    if (down != null) {  // (one gemv with the add when its rows are whole 16-byte pieces; else matmul, then add)
                        OpPairs.Pair o = p.pair("o", n, cols, null);
                        p.cuda.ops().matmulAdd(a.c(), n, p.cuda.weight(down), o.c(), x.c());
                        p.ref.ops().matmul(a.r(), n, new Weight[] {p.ref.weight(down)}, new Buf[] {o.r()});
                        p.ref.ops().add(x.r(), o.r(), n);
                        p.same("down product + add, the product " + what, o, n, 2e-5);
                        p.same("down product + add, the sum " + what, x, n, 2e-5);
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void ropeFusedWithTheKvStoreMatchesRef(String device) throws Exception {
        try (OpPairs p = new OpPairs(device)) {
            int headDim = 64;
            int qHeads = 4;
            int kHeads = 2;
            int kvDim = kHeads * headDim;
            for (KvCache.Type type : new KvCache.Type[] {KvCache.Type.F16, KvCache.Type.F32}) {
                for (Rope rope : new Rope[] {new Rope(64, 10000f, 1f, null, false), new Rope(32, 500000f, 1f, null, true)}) {
                    KvCache.Config config = new KvCache.Config(2, kvDim, type, 16, 16, 2, 128);
                    KvCache cc = p.later(p.cuda.kvCache(config));
                    KvCache rc = p.later(p.ref.kvCache(config));
                    int s0 = cc.newSequence();
                    rc.newSequence();
                    int s1 = cc.newSequence();
                    rc.newSequence();
                    for (int s : new int[] {s0, s1}) {
                        cc.reserve(s, 100);
                        rc.reserve(s, 100);
                    }
                    Batch batch = new Batch(3);
                    batch.add(0, 17, s0, false);
                    batch.add(0, 99, s1, false);
                    batch.add(0, 0, s1, false);
                    int n = batch.size();
                    OpPairs.Pair q = p.pair("q", n, qHeads * headDim, p.gaussian(n * qHeads * headDim, 1));
                    OpPairs.Pair k = p.pair("k", n, kvDim, p.gaussian(n * kvDim, 1));
                    OpPairs.Pair v = p.pair("v", n, kvDim, p.gaussian(n * kvDim, 1));
                    p.cuda.ops().beginStep(batch, cc);
                    p.cuda.ops().ropeStoreKv(q.c(), k.c(), v.c(), headDim, batch, rope, cc, 1);
                    p.cuda.ops().endStep();
                    p.ref.ops().rope(q.r(), k.r(), headDim, batch, rope);
                    p.ref.ops().storeKv(rc, 1, k.r(), v.r(), batch);
                    String what = type + " cache, neox=" + rope.neox() + " dims " + rope.dims();
                    p.same("rope + store: q " + what, q, n, 1e-6);
                    p.same("rope + store: k " + what, k, n, 1e-6);
                    // what the cache holds: attention of a query over it reads every stored position
                    OpPairs.Pair att = p.pair("att", n, qHeads * headDim, null);
                    p.cuda.ops().attention(q.c(), cc, 1, qHeads, kHeads, headDim, AttnSpec.plain(headDim), batch, att.c());
                    p.ref.ops().attention(q.r(), rc, 1, qHeads, kHeads, headDim, AttnSpec.plain(headDim), batch, att.r());
                    p.same("attention after rope + store " + what, att, n, 1e-5);
                }
            }
        }
    }

    /** Logits of a 12-token prompt in one step, then of each of 6 decode steps, on a backend. */
    static float[][] promptThenDecode(CudaBackend backend, Path model, int[] tokens) {
        try (GgufFile f = GgufFile.open(model)) {
            LlamaConfig c = LlamaConfig.from(f.metadata(), (int) f.tensor("token_embd.weight").rows());
            Llama llama = new Llama(c, LlamaWeights.load(f, c, backend), backend);
            int prompt = 12;
            float[][] out = new float[1 + tokens.length - prompt][c.vocab()];
            try (KvCache cache = backend.kvCache(KvCache.Config.single(c.layers(), c.kvDim(), KvCache.Type.F16, 64))) {
                int seq = cache.newSequence();
                cache.reserve(seq, tokens.length);
                Llama.Scratch s = llama.newScratch(prompt, 1);
                Batch b = new Batch(prompt);
                for (int i = 0; i < prompt; i++) {
                    b.add(tokens[i], i, seq, i == prompt - 1);
                }
                llama.forward(b, cache, s);
                backend.download(s.logits(), 1, out[0]);
                for (int i = prompt; i < tokens.length; i++) {
                    b.clear();
                    b.add(tokens[i], i, seq, true);
                    llama.forward(b, cache, s);
                    backend.download(s.logits(), 1, out[1 + i - prompt]);
                }
            }
            return out;
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void decodeStepsReplayedAsGraphsGiveTheSameLogits(String device) {
        Path model = cria.SharedData.require("models/synth-tok512-Q4_K_M.gguf");
        int[] tokens = new int[18];
        java.util.Random r = new java.util.Random(3);
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = 1 + r.nextInt(500);
        }
        float[][] plain;
        try (CudaBackend b = Devices.open(device)) {
            plain = promptThenDecode(b, model, tokens);
        }
        try (CudaBackend b = Devices.open(device)) {
            b.tuning().graphs = true;
            float[][] graphed = promptThenDecode(b, model, tokens);
            for (int i = 0; i < plain.length; i++) {
                assertArrayEquals(plain[i], graphed[i], "logits of step " + i + " with decode steps as CUDA graphs");
            }
            // the prompt step is too large to record; the first decode step may allocate (not recorded), the
            // next is captured, the rest replay it: positions and tokens change only in device memory
            assertTrue(b.graphs().captures() >= 1 && b.graphs().captures() <= 2, "captures: " + b.graphs().captures());
            assertTrue(b.graphs().replays() >= 4, "replays: " + b.graphs().replays());
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void attentionWithFixedSplitsCutsEachEntryOnTheDevice(String device) throws Exception {
        try (OpPairs p = new OpPairs(device)) {
            int heads = 8;
            int kvHeads = 2;
            int headDim = 64;
            KvCache.Config config = new KvCache.Config(2, kvHeads * headDim, KvCache.Type.F16, 16, 40, 3, 256);
            KvCache cc = p.later(p.cuda.kvCache(config));
            KvCache rc = p.later(p.ref.kvCache(config));
            int[] seqs = CudaPrefillTest.fill(p, cc, rc, 2, new int[] {200, 3});
            Batch batch = new Batch(3);
            batch.add(0, 199, seqs[0], false);
            batch.add(0, 2, seqs[1], false);   // shorter than the splits: most of its spans are empty
            batch.add(0, 77, seqs[0], false);
            int n = batch.size();
            OpPairs.Pair q = p.pair("q", n, heads * headDim, p.gaussian(n * heads * headDim, 1));
            OpPairs.Pair out = p.pair("att", n, heads * headDim, null);
            // plain, and a sliding window of 50 with a soft-cap: each entry's spans then cover its window only
            for (AttnSpec spec : new AttnSpec[] {AttnSpec.plain(headDim), new AttnSpec(0.125f, 50, 5f)}) {
                p.ref.ops().attention(q.r(), rc, 1, heads, kvHeads, headDim, spec, batch, out.r());
                for (int splits : new int[] {1, 5, 16}) {
                    Devices.poison(p.cuda, out.c());
                    p.cuda.ops().beginStep(batch, cc);
                    CudaKvCache c = (CudaKvCache) cc;
                    p.cuda.kernels().attention.attention(new AttentionKernels.Call(((CudaBuf) q.c()).ptr(), q.c().cols(), true,
                            c.keys(), c.values(), p.cuda.cudaOps().positions(), p.cuda.cudaOps().sequences(), c.table(),
                            config.maxPagesPerSequence(), config.pageSize(), config.pages(), 1, c.kvDim(), heads, kvHeads, headDim, n,
                            200, ((CudaBuf) out.c()).ptr(), out.c().cols(), spec), splits);
                    p.cuda.ops().endStep();
                    p.same("attention " + spec + " with " + splits + " fixed splits", out, n, 1e-5);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void rmsnormFoldedIntoTheNextProductWritesWhatTheSeparateOpsWrite(String device) throws Exception {
        try (OpPairs p = new OpPairs(device)) {
            for (GgmlType t : new GgmlType[] {GgmlType.Q4_0, GgmlType.F16, GgmlType.Q6_K}) {
                int dim = colsFor(t);  // gemv-eligible widths: the norm is folded, not run first
                Tensor g = RandomTensors.matrix("norm", GgmlType.F32, 1, dim, p.random);
                Tensor wq = RandomTensors.matrix("q", t, 40, dim, p.random);
                Tensor wk = RandomTensors.matrix("k", t, 24, dim, p.random);
                Tensor gate = RandomTensors.matrix("gate", t, 48, dim, p.random);
                Tensor up = RandomTensors.matrix("up", t, 48, dim, p.random);
                for (int n : new int[] {1, 3}) {
                    String what = t + " dim " + dim + " n " + n;
                    OpPairs.Pair x = p.pair("x", n, dim, p.gaussian(n * dim, 3));
                    OpPairs.Pair xb = p.pair("xb", n, dim, null);
                    OpPairs.Pair q = p.pair("q", n, 40, null);
                    OpPairs.Pair k = p.pair("k", n, 24, null);
                    p.cuda.ops().rmsnormMatmul(x.c(), p.cuda.weight(g), 1e-5f, n, xb.c(), new Weight[] {p.cuda.weight(wq),
                        p.cuda.weight(wk)}, new Buf[] {q.c(), k.c()});
                    p.ref.ops().rmsnorm(x.r(), p.ref.weight(g), 1e-5f, n, xb.r());
                    p.ref.ops().matmul(xb.r(), n, new Weight[] {p.ref.weight(wq), p.ref.weight(wk)}, new Buf[] {q.r(), k.r()});
                    p.same("norm folded into two products: q " + what, q, n, 2e-5);
                    p.same("norm folded into two products: k " + what, k, n, 2e-5);
                    p.same("norm folded into two products: the normalized rows " + what, xb, n, 1e-6);
                    // norm, gate/up, swiglu: one kernel
                    OpPairs.Pair a = p.pair("a", n, 48, null);
                    OpPairs.Pair b = p.pair("b", n, 48, null);
                    Devices.poison(p.cuda, xb.c());
                    p.cuda.ops().rmsnormGateUpSwiglu(x.c(), p.cuda.weight(g), 1e-5f, n, xb.c(), p.cuda.weight(gate), p.cuda.weight(up),
                            a.c(), b.c());
                    p.ref.ops().matmul(xb.r(), n, new Weight[] {p.ref.weight(gate), p.ref.weight(up)}, new Buf[] {a.r(), b.r()});
                    p.ref.ops().swiglu(a.r(), b.r(), n);
                    p.same("norm + gate/up + swiglu: a " + what, a, n, 2e-5);
                    p.same("norm + gate/up + swiglu: b " + what, b, n, 2e-5);
                    p.same("norm + gate/up + swiglu: the normalized rows " + what, xb, n, 1e-6);
                }
            }
        }
    }
}
