// Training's ops on the C kernels of native/train.c; what they do not take runs on the Java path it extends.
package cria.backend.cpu;

/** The native training path (see {@link JavaTrainPath} for how work is split over the pool). */
final class NativeTrainPath extends JavaTrainPath {
    private final NativeKernels nk;

    NativeTrainPath(WorkerPool pool, NativeKernels nk) {
        super(pool);
        this.nk = nk;
    }
}
