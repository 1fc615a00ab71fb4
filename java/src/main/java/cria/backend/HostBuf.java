// An activation buffer in off-heap host memory (used by the ref and cpu backends).
package cria.backend;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** rows × cols floats in a 64-byte-aligned off-heap segment, row-major, native byte order. */
public final class HostBuf extends Buf {
    private final MemorySegment seg;

    public HostBuf(String name, int rows, int cols, MemorySegment seg) {
        super(name, rows, cols);
        this.seg = seg;
    }

    public MemorySegment segment() {
        return seg;
    }

    /** Byte offset of row {@code r}. */
    public long rowOffset(int r) {
        return (long) r * cols() * Float.BYTES;
    }

    public float get(int r, int c) {
        return seg.getAtIndex(ValueLayout.JAVA_FLOAT, (long) r * cols() + c);
    }

    public void set(int r, int c, float v) {
        seg.setAtIndex(ValueLayout.JAVA_FLOAT, (long) r * cols() + c, v);
    }
}
