// A place to compute: memory (buffers, weights, KV cache), transfers, and the Ops that run there.
package cria.backend;

import cria.tensor.Tensor;

/**
 * A compute backend. It owns its memory: activation buffers, resident weights and KV caches are
 * made by it and released when it closes. Data crosses to the host only through
 * {@link #download}. Its {@link Ops} are not thread-safe (they share scratch memory): callers
 * serialize them, as {@code Llama.forward} does per step by locking the backend.
 */
public interface Backend extends AutoCloseable {

    /** Short name: "ref", "cpu", "cuda". */
    String name();

    /** A one-line description for logs (device, threads, kernels in use). */
    String describe();

    Ops ops();

    /**
     * A new set of training ops with its own memory (parameters, gradients, optimizer moments and
     * activations are allocated through it); the caller closes it. Backends that cannot train say so.
     */
    default TrainOps trainOps() {
        throw new cria.CriaException("the " + name() + " backend cannot train yet; use --backend cpu");
    }

    /** A buffer of rows × cols floats, zeroed. */
    Buf allocate(String name, int rows, int cols);

    /** Makes a tensor resident (zero copy on the CPU; uploaded once on a GPU). */
    Weight weight(Tensor tensor);

    /** A KV cache of this geometry in this backend's memory. */
    KvCache kvCache(KvCache.Config config);

    /** Copies rows [0, rows) of a buffer into {@code dst} (row-major). */
    void download(Buf src, int rows, float[] dst);

    /** Waits until all submitted work is done. */
    default void sync() {}

    @Override
    void close();
}
