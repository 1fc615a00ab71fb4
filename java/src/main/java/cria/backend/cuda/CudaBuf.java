// An activation buffer in device memory: rows x cols floats, row-major, 256-byte aligned.
package cria.backend.cuda;

import cria.backend.Buf;

/** Device-resident activations; {@link #ptr()} is the device address kernels receive. */
public final class CudaBuf extends Buf {
    private final long ptr;

    CudaBuf(String name, int rows, int cols, long ptr) {
        super(name, rows, cols);
        this.ptr = ptr;
    }

    public long ptr() {
        return ptr;
    }
}
