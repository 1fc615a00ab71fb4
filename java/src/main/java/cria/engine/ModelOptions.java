// How to load a model: which backend, how many threads.
package cria.engine;

/**
 * Options for {@link Model#load}.
 *
 * @param backend "auto" (CUDA when usable, else cpu), "cpu", "ref" or "cuda"
 * @param threads CPU worker threads; 0 means one per available core
 * @param verbose log loading details on stderr
 */
public record ModelOptions(String backend, int threads, boolean verbose) {

    /** auto backend, all cores, quiet. */
    public static ModelOptions defaults() {
        return new ModelOptions("auto", 0, false);
    }

    /** A copy on another backend: "auto", "cpu", "ref" or "cuda". */
    public ModelOptions withBackend(String b) {
        return new ModelOptions(b, threads, verbose);
    }

    /** A copy with {@code t} CPU threads (0: one per core; more than the cores run on every core). */
    public ModelOptions withThreads(int t) {
        return new ModelOptions(backend, t, verbose);
    }

    /** A copy that does (or does not) log loading details. */
    public ModelOptions withVerbose(boolean v) {
        return new ModelOptions(backend, threads, v);
    }
}
