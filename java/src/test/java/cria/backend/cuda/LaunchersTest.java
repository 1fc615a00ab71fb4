// Launchers' grid and block sizes, argument packing, and the backend's memory checks, on a recording fake device.
package cria.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
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
import cria.quantize.LlamaFileType;
import cria.synth.Synth;
import cria.synth.SynthShape;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs everywhere: no device, no emulator; checks what would be launched and refused. */
class LaunchersTest {

    @Test
    void argsPackSlotsAndSpellTheSignature() {
        Args a = new Args().ptr(0x1234_5678_9abcL).i32(-2).f32(1.5f).f64(-0.25).i64(-1);
        assertEquals("pifdl", a.signature());
        assertEquals(0x1234_5678_9abcL, a.slot(0));
        assertEquals(0xffff_fffeL, a.slot(1));  // the int in the low 32 bits, little-endian in the slot
        assertEquals(Float.floatToRawIntBits(1.5f), (int) a.slot(2));
        assertEquals(-0.25, Double.longBitsToDouble(a.slot(3)));
        assertEquals(-1L, a.slot(4));
        assertEquals("", a.reset().signature());
    }

    @Test
    void aWrongArgumentListIsRefusedAtLaunch() {
        RecordingGpu gpu = new RecordingGpu(1L << 30, 132);
        EltwiseKernels k = new EltwiseKernels(gpu);
        k.args.reset().ptr(1).i32(2);  // add wants (p, p, i)
        assertThrows(IllegalStateException.class, () -> k.launch(EltwiseKernels.ADD, 1, 1, 1, 256, 0));
    }

    @Test
    void kernelNamesFollowTheFamilyConvention() {
        assertThrows(IllegalArgumentException.class, () -> new KernelSpec("matmul", "mm_q4_0", "p"));
        for (KernelSpec s : Kernels.allSpecs()) {
            assertTrue(s.name().startsWith(s.family() + "_"), s.toString());
        }
    }

    @Test
    void gridShapes() {
        RecordingGpu gpu = new RecordingGpu(1L << 30, 132);
        Kernels k = new Kernels(gpu);
        k.matmul.matmul(GgmlType.Q4_K, 1, 37, 256, 2, 256, 9, 3, 37);
        RecordingGpu.Launch l = gpu.last();
        assertEquals("matmul_q4_k", l.kernel());
        assertEquals(10, l.gridX());  // ceil(37 / 4 rows per block)
        assertEquals(2, l.gridY());   // ceil(9 / 8 entries per block)
        assertEquals(128, l.block());
        k.embed.embed(GgmlType.F16, 1, 172, 2, 5, 3, 172);
        assertEquals(1, gpu.last().gridX());  // 6 chunks of 32 in one block of 128 threads
        assertEquals(5, gpu.last().gridY());
        k.rmsnorm.rmsnorm(1, 4096, GgmlType.F32, 2, 1e-5f, 4096, 3, 1, 4096);
        assertEquals(256, gpu.last().block());
        k.rmsnorm.rmsnorm(1, 172, GgmlType.BF16, 2, 1e-5f, 172, 3, 1, 172);
        assertEquals(192, gpu.last().block());
        assertEquals("rmsnorm_bf16", gpu.last().kernel());
        k.rope.rope(true, 1, 4096, 32, 2, 1024, 8, 128, 128, 3, 4, 100_000);
        assertEquals(65535, gpu.last().gridX());  // capped: the kernel strides over the rest
        assertEquals("rope_neox", gpu.last().kernel());
        k.storeKv.store(true, 1, 2, 3, 1024, 4, 1024, 1024, 5, 6, 7, 64, 16, 256, 3, 7);
        assertEquals(8, gpu.last().gridX());
        assertEquals(7, gpu.last().gridY());
        k.eltwise.add(1, 2, 10);
        assertEquals(1, gpu.last().gridX());
        k.eltwise.gather(1, 64, 2, 3, 64, 4, 64);
        assertEquals(3, gpu.last().gridY());
    }

