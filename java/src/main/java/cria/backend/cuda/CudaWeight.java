// A weight in device memory: the file's quantized blocks as they are, uploaded once, no dequantized copy.
package cria.backend.cuda;

import cria.backend.Weight;
import cria.tensor.Tensor;

/**
 * The tensor's bytes on the device. Uploads are deferred until the backend has seen every
 * weight of the model (so it can refuse a model that does not fit before copying anything);
 * {@link #ptr()} is 0 until then.
 */
public final class CudaWeight extends Weight {
    private long ptr;

    CudaWeight(Tensor tensor) {
        super(tensor);
    }

    /** Bytes of the tensor's blocks. */
    public long bytes() {
        return tensor().rows() * tensor().rowBytes();
    }

    public long ptr() {
        return ptr;
    }

    void resident(long p) {
        this.ptr = p;
    }

    boolean isResident() {
        return ptr != 0;
    }
}
