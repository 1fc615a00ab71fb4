// Launcher of kernels/embed.cu: rows of an embedding table (any weight type) into f32 activations.
package cria.backend.cuda;

import cria.gguf.GgmlType;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/** embed_&lt;type&gt;: one thread per 32-value chunk of a row, blocks of {@link #THREADS}, one grid row per token. */
final class EmbedKernels extends Launcher {
    static final String FAMILY = "embed";
    static final int THREADS = 128;
    private static final Map<GgmlType, KernelSpec> SPECS = new EnumMap<>(GgmlType.class);

    static {
        for (GgmlType t : CudaTypes.all()) {
            SPECS.put(t, new KernelSpec(FAMILY, FAMILY + "_" + CudaTypes.suffix(t), "pippi"));
        }
    }

    static List<KernelSpec> specs() {
        return new ArrayList<>(SPECS.values());
    }

    EmbedKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    /** out[i][0 .. cols) = row tokens[i] of the table, for i in [0, n). */
    void embed(GgmlType type, long table, int cols, long tokens, int n, long out, int outStride) {
        int chunks = ceilDiv(cols, 32);
        args.reset().ptr(table).i32(cols).ptr(tokens).ptr(out).i32(outStride);
        launch(SPECS.get(type), ceilDiv(chunks, THREADS), n, 1, THREADS, 0);
    }
}
