// A weight on the host: the memory-mapped tensor itself, no copy.
package cria.backend;

import cria.tensor.Tensor;

/** The CPU-side weight: a zero-copy view of the tensor's bytes in the mapped file. */
public final class HostWeight extends Weight {
    public HostWeight(Tensor tensor) {
        super(tensor);
    }
}
