// Picks the backend for --backend auto|cpu|ref|cuda, explaining once why CUDA was not chosen.
package cria.engine;

import cria.CriaException;
import cria.backend.Backend;
import cria.backend.cpu.CpuBackend;
import cria.backend.cuda.CudaBackend;
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
            case "cuda" -> {
                String why = CudaProbe.whyUnavailable();
                if (why != null) {
                    throw new CriaException("--backend cuda: " + why + "; use --backend cpu");
                }
                yield openCuda();
            }
            case "auto" -> {
                String why = CudaProbe.whyUnavailable();
                if (why == null) {
                    try {
                        yield openCuda();
                    } catch (CriaException e) {
                        why = e.getMessage().replaceFirst("[;,]? (or )?use --backend cpu$", "");
                    }
                }
                if (log != null) {
                    log.accept("cria: using the CPU backend (" + why + ")");
                }
                yield new CpuBackend(threads);
            }
            default -> throw new CriaException("unknown backend '" + name + "'; choose one of " + NAMES);
        };
    }

    /**
     * Opens the CUDA backend. Only called once CudaProbe found a driver and a device: JCuda's
     * natives link against libcuda.so.1. Whatever still goes wrong (an old driver, no kernels in
     * this build, a broken install) becomes one line.
     */
    private static Backend openCuda() {
        try {
            return CudaBackend.open();
        } catch (CriaException e) {
            throw e;
        } catch (RuntimeException | LinkageError e) {
            throw new CriaException("the CUDA backend could not start (" + e + "); use --backend cpu", e);
        }
    }
}
