// Launchers' grid and block sizes, argument packing, and the backend's memory checks, on a recording fake device.
package cria.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.KvCache;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

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
        java.util.List<LaunchRecorder.Launch> step = rec.stopRecording();
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

    @Test
    void aDecodeLayerRunsAsSixFusedLaunches() {
        RecordingGpu gpu = new RecordingGpu(1L << 30, 132);
        CudaBackend b = new CudaBackend(gpu);
        int dim = 4096;
        int ffn = 14336;
        Weight norm = b.weight(fake("attn_norm", GgmlType.F32, 1, dim));
        Weight wq = b.weight(fake("q", GgmlType.Q4_0, dim, dim));
        Weight wk = b.weight(fake("k", GgmlType.Q4_0, 1024, dim));
        Weight wv = b.weight(fake("v", GgmlType.Q4_0, 1024, dim));
        Weight wo = b.weight(fake("o", GgmlType.Q4_0, dim, dim));
        Weight gate = b.weight(fake("gate", GgmlType.Q4_0, ffn, dim));
        Weight up = b.weight(fake("up", GgmlType.Q4_0, ffn, dim));
        Weight down = b.weight(fake("down", GgmlType.Q4_0, dim, ffn));
        Buf x = b.allocate("x", 1, dim);
        Buf xb = b.allocate("xb", 1, dim);
        Buf q = b.allocate("q", 1, dim);
        Buf k = b.allocate("k", 1, 1024);
        Buf v = b.allocate("v", 1, 1024);
        Buf att = b.allocate("att", 1, dim);
        Buf o = b.allocate("o", 1, dim);
        Buf hb = b.allocate("hb", 1, ffn);
        Buf hb2 = b.allocate("hb2", 1, ffn);
        KvCache cache = b.kvCache(KvCache.Config.single(1, 1024, KvCache.Type.F16, 64));
        int seq = cache.newSequence();
        cache.reserve(seq, 8);
        Batch batch = new Batch(1);
        batch.add(1, 5, seq, true);
        cria.backend.Rope rope = new cria.backend.Rope(128, 500000f, 1f, null, false);
        b.ops().beginStep(batch, cache);
        int before = gpu.launches.size();
        b.ops().rmsnorm(x, norm, 1e-5f, 1, xb);
        b.ops().matmul(xb, 1, new Weight[] {wq, wk, wv}, new Buf[] {q, k, v});
        b.ops().rope(q, k, 128, batch, rope);
        b.ops().storeKv(cache, 0, k, v, batch);
        b.ops().attention(q, cache, 0, 32, 8, 128, batch, att);
        b.ops().matmul(att, 1, new Weight[] {wo}, new Buf[] {o});
        b.ops().add(x, o, 1);
        b.ops().rmsnorm(x, norm, 1e-5f, 1, xb);
        b.ops().matmul(xb, 1, new Weight[] {gate, up}, new Buf[] {hb, hb2});
        b.ops().swiglu(hb, hb2, 1);
        b.ops().matmul(hb, 1, new Weight[] {down}, new Buf[] {o});
        b.ops().add(x, o, 1);
        b.ops().endStep();
        java.util.List<String> names = gpu.launches.subList(before, gpu.launches.size()).stream()
                .map(RecordingGpu.Launch::kernel).toList();
        // attention over 6 positions: one span, no merge
        assertEquals(java.util.List.of("gemv_q4_0", "ropekv_norm_f16", "attention_f16", "gemv_q4_0", "gemv_q4_0", "gemv_q4_0"), names);
        b.close();
    }
}
