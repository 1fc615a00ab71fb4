// Launcher of kernels/ropekv.cu: rope of q and k fused with the write of k and v into the paged cache.
package cria.backend.cuda;

import java.util.List;

/** ropekv_{norm,neox}_{f16,f32}: 256 threads per block, grid-stride beyond 65535 blocks. */
final class RopeKvKernels extends Launcher {
    static final String FAMILY = "ropekv";
    private static final String SIG = "piipiipiiippi" + "ppppiiiii";
    static final KernelSpec NORM_F16 = new KernelSpec(FAMILY, "ropekv_norm_f16", SIG);
    static final KernelSpec NEOX_F16 = new KernelSpec(FAMILY, "ropekv_neox_f16", SIG);
    static final KernelSpec NORM_F32 = new KernelSpec(FAMILY, "ropekv_norm_f32", SIG);
    static final KernelSpec NEOX_F32 = new KernelSpec(FAMILY, "ropekv_neox_f32", SIG);
    static final int THREADS = 256;

    static List<KernelSpec> specs() {
        return List.of(NORM_F16, NEOX_F16, NORM_F32, NEOX_F32);
    }

    RopeKvKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    /** The geometry of one call: rope's arguments, then store_kv's. */
    record Call(boolean neox, long q, int qStride, int qHeads, long k, int kStride, int kHeads, long v, int vStride,
                int headDim, int dims, long positions, long invFreq, int n, boolean f16, long keys, long values,
                long sequences, long table, int maxPagesPerSeq, int pageSize, int pages, int layer, int kvDim) {}

    void ropeStore(Call c) {
        long total = Math.max((long) c.n() * (c.qHeads() + c.kHeads()) * (c.headDim() / 2), (long) c.n() * c.kvDim());
        if (total == 0) {
            return;
        }
        int grid = (int) Math.min(65535, (total + THREADS - 1) / THREADS);
        args.reset().ptr(c.q()).i32(c.qStride()).i32(c.qHeads()).ptr(c.k()).i32(c.kStride()).i32(c.kHeads()).ptr(c.v())
                .i32(c.vStride()).i32(c.headDim()).i32(c.dims()).ptr(c.positions()).ptr(c.invFreq()).i32(c.n()).ptr(c.keys())
                .ptr(c.values()).ptr(c.sequences()).ptr(c.table()).i32(c.maxPagesPerSeq()).i32(c.pageSize()).i32(c.pages())
                .i32(c.layer()).i32(c.kvDim());
        KernelSpec s = c.f16() ? (c.neox() ? NEOX_F16 : NORM_F16) : (c.neox() ? NEOX_F32 : NORM_F32);
        launch(s, grid, 1, 1, THREADS, 0);
    }
}
