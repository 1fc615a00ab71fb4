// Launcher of kernels/rope.cu: rotary embedding of q and k in place (llama pairs or NeoX halves).
package cria.backend.cuda;

import java.util.List;

/** rope_norm / rope_neox: one thread per rotated pair, 256 per block, grid-stride beyond 65535 blocks. */
final class RopeKernels extends Launcher {
    static final String FAMILY = "rope";
    static final KernelSpec NORM = new KernelSpec(FAMILY, "rope_norm", "piipiiiippi");
    static final KernelSpec NEOX = new KernelSpec(FAMILY, "rope_neox", "piipiiiippi");
    static final int THREADS = 256;

    static List<KernelSpec> specs() {
        return List.of(NORM, NEOX);
    }

    RopeKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    /** Rotates the first {@code dims} values of every head of q and k at {@code positions[i]}, i in [0, n). */
    void rope(boolean neox, long q, int qStride, int qHeads, long k, int kStride, int kHeads, int headDim, int dims,
              long positions, long invFreq, int n) {
        long total = (long) n * (qHeads + kHeads) * (dims / 2);
        if (total == 0) {
            return;
        }
        int grid = (int) Math.min(65535, (total + THREADS - 1) / THREADS);
        args.reset().ptr(q).i32(qStride).i32(qHeads).ptr(k).i32(kStride).i32(kHeads).i32(headDim).i32(dims)
                .ptr(positions).ptr(invFreq).i32(n);
        launch(neox ? NEOX : NORM, grid, 1, 1, THREADS, 0);
    }
}
