// The reference backend: plain scalar code in double precision, the oracle every other backend is checked against.
package cria.backend.ref;

import cria.backend.HostBackend;
import cria.backend.Ops;
import cria.backend.TrainOps;

/** Scalar, single-threaded, float64 accumulation. Never optimized: it exists to be obviously right. */
public final class RefBackend extends HostBackend {
    private final RefOps ops = new RefOps();

    @Override
    public String name() {
        return "ref";
    }

    @Override
    public String describe() {
        return "ref (scalar reference, float64 accumulation, 1 thread)";
    }

    @Override
    public Ops ops() {
        return ops;
    }

    /** A new float64 training oracle ({@link RefTrainOps}): its own heap memory, separate from this backend's buffers. */
    @Override
    public TrainOps trainOps() {
        return new RefTrainOps();
    }
}
