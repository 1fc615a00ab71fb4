// Launcher of kernels/flash.cu: prompt-batch attention on the tensor cores, one block per (tile of entries, KV head).
package cria.backend.cuda;

import cria.backend.AttnSpec;
import cria.backend.Batch;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * flash_f16_64 / flash_f16_128 (the head size). The batch is cut into tiles of consecutive entries
 * of one sequence holding at most 64 / G entries (G query heads per KV head), so that a block's 64
 * query rows share one KV head; the tiles (first entry, count) are uploaded per call. Supported:
 * F16 caches, head sizes 64 and 128, G up to 64; {@link #supports} says so for a call.
 */
public final class FlashKernels extends Launcher {
    static final String FAMILY = "flash";
    static final int THREADS = 128;
    static final int ROWS = 64;
    static final int KV = 64;
    static final KernelSpec D64 = new KernelSpec(FAMILY, "flash_f16_64", "pippppp" + "iiiiiii" + "fifppi");
    static final KernelSpec D128 = new KernelSpec(FAMILY, "flash_f16_128", "pippppp" + "iiiiiii" + "fifppi");

    static List<KernelSpec> specs() {
        return List.of(D64, D128);
    }

    /** True when the kernels handle this geometry. */
    static boolean supports(boolean f16Cache, int heads, int kvHeads, int headDim, int qStride, int outStride) {
        return f16Cache && (headDim == 64 || headDim == 128) && heads % kvHeads == 0 && heads / kvHeads <= ROWS
                && qStride % 4 == 0 && outStride % 2 == 0;
    }

    static int sharedBytes(int headDim) {
        return (ROWS + 4 * KV) * (headDim + 8) * 2;
    }

    private int tileCap;
    private long tilesDev;
    private Gpu.Staging tilesStaging;
    private int tileCount;
    private int tilesPerTile = -1;  // the tiles on the device were cut with this size ...
    private boolean tilesValid;     // ... and still describe the caller's batch
    private int[] tileScratch = new int[0]; // (first, count) pairs on the host, grown to the largest batch seen

    FlashKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    /** Cuts rows [0, n) of the batch into tiles of one sequence and at most perTile entries: (first, count) pairs. */
    static int tiles(Batch batch, int n, int perTile, int[] out) {
        int t = 0;
        int i = 0;
        while (i < n) {
            int seq = batch.sequence(i);
            int j = i + 1;
            while (j < n && j - i < perTile && batch.sequence(j) == seq) {
                j++;
            }
            out[2 * t] = i;
            out[2 * t + 1] = j - i;
            t++;
            i = j;
        }
        return t;
    }

    /** The layout of one call (as AttentionKernels.Call, plus the batch for the tiles). */
    public record Call(long q, int qStride, long keys, long values, long positions, long sequences, long table, int maxPagesPerSeq,
                int pageSize, int pages, int layer, int kvDim, int heads, int kvHeads, int headDim, Batch batch, int n, long out,
                int outStride, AttnSpec spec) {

        /** A call of the plain spec (scale 1 / sqrt(headDim), no window, no soft-cap). */
        public Call(long q, int qStride, long keys, long values, long positions, long sequences, long table, int maxPagesPerSeq,
                    int pageSize, int pages, int layer, int kvDim, int heads, int kvHeads, int headDim, Batch batch, int n, long out,
                    int outStride) {
            this(q, qStride, keys, values, positions, sequences, table, maxPagesPerSeq, pageSize, pages, layer, kvDim, heads, kvHeads,
                    headDim, batch, n, out, outStride, AttnSpec.plain(headDim));
        }
    }

    /** Forgets the uploaded tiles (the batch changes). */
    void forget() {
        tilesValid = false;
    }

    /**
     * Queues the attention of rows [0, n). With {@code sameBatch} the caller promises the batch is the
     * one of the previous call since {@link #forget()} (every layer of a step), so the tiles are reused.
     */
    public void attention(Call c, boolean sameBatch) {
        int perTile = ROWS / (c.heads() / c.kvHeads());
        if (!(sameBatch && tilesValid && tilesPerTile == perTile)) {
            upload(c.batch(), c.n(), perTile);
        }
        AttnSpec spec = c.spec();
        args.reset().ptr(c.q()).i32(c.qStride()).ptr(c.keys()).ptr(c.values()).ptr(c.positions()).ptr(c.sequences())
                .ptr(c.table()).i32(c.maxPagesPerSeq()).i32(c.pageSize()).i32(c.pages()).i32(c.layer()).i32(c.kvDim())
                .i32(c.heads()).i32(c.kvHeads()).f32(spec.scale()).i32(spec.window()).f32(spec.softcap()).ptr(tilesDev).ptr(c.out())
                .i32(c.outStride());
        launch(c.headDim() == 64 ? D64 : D128, tileCount, c.kvHeads(), 1, THREADS, sharedBytes(c.headDim()));
    }

    private void upload(Batch batch, int n, int perTile) {
        if (tileScratch.length < 2 * n) {
            tileScratch = new int[2 * n];
        }
        int[] t = tileScratch;
        int count = tiles(batch, n, perTile, t);
        if (count > tileCap) {
            if (tilesDev != 0) {
                tilesStaging.awaitIdle();
                gpu.synchronize();
                gpu.free(tilesDev);
            }
            tileCap = Math.max(count, 64);
            tilesDev = gpu.malloc(8L * tileCap, "attention tiles");
            tilesStaging = gpu.staging(8L * tileCap);
        }
        tilesStaging.awaitIdle();
        MemorySegment.copy(t, 0, tilesStaging.segment(), ValueLayout.JAVA_INT, 0, 2 * count);
        gpu.uploadAsync(tilesDev, tilesStaging, 0, 8L * count);
        tileCount = count;
        tilesPerTile = perTile;
        tilesValid = true;
    }
}
