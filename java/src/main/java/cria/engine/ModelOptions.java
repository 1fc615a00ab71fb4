// How to load a model: which backend, how many threads, which LoRA adapters.
package cria.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * Options for {@link Model#load}.
 *
 * @param backend "auto" (CUDA when usable, else cpu), "cpu", "ref" or "cuda"
 * @param threads CPU worker threads; 0 means one per available core
 * @param verbose log loading details on stderr
 * @param loras   LoRA adapters applied to the model (unmerged), in order; their corrections add up
 */
public record ModelOptions(String backend, int threads, boolean verbose, List<LoraSpec> loras) {

    /** Copies the adapter list (null means none). */
    public ModelOptions {
        loras = loras == null ? List.of() : List.copyOf(loras);
    }

    /** Options without adapters. */
    public ModelOptions(String backend, int threads, boolean verbose) {
        this(backend, threads, verbose, List.of());
    }

    /** auto backend, all cores, quiet, no adapters. */
    public static ModelOptions defaults() {
        return new ModelOptions("auto", 0, false);
    }

    /** A copy on another backend: "auto", "cpu", "ref" or "cuda". */
    public ModelOptions withBackend(String b) {
        return new ModelOptions(b, threads, verbose, loras);
    }

    /** A copy with {@code t} CPU threads (0: one per core; more than the cores run on every core). */
    public ModelOptions withThreads(int t) {
        return new ModelOptions(backend, t, verbose, loras);
    }

    /** A copy that does (or does not) log loading details. */
    public ModelOptions withVerbose(boolean v) {
        return new ModelOptions(backend, threads, v, loras);
    }

    /** A copy that also applies these adapters (after those already listed). */
    public ModelOptions withLora(LoraSpec... specs) {
        List<LoraSpec> all = new ArrayList<>(loras);
        all.addAll(List.of(specs));
        return new ModelOptions(backend, threads, verbose, all);
    }

    /** A copy that also applies the adapter {@code file} at {@code scale}. */
    public ModelOptions withLora(java.nio.file.Path file, float scale) {
        return withLora(new LoraSpec(file, scale));
    }
}
