// Picks the backend for --backend auto|cpu|ref|cuda, explaining once why CUDA was not chosen.
package cria.engine;

import cria.CriaException;
import cria.backend.Backend;
import cria.backend.cpu.CpuBackend;
import cria.backend.ref.RefBackend;
import java.util.function.Consumer;

/** Backend selection. Lives in the engine so that {@code cria.backend} never depends on its implementations. */
public final class Backends {
    private Backends() {}

    /** The names accepted by {@link #create}. */
    public static final String NAMES = "auto, cpu, ref, cuda";

    /**
     * Creates the named backend. "auto" takes CUDA when a device is usable and says on
     * {@code log} (once) why it did not when it falls back to the CPU.
     */
    public static Backend create(String name, int threads, Consumer<String> log) {
        return switch (name) {
            case "cpu" -> new CpuBackend(threads);
            case "ref" -> new RefBackend();
            case "cuda" -> throw new CriaException("--backend cuda: " + CudaProbe.whyUnavailable()
                    + "; use --backend cpu");
            case "auto" -> {
                String why = CudaProbe.whyUnavailable();
                if (log != null && why != null) {
                    log.accept("cria: using the CPU backend (" + why + ")");
                }
                yield new CpuBackend(threads);
            }
            default -> throw new CriaException("unknown backend '" + name + "'; choose one of " + NAMES);
        };
    }
}
