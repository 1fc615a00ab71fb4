// The prompt-batch kernels against ref on fresh random inputs: tensor-core products of every weight type, flash attention.
package cria.backend.cuda;

import cria.backend.AttnSpec;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.KvCache;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Batches of 16 rows or more take kernels/gemm.cu (mma.sync on f16 operands, f32 accumulation) and
 * kernels/flash.cu. Their operands are rounded to f16, so the bounds are those of f16 rounding
 * (about 3e-4 relative per product; a wrong fragment or index gives errors of order one).
 * "emulator" checks the kernels' index arithmetic and the fragment layouts as the PTX ISA states
 * them; "gpu" checks the same against the real tensor cores.
 */
class CudaPrefillTest {
    static final double GEMM_TOL = 2e-3;

    private static int[] colsFor(GgmlType t) {
        if (t.blockSize() == 256) {
            return new int[] {512};         // two super-blocks: K steps inside and across them
        }
        if (t.blockSize() == 32) {
            return new int[] {96};          // one and a half K steps of 64
        }
        return new int[] {200, 64};         // F16/BF16: a partial last chunk, and exactly one K step
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void tensorCoreProductsOfEveryTypeMatchRef(String device) throws Exception {
        try (OpPairs p = new OpPairs(device)) {
            for (GgmlType t : CudaTypes.all()) {
                if (!GemmKernels.supports(t)) {
                    continue;
                }
                for (int cols : colsFor(t)) {
                    int rows = 150;  // a full tile of 128 rows and a partial one
                    Tensor w = RandomTensors.matrix("w." + t, t, rows, cols, p.random);
                    Weight wc = p.cuda.weight(w);
                    Weight wr = p.ref.weight(w);
                    for (int n : new int[] {20, 70}) {  // BN 64 with a partial tile; BN 128
                        int xStride = cols + 3;  // rows not 16-byte aligned: the f16 conversion copes
                        OpPairs.Pair x = p.pair("x", n, xStride, p.gaussian(n * xStride, 1));
                        OpPairs.Pair out = p.pair("out", n, rows + 2, null);
                        p.cuda.ops().matmul(x.c(), n, new Weight[] {wc}, new Buf[] {out.c()});
                        p.ref.ops().matmul(x.r(), n, new Weight[] {wr}, new Buf[] {out.r()});
                        p.same("tensor-core matmul " + t + " rows " + rows + " cols " + cols + " n " + n, narrow(p, out, n, rows), n,
                                GEMM_TOL);
                    }
                }
            }
        }
    }

    static final double FLASH_TOL = 3e-3;

    /**
     * Writes the same random keys and values into both caches for positions [0, length) of each
     * sequence, interleaving the sequences in batches of 7 (so their pages interleave); returns the ids.
     */
    static int[] fill(OpPairs p, KvCache cc, KvCache rc, int layers, int[] lengths) {
        int kvDim = cc.kvDim();
        int[] seqs = new int[lengths.length];
        int longest = 0;
        for (int s = 0; s < lengths.length; s++) {
            seqs[s] = cc.newSequence();
            rc.newSequence();
            cc.reserve(seqs[s], lengths[s]);
            rc.reserve(seqs[s], lengths[s]);
            longest = Math.max(longest, lengths[s]);
        }
        java.util.List<int[]> todo = new java.util.ArrayList<>();
        for (int pos = 0; pos < longest; pos++) {
            for (int s = 0; s < lengths.length; s++) {
                if (pos < lengths[s]) {
                    todo.add(new int[] {seqs[s], pos});
                }
            }
        }
        int chunk = 7;
        OpPairs.Pair k = p.pair("k", chunk, kvDim, null);
        OpPairs.Pair v = p.pair("v", chunk, kvDim, null);
        Batch batch = new Batch(chunk);
        for (int from = 0; from < todo.size(); from += chunk) {
            int m = Math.min(chunk, todo.size() - from);
            batch.clear();
            for (int i = 0; i < m; i++) {
                batch.add(0, todo.get(from + i)[1], todo.get(from + i)[0], false);
            }
            for (int layer = 0; layer < layers; layer++) {
                float[] kv = p.gaussian(m * kvDim, 1);
                float[] vv = p.gaussian(m * kvDim, 1);
                Devices.put(p.cuda, k.c(), kv);
                Devices.put(p.ref, k.r(), kv);
                Devices.put(p.cuda, v.c(), vv);
                Devices.put(p.ref, v.r(), vv);
                p.cuda.ops().beginStep(batch, cc);  // the batch object is reused: upload it afresh
                p.cuda.ops().storeKv(cc, layer, k.c(), v.c(), batch);
                p.cuda.ops().endStep();
                p.ref.ops().storeKv(rc, layer, k.r(), v.r(), batch);
            }
        }
        return seqs;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {Devices.EMULATOR, Devices.GPU})
    void flashAttentionOfPromptBatchesMatchesRef(String device) throws Exception {
        record Geometry(int heads, int kvHeads, int headDim) {}
        try (OpPairs p = new OpPairs(device)) {
            for (Geometry g : new Geometry[] {
                new Geometry(8, 2, 64),    // 4 heads per KV head: tiles of 16 entries
                new Geometry(2, 2, 128),   // no grouping: tiles of 64 entries
                new Geometry(6, 2, 64),    // 3 per KV head: 21 entries, 63 of 64 rows
            }) {
                int kvDim = g.kvHeads() * g.headDim();
                KvCache.Config config = new KvCache.Config(2, kvDim, KvCache.Type.F16, 16, 40, 3, 256);
                KvCache cc = p.later(p.cuda.kvCache(config));
                KvCache rc = p.later(p.ref.kvCache(config));
                int[] seqs = fill(p, cc, rc, 2, new int[] {40, 150});
                // one batch: a whole 40-token prompt, then 30 positions continuing a 120-token prefix
                Batch batch = new Batch(70);
                for (int i = 0; i < 40; i++) {
                    batch.add(0, i, seqs[0], false);
                }
                for (int i = 0; i < 30; i++) {
                    batch.add(0, 120 + i, seqs[1], false);
                }
                int n = batch.size();
                int qDim = g.heads() * g.headDim();
                OpPairs.Pair q = p.pair("q", n, qDim, p.gaussian(n * qDim, 1));
                OpPairs.Pair out = p.pair("att", n, qDim, null);
                p.cuda.ops().beginStep(batch, cc);
                p.cuda.ops().attention(q.c(), cc, 1, g.heads(), g.kvHeads(), g.headDim(), AttnSpec.plain(g.headDim()), batch, out.c());
                p.cuda.ops().endStep();
                p.ref.ops().attention(q.r(), rc, 1, g.heads(), g.kvHeads(), g.headDim(), AttnSpec.plain(g.headDim()), batch, out.r());
                p.same("flash attention " + g, out, n, FLASH_TOL);
            }
        }
    }

    /** The first {@code cols} columns of an output pair as fresh buffers; the columns after them must be unwritten (NaN). */
    static OpPairs.Pair narrow(OpPairs p, OpPairs.Pair wide, int n, int cols) {
        float[] c = OpPairs.down(p.cuda, wide.c(), n);
        float[] r = OpPairs.down(p.ref, wide.r(), n);
        float[] cn = new float[n * cols];
        float[] rn = new float[n * cols];
        for (int i = 0; i < n; i++) {
            for (int j = cols; j < wide.c().cols(); j++) {
                org.junit.jupiter.api.Assertions.assertTrue(Float.isNaN(c[i * wide.c().cols() + j]),
                        "row " + i + " col " + j + " lies past the weight's rows but was written");
            }
            System.arraycopy(c, i * wide.c().cols(), cn, i * cols, cols);
            System.arraycopy(r, i * wide.c().cols(), rn, i * cols, cols);
        }
        Buf bc = p.cuda.allocate("narrow", n, cols);
        Buf br = p.ref.allocate("narrow", n, cols);
        Devices.put(p.cuda, bc, cn);
        Devices.put(p.ref, br, rn);
        return new OpPairs.Pair(bc, br);
    }
}