    @Test
    void attentionSplitsOnlyWhenTheBatchLeavesMultiprocessorsIdle() {
        RecordingGpu gpu = new RecordingGpu(1L << 30, 132);
        AttentionKernels a = new AttentionKernels(gpu);
        assertEquals(9, a.splits(1, 32, 4096));   // 32 blocks for 264 slots: 9 spans of 456 positions
        assertEquals(1, a.splits(1, 32, 100));    // too short to split
        assertEquals(1, a.splits(64, 32, 4096));  // enough blocks already
        a.attention(new AttentionKernels.Call(1, 4096, true, 2, 3, 4, 5, 6, 64, 64, 64, 0, 1024, 32, 8, 128, 1, 4096, 7, 4096));
        RecordingGpu.Launch merge = gpu.last();
        RecordingGpu.Launch main = gpu.launches.get(gpu.launches.size() - 2);
        assertEquals("attention_f16", main.kernel());
        assertEquals(9, main.gridX());
        assertEquals(32, main.gridY());
        assertEquals("attention_merge", merge.kernel());
        assertEquals(32, merge.gridX());
        a.attention(new AttentionKernels.Call(1, 4096, false, 2, 3, 4, 5, 6, 64, 64, 64, 0, 1024, 32, 8, 128, 128, 4096, 7, 4096));
        assertEquals("attention_f32", gpu.last().kernel());  // one span: no merge
        assertEquals(1, gpu.last().gridX());
    }

    /** A tensor with a real shape but no real data (the checks refuse it before reading any). */
    private static Tensor fake(String name, GgmlType t, long rows, int cols) {
        return new Tensor(name, t, new long[] {cols, rows}, MemorySegment.NULL);
    }

