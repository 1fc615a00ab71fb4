// Picks the backend for --backend auto|cpu|ref|cuda, explaining once why CUDA was not chosen.
package cria.engine;

import cria.CriaException;
import cria.backend.Backend;
import cria.backend.JvmOptions;
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
     * Creates the named backend. "auto" takes CUDA when a device is usable and, when a GPU or a
     * driver is present but cannot be used, says on {@code log} (once) why it fell back to the CPU.
     */
    public static Backend create(String name, int threads, Consumer<String> log) {
        if (!name.equals("ref")) {
            JvmOptions.requireNativeAccess(); // the CPU kernels and CUDA are native code
        }
        return switch (name) {
            case "cpu" -> new CpuBackend(cpuThreads(threads, log));
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
                // Said only when a GPU or a driver is here but unusable: on a host with neither, the
                // CPU is the only choice, and a line on every run would be noise (--verbose names the backend).
                if (log != null && !why.equals(CudaProbe.NO_GPU)) {
                    log.accept("cria: using the CPU backend (" + why + ")");
                }
                yield new CpuBackend(cpuThreads(threads, log));
            }
            default -> throw new CriaException("unknown backend '" + name + "'; choose one of " + NAMES);
        };
    }

    /**
     * The CPU worker count for a request of {@code threads} (0: one per core). The pool's workers
     * spin between ops, so more of them than cores only take turns being descheduled (a thousand
     * of them stall a step for minutes): a larger request runs on every core, with a note.
     */
    static int cpuThreads(int threads, Consumer<String> log) {
        if (threads < 0) {
            throw new CriaException("the thread count must be 0 (one per core) or positive, got " + threads);
        }
        int cores = Runtime.getRuntime().availableProcessors();
        if (threads > cores && log != null) {
            log.accept("cria: " + threads + " threads requested but " + cores + " cores are available; using " + cores);
        }
        return cpuThreadCount(threads);
    }

    /** The CPU worker threads a request of {@code threads} runs on (0 or more than the cores: every core). */
    public static int cpuThreadCount(int threads) {
        int cores = Runtime.getRuntime().availableProcessors();
        return threads > 0 ? Math.min(threads, cores) : cores;
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
