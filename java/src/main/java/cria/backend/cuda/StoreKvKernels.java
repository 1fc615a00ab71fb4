// Launcher of kernels/store_kv.cu: a batch's keys and values into their pages of the KV cache.
package cria.backend.cuda;

import java.util.List;

/** store_kv_f16 / store_kv_f32: one thread per element of a key row, 128 per block, one grid row per entry. */
final class StoreKvKernels extends Launcher {
    static final String FAMILY = "store_kv";
    static final KernelSpec F16 = new KernelSpec(FAMILY, "store_kv_f16", "pppipiipppiiii");
    static final KernelSpec F32 = new KernelSpec(FAMILY, "store_kv_f32", "pppipiipppiiii");
    static final int THREADS = 128;

    static List<KernelSpec> specs() {
        return List.of(F16, F32);
    }

    StoreKvKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    void store(boolean f16, long keys, long values, long k, int kStride, long v, int vStride, int kvDim, long positions,
               long sequences, long table, int maxPagesPerSeq, int pageSize, int pages, int layer, int n) {
        args.reset().ptr(keys).ptr(values).ptr(k).i32(kStride).ptr(v).i32(vStride).i32(kvDim).ptr(positions)
                .ptr(sequences).ptr(table).i32(maxPagesPerSeq).i32(pageSize).i32(pages).i32(layer);
        launch(f16 ? F16 : F32, ceilDiv(kvDim, THREADS), n, 1, THREADS, 0);
    }
}
