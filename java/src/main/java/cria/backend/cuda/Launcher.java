// Base of the per-family launcher classes: loads the family's module once and launches its entry points.
package cria.backend.cuda;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One kernel family (kernels/&lt;family&gt;.cu). Subclasses declare their entry points as
 * {@link KernelSpec}s and alone decide grid and block sizes (ARCHITECTURE.md rule 6); the block
 * shapes they use are the constants the kernels are written for.
 */
abstract class Launcher {
    protected final Gpu gpu;
    protected final Args args = new Args();
    private final Map<String, Object> functions = new HashMap<>();

    protected Launcher(Gpu gpu, String family, List<KernelSpec> specs) {
        this.gpu = gpu;
        Object module = gpu.loadModule(family);
        for (KernelSpec s : specs) {
            if (!s.family().equals(family)) {
                throw new IllegalArgumentException(s + " is not of family " + family);
            }
            functions.put(s.name(), gpu.function(module, s.name()));
        }
    }

    /** Queues {@code spec} with the arguments gathered in {@link #args}. */
    protected final void launch(KernelSpec spec, int gridX, int gridY, int gridZ, int block, int sharedBytes) {
        Object f = functions.get(spec.name());
        if (f == null) {
            throw new IllegalStateException("kernel " + spec.name() + " was not declared by its launcher");
        }
        if (gridX <= 0 || gridY <= 0 || gridZ <= 0 || gridY > 65535 || gridZ > 65535) {
            throw new IllegalStateException("launcher bug: grid " + gridX + "x" + gridY + "x" + gridZ + " for " + spec.name());
        }
        gpu.launch(f, spec, gridX, gridY, gridZ, block, sharedBytes, args);
    }

    static int ceilDiv(long a, long b) {
        return Math.toIntExact((a + b - 1) / b);
    }
}
