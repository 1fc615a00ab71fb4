// Launcher of kernels/attention.cu: paged grouped-query attention, split over the sequence when the batch is small.
package cria.backend.cuda;

import cria.backend.AttnSpec;
import java.util.List;

/**
 * attention_f16 / attention_f32 and attention_merge. A block handles one (split, head, entry);
 * when entries times heads alone would leave most multiprocessors idle (decoding one or a few
 * sequences), each head's positions are split into spans of at least {@link #MIN_SPAN} and
 * attention_merge joins the partial softmaxes. Under a sliding window an entry's spans cover its
 * window only. The launcher owns the partials' workspace.
 */
public final class AttentionKernels extends Launcher {
    static final String FAMILY = "attention";
    static final KernelSpec F16 = new KernelSpec(FAMILY, "attention_f16", "pippppp" + "iiiiiiii" + "fifipip");
    static final KernelSpec F32 = new KernelSpec(FAMILY, "attention_f32", "pippppp" + "iiiiiiii" + "fifipip");
    static final KernelSpec MERGE = new KernelSpec(FAMILY, "attention_merge", "piiipi");
    static final int THREADS = 128;      // ATT_THREADS
    static final int MAX_HEAD_DIM = 256;  // ATT_MAX_HD
    static final int MIN_SPAN = 256;

    private final int sms;
    private long workspace;
    private long workspaceFloats;
    private int forcedSplits;

    static List<KernelSpec> specs() {
        return List.of(F16, F32, MERGE);
    }

    AttentionKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
        this.sms = Math.max(1, gpu.multiprocessors());
    }

    /** Tests: use this many splits (when the sequence is long enough), 0 for the heuristic. */
    void forceSplits(int splits) {
        this.forcedSplits = splits;
    }

    /** How many spans to cut {@code maxLen} positions into for {@code n * heads} query heads. */
    int splits(int n, int heads, int maxLen) {
        if (forcedSplits > 0) {
            return Math.min(forcedSplits, maxLen);
        }
        long blocks = (long) n * heads;
        long target = 2L * sms;
        if (blocks >= target) {
            return 1;
        }
        int byWork = (int) ((target + blocks - 1) / blocks);
        int byLength = Math.max(1, maxLen / MIN_SPAN);
        return Math.max(1, Math.min(byWork, byLength));
    }

    /**
     * The layout of one call: pass geometry in, get the kernels queued. {@code maxLen}: the most
     * positions one entry attends (under a sliding window at most the window); {@code spec}: the
     * scores' scale, window and soft-cap.
     */
    public record Call(long q, int qStride, boolean f16, long keys, long values, long positions, long sequences, long table,
                int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim, int heads, int kvHeads, int headDim,
                int n, int maxLen, long out, int outStride, AttnSpec spec) {

        /** A call of the plain spec (scale 1 / sqrt(headDim), no window, no soft-cap). */
        public Call(long q, int qStride, boolean f16, long keys, long values, long positions, long sequences, long table,
                    int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim, int heads, int kvHeads, int headDim,
                    int n, int maxLen, long out, int outStride) {
            this(q, qStride, f16, keys, values, positions, sequences, table, maxPagesPerSeq, pageSize, pages, layer, kvDim, heads,
                    kvHeads, headDim, n, maxLen, out, outStride, AttnSpec.plain(headDim));
        }
    }

    /**
     * Splits that depend on the batch shape alone (not on the lengths): for launches that must not
     * change from token to token. The kernel then cuts each entry's positions into that many spans itself.
     */
    int stableSplits(int n, int heads, int contextLength) {
        if (forcedSplits > 0) {
            return forcedSplits;
        }
        long blocks = (long) n * heads;
        long target = 2L * sms;
        int byWork = blocks >= target ? 1 : (int) ((target + blocks - 1) / blocks);
        return Math.max(1, Math.min(byWork, Math.max(1, contextLength / MIN_SPAN)));
    }

    public void attention(Call c) {
        attention(c, 0);
    }

    /** Queues the attention; {@code fixedSplits} > 0 uses that many splits with spans computed per entry on the device. */
    public void attention(Call c, int fixedSplits) {
        AttnSpec spec = c.spec();
        int splits;
        int span;
        if (fixedSplits > 0) {
            splits = fixedSplits;
            span = 0;
        } else {
            splits = splits(c.n(), c.heads(), c.maxLen());
            span = ceilDiv(c.maxLen(), splits);
            splits = ceilDiv(c.maxLen(), span);
        }
        long part = 0;
        if (splits > 1) {
            long need = (long) c.n() * c.heads() * splits * (c.headDim() + 2);
            if (need > workspaceFloats) {
                if (workspace != 0) {
                    gpu.synchronize();  // queued kernels may still write the old workspace
                    gpu.free(workspace);
                    workspace = 0;
                }
                workspace = gpu.malloc(need * Float.BYTES, "the attention workspace");
                workspaceFloats = need;
            }
            part = workspace;
        }
        args.reset().ptr(c.q()).i32(c.qStride()).ptr(c.keys()).ptr(c.values()).ptr(c.positions()).ptr(c.sequences())
                .ptr(c.table()).i32(c.maxPagesPerSeq()).i32(c.pageSize()).i32(c.pages()).i32(c.layer()).i32(c.kvDim())
                .i32(c.heads()).i32(c.kvHeads()).i32(c.headDim()).f32(spec.scale()).i32(spec.window()).f32(spec.softcap()).i32(span)
                .ptr(c.out()).i32(c.outStride())
                .ptr(part);
        launch(c.f16() ? F16 : F32, splits, c.heads(), c.n(), THREADS, 0);
        if (splits > 1) {
            args.reset().ptr(part).i32(c.heads()).i32(c.headDim()).i32(splits).ptr(c.out()).i32(c.outStride());
            launch(MERGE, c.heads(), c.n(), 1, THREADS, 0);
        }
    }
}
