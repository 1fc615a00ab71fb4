// A weight tensor made resident in a backend: the file's bytes as they are (no dequantized copy).
package cria.backend;

import cria.gguf.GgmlType;
import cria.tensor.Tensor;

/**
 * A weight as a backend holds it. On the CPU this is the memory-mapped slice itself (zero
 * copy); on a GPU the same quantized blocks in device memory. A matrix has {@link #rows()}
 * outputs of {@link #cols()} inputs each (ggml's ne[1] and ne[0]); a vector has one row.
 */
public abstract class Weight {
    private final Tensor tensor;

    protected Weight(Tensor tensor) {
        this.tensor = tensor;
    }

    /** The source tensor (its data is the mapped file on every backend). */
    public Tensor tensor() {
        return tensor;
    }

    public String name() {
        return tensor.name();
    }

    public GgmlType type() {
        return tensor.type();
    }

    /** Output features (rows). */
    public int rows() {
        return Math.toIntExact(tensor.rows());
    }

    /** Input features (values per row). */
    public int cols() {
        return tensor.rowLength();
    }

    @Override
    public String toString() {
        return tensor.toString();
    }
}