    @Test
    void aModelLargerThanFreeMemoryIsRefusedBeforeAnyUpload() {
        RecordingGpu gpu = new RecordingGpu(100L << 20, 4);
        CudaBackend b = new CudaBackend(gpu);
        b.weight(fake("a", GgmlType.Q4_0, 4096, 16384));  // 36 MiB
        b.weight(fake("b", GgmlType.F16, 4096, 16384));   // 128 MiB
        CriaException e = assertThrows(CriaException.class, b::ops);
        assertTrue(e.getMessage().contains("need 164 MiB") && e.getMessage().contains("only 100 MiB are free (of 100 MiB)"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        assertTrue(gpu.uploads.isEmpty(), "nothing uploaded");
    }

    @Test
    void weightsUploadAtFirstUseOfOpsAndTheCacheIsChecked() {
        RecordingGpu gpu = new RecordingGpu(64L << 20, 4);
        CudaBackend b = new CudaBackend(gpu);
        Weight w = b.weight(new Tensor("w", GgmlType.F32, new long[] {8, 2}, MemorySegment.ofArray(new float[16])));
        assertTrue(gpu.uploads.isEmpty());
        b.ops();
        assertEquals(1, gpu.uploads.size());
        assertTrue(((CudaWeight) w).isResident());
        KvCache.Config huge = new KvCache.Config(32, 1024, KvCache.Type.F16, 64, 1024, 1, 65536);
        CriaException e = assertThrows(CriaException.class, () -> b.kvCache(huge));
        assertTrue(e.getMessage().startsWith("the KV cache needs 8192 MiB"), e.getMessage());
    }

    @Test
    void unsupportedWeightTypesAreRefusedWithOneLine() {
        CudaBackend b = new CudaBackend(new RecordingGpu(1L << 30, 4));
        CriaException e = assertThrows(CriaException.class, () -> b.weight(fake("blk.0.ffn_down.weight", GgmlType.Q8_K, 2, 256)));
        assertTrue(e.getMessage().contains("Q8_K") && e.getMessage().contains("--backend cpu"), e.getMessage());
    }

    @Test
    void aStepUploadsItsBatchOnceAndGatherReusesTheLogitRows() {
        RecordingGpu gpu = new RecordingGpu(1L << 30, 4);
        CudaBackend b = new CudaBackend(gpu);
        Buf x = b.allocate("x", 4, 64);
        Buf out = b.allocate("out", 4, 64);
        Batch batch = new Batch(4);
        batch.add(5, 0, 0, false);
        batch.add(6, 1, 0, true);
        b.ops().beginStep(batch, null);
        b.ops().gather(x, new int[] {1}, 1, out);
        String gatherArgs = gpu.last().args();
        b.ops().gather(x, new int[] {0}, 1, out);  // not the step's logit rows: uploaded separately
        assertFalse(gatherArgs.equals(gpu.last().args()));
        b.ops().endStep();
    }

    @Test
    void gemvRowsPerWarpAndGrids() {
        assertEquals(4, GemvKernels.rowsPerWarp(GgmlType.Q4_0));   // 576-byte windows
        assertEquals(4, GemvKernels.rowsPerWarp(GgmlType.Q4_K));
        assertEquals(2, GemvKernels.rowsPerWarp(GgmlType.Q8_0));   // 1088
        assertEquals(2, GemvKernels.rowsPerWarp(GgmlType.Q6_K));   // two 840-byte halves: 1680
        assertEquals(2, GemvKernels.rowsPerWarp(GgmlType.F16));    // 2048
        assertEquals(1, GemvKernels.rowsPerWarp(GgmlType.F32));    // 4096
        assertTrue(GemvKernels.eligible(GgmlType.Q6_K, 4096, 1, 4096));
        assertFalse(GemvKernels.eligible(GgmlType.Q6_K, 768, 1, 768));  // 630-byte rows: not whole 16-byte pieces
        assertFalse(GemvKernels.eligible(GgmlType.Q4_0, 4096, 9, 4096));
        RecordingGpu gpu = new RecordingGpu(1L << 30, 132);
        GemvKernels g = new GemvKernels(gpu);
        g.gemv(GgmlType.Q4_0, 4096, 1, 4096, 1, new GemvKernels.Part[] {new GemvKernels.Part(2, 4096, 3, 4096),
            new GemvKernels.Part(4, 1024, 5, 1024), new GemvKernels.Part(6, 1025, 7, 1025)}, GemvKernels.PLAIN, 0, 0);
        assertEquals((1024 + 256 + 257 + 3) / 4, gpu.last().gridX());  // warps of 4 rows, 4 warps per block
        assertEquals(4 * GemvKernels.SLICE, gpu.last().shared());
        g.gemv(GgmlType.Q6_K, 4096, 1, 4096, 1, new GemvKernels.Part[] {new GemvKernels.Part(2, 14336, 3, 14336),
            new GemvKernels.Part(4, 14336, 5, 14336)}, GemvKernels.SWIGLU, 0, 0);
        assertEquals(14336 / 4, gpu.last().gridX());  // one gate and one up row per warp
        GemmKernels m = new GemmKernels(gpu);
        m.gemm(GgmlType.Q4_K, 1, 4096, 4096, 2, 512, 3, 4096);
        assertEquals("gemm_q4_k_128", gpu.last().kernel());
        assertEquals(4, gpu.last().gridX());
        assertEquals(32, gpu.last().gridY());
        assertTrue(gpu.last().shared() <= 99 * 1024, "fits the 99 KiB of sm_86/sm_89");
    }

    @Test
    void theRecorderKeepsLaunchesUntilSomethingElseIsQueued() {
        RecordingGpu dev = new RecordingGpu(1L << 30, 4);
        LaunchRecorder rec = new LaunchRecorder(dev);
        EltwiseKernels k = new EltwiseKernels(rec);
        rec.startRecording();
        k.add(1, 2, 10);
        k.add(3, 4, 10);
        assertTrue(dev.launches.isEmpty(), "kept, not queued");
        List<LaunchRecorder.Launch> step = rec.stopRecording();
        assertEquals(2, step.size());
        DecodeGraphs graphs = new DecodeGraphs(dev, new CudaTuning());
        graphs.run(step);
        rec.startRecording();
        k.add(1, 2, 10);
        k.add(3, 4, 10);
        graphs.run(rec.stopRecording());  // the same launches with the same arguments: replayed
        assertEquals(1, graphs.captures());
        assertEquals(1, graphs.replays());
        assertEquals(2, dev.graphLaunches);
        rec.startRecording();
        k.add(1, 2, 10);
        rec.upload(5, MemorySegment.ofArray(new float[1]), 4);  // not a launch: what was kept goes first
        assertEquals(1, dev.launches.size());
        assertEquals(null, rec.stopRecording());
    }

    /** One decode layer's buffers and weights (fake data) on a recording device: 4096 wide, llama3-8B's shapes. */
    private static final class Layer {
        final RecordingGpu gpu = new RecordingGpu(1L << 30, 132);
        final CudaBackend b = new CudaBackend(gpu);
        final int dim = 4096;
        final int ffn = 14336;
        final Weight norm = b.weight(fake("attn_norm", GgmlType.F32, 1, dim));
        final Weight wq = b.weight(fake("q", GgmlType.Q4_0, dim, dim));
        final Weight wk = b.weight(fake("k", GgmlType.Q4_0, 1024, dim));
        final Weight wv = b.weight(fake("v", GgmlType.Q4_0, 1024, dim));
        final Weight wo = b.weight(fake("o", GgmlType.Q4_0, dim, dim));
        final Weight gate = b.weight(fake("gate", GgmlType.Q4_0, ffn, dim));
        final Weight up = b.weight(fake("up", GgmlType.Q4_0, ffn, dim));
        final Weight down = b.weight(fake("down", GgmlType.Q4_0, dim, ffn));
        final Buf x = b.allocate("x", 1, dim);
        final Buf xb = b.allocate("xb", 1, dim);
        final Buf q = b.allocate("q", 1, dim);
        final Buf k = b.allocate("k", 1, 1024);
        final Buf v = b.allocate("v", 1, 1024);
        final Buf att = b.allocate("att", 1, dim);
        final Buf o = b.allocate("o", 1, dim);
        final Buf hb = b.allocate("hb", 1, ffn);
        final Buf hb2 = b.allocate("hb2", 1, ffn);
        final KvCache cache = b.kvCache(KvCache.Config.single(1, 1024, KvCache.Type.F16, 64));
        final Batch batch = new Batch(1);
        final Rope rope = new Rope(128, 500000f, 1f, null, false);

        Layer() {
            int seq = cache.newSequence();
            cache.reserve(seq, 8);
            batch.add(1, 5, seq, true);
        }

        /** The kernels one layer of Llama.step's ops launches, by name. */
        List<String> run() {
            b.ops().beginStep(batch, cache);
            int before = gpu.launches.size();
            b.ops().rmsnormMatmul(x, norm, 1e-5f, 1, xb, new Weight[] {wq, wk, wv}, new Buf[] {q, k, v});
            b.ops().ropeStoreKv(q, k, v, 128, batch, rope, cache, 0);
            b.ops().attention(q, cache, 0, 32, 8, 128, AttnSpec.plain(128), batch, att);
            b.ops().matmulAdd(att, 1, wo, o, x);
            b.ops().rmsnormGateUpSwiglu(x, norm, 1e-5f, 1, xb, gate, up, hb, hb2);
            b.ops().matmulAdd(hb, 1, down, o, x);
            b.ops().endStep();
            List<String> names = gpu.launches.subList(before, gpu.launches.size()).stream()
                    .map(RecordingGpu.Launch::kernel).toList();
            b.close();
            return names;
        }
    }

    @Test
    void aDecodeLayerRunsAsSixFusedLaunches() {
        // each fused op one kernel: norm + q/k/v, rope + store, attention over 6 positions (one span,
        // no merge), wo + residual add, norm + gate/up + SwiGLU, down + residual add
        assertEquals(List.of("gemv_q4_0", "ropekv_norm_f16", "attention_f16", "gemv_q4_0", "gemv_q4_0", "gemv_q4_0"),
                new Layer().run());
    }

    @Test
    void withFusionOffTheFusedOpsRunThePlainKernels() {
        Layer layer = new Layer();
        layer.b.tuning().fuse = false;
        assertEquals(List.of("rmsnorm_f32", "gemv_q4_0", "rope_norm", "store_kv_f16", "attention_f16", "gemv_q4_0",
                "eltwise_add", "rmsnorm_f32", "gemv_q4_0", "eltwise_swiglu", "gemv_q4_0", "eltwise_add"), layer.run());
    }

    /**
     * The launch sequence of Llama.step: a decode step of a (synthetic, all-Q4_0) model launches
     * one kernel per op line, the fused ops fused. A prompt step of 4 rows runs the same ops, only
     * ropeStoreKv fused (the gemv forms take one row).
     */
    @Test
    void aDecodeStepLaunchesOneKernelPerOpOfLlamaStep(@TempDir Path dir) {
        Path file = dir.resolve("q4_0.gguf");
        Synth.write(file, new SynthShape("launches", 256, 2, 4, 2, 512, 512, 64, 10000f, false, 0f, 1e-5f),
                LlamaFileType.Q4_0, true, null, 1, 1, null);
        RecordingGpu gpu = new RecordingGpu(1L << 30, 132);
        try (CudaBackend b = new CudaBackend(gpu); GgufFile f = GgufFile.open(file)) {
            LlamaConfig c = LlamaConfig.from(f.metadata(), (int) f.tensor("token_embd.weight").rows());
            Llama llama = new Llama(c, LlamaWeights.load(f, c, b), b);
            try (KvCache cache = b.kvCache(KvCache.Config.single(c.layers(), c.kvDim(), KvCache.Type.F16, 64))) {
                int seq = cache.newSequence();
                cache.reserve(seq, 8);
                Llama.Scratch s = llama.newScratch(4, 1);
                Batch batch = new Batch(4);
                for (int i = 0; i < 4; i++) {
                    batch.add(10 + i, i, seq, i == 3);
                }
                int before = gpu.launches.size();
                llama.forward(batch, cache, s);
                List<String> prompt = gpu.launches.subList(before, gpu.launches.size()).stream()
                        .map(RecordingGpu.Launch::kernel).toList();
                List<String> promptLayer = List.of(
                        "rmsnorm_f32", "matmul_q4_0", "matmul_q4_0", "matmul_q4_0",  // rmsnormMatmul
                        "ropekv_norm_f16",                                           // ropeStoreKv
                        "attention_f16",                                             // attention
                        "matmul_q4_0", "eltwise_add",                                // matmulAdd
                        "rmsnorm_f32", "matmul_q4_0", "matmul_q4_0", "eltwise_swiglu",  // rmsnormGateUpSwiglu
                        "matmul_q4_0", "eltwise_add");                               // matmulAdd
                List<String> want = new ArrayList<>();
                want.add("embed_q4_0");
                for (int l = 0; l < c.layers(); l++) {
                    want.addAll(promptLayer);
                }
                want.addAll(List.of("eltwise_gather", "rmsnorm_f32", "gemv_q4_0"));  // one row wants logits
                assertEquals(want, prompt);
                batch.clear();
                batch.add(20, 4, seq, true);
                before = gpu.launches.size();
                llama.forward(batch, cache, s);
                List<String> step = gpu.launches.subList(before, gpu.launches.size()).stream()
                        .map(RecordingGpu.Launch::kernel).toList();
                List<String> layer = List.of(
                        "gemv_q4_0",        // rmsnormMatmul: q, k, v = wq, wk, wv · rmsnorm(x)
                        "ropekv_norm_f16",  // ropeStoreKv
                        "attention_f16",    // attention
                        "gemv_q4_0",        // matmulAdd: x += wo · att
                        "gemv_q4_0",        // rmsnormGateUpSwiglu
                        "gemv_q4_0");       // matmulAdd: x += down · hb
                want.clear();
                want.add("embed_q4_0");
                for (int l = 0; l < c.layers(); l++) {
                    want.addAll(layer);
                }
                want.addAll(List.of("eltwise_gather", "rmsnorm_f32", "gemv_q4_0"));  // the logits: norm in place, not folded
                assertEquals(want, step);
            }
        }
    }
}
