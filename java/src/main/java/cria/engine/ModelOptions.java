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

    public ModelOptions withBackend(String b) {
        return new ModelOptions(b, threads, verbose);
    }

    public ModelOptions withThreads(int t) {
        return new ModelOptions(backend, t, verbose);
    }

    public ModelOptions withVerbose(boolean v) {
        return new ModelOptions(backend, threads, v);
    }
}
