// An activation buffer in a backend's memory: up to `rows` rows of `cols` floats, row-major.
package cria.backend;

/**
 * Activations live where the backend computes (off-heap memory on the CPU, device memory on a
 * GPU). The model only passes these handles to {@link Ops}; each backend subclasses this with
 * its own storage. Sized once per session, never per token.
 */
public abstract class Buf {
    private final String name;
    private final int rows;
    private final int cols;

    protected Buf(String name, int rows, int cols) {
        this.name = name;
        this.rows = rows;
        this.cols = cols;
    }

    /** A label for messages and debugging. */
    public String name() {
        return name;
    }

    /** Capacity in rows. */
    public int rows() {
        return rows;
    }

    /** Floats per row. */
    public int cols() {
        return cols;
    }

    @Override
    public String toString() {
        return name + "[" + rows + ", " + cols + "]";
    }
}
