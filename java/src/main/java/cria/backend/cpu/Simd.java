// Vector API kernels on float rows in MemorySegments and arrays: dot products, scaled adds, sums of squares.
package cria.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Small SIMD building blocks (the preferred species of this CPU, with scalar tails). */
final class Simd {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Simd() {}

    /** Dot of a[0..n) with the floats of seg at byte offset off. */
    static float dot(float[] a, MemorySegment seg, long off, int n) {
        int i = 0;
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int step = F.length();
        for (; i + 2 * step <= n; i += 2 * step) {
            acc0 = FloatVector.fromArray(F, a, i).fma(FloatVector.fromMemorySegment(F, seg, off + 4L * i, LE), acc0);
            acc1 = FloatVector.fromArray(F, a, i + step).fma(FloatVector.fromMemorySegment(F, seg, off + 4L * (i + step), LE), acc1);
        }
        for (; i + step <= n; i += step) {
            acc0 = FloatVector.fromArray(F, a, i).fma(FloatVector.fromMemorySegment(F, seg, off + 4L * i, LE), acc0);
        }
        float s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += a[i] * seg.get(cria.tensor.LE.FLOAT, off + 4L * i);
        }
        return s;
    }

    /** Dot of two segments' float runs. */
    static float dot(MemorySegment a, long aOff, MemorySegment b, long bOff, int n) {
        int i = 0;
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int step = F.length();
        for (; i + 2 * step <= n; i += 2 * step) {
            acc0 = FloatVector.fromMemorySegment(F, a, aOff + 4L * i, LE).fma(FloatVector.fromMemorySegment(F, b, bOff + 4L * i, LE), acc0);
            acc1 = FloatVector.fromMemorySegment(F, a, aOff + 4L * (i + step), LE)
                    .fma(FloatVector.fromMemorySegment(F, b, bOff + 4L * (i + step), LE), acc1);
        }
        for (; i + step <= n; i += step) {
            acc0 = FloatVector.fromMemorySegment(F, a, aOff + 4L * i, LE).fma(FloatVector.fromMemorySegment(F, b, bOff + 4L * i, LE), acc0);
        }
        float s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += a.get(cria.tensor.LE.FLOAT, aOff + 4L * i) * b.get(cria.tensor.LE.FLOAT, bOff + 4L * i);
        }
        return s;
    }

    /** Dot of two arrays. */
    static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int i = 0;
        FloatVector acc = FloatVector.zero(F);
        int step = F.length();
        for (; i + step <= n; i += step) {
            acc = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc);
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += a[aOff + i] * b[bOff + i];
        }
        return s;
    }

    /** y[0..n) += a * x[0..n) (arrays). */
    static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        int step = F.length();
        FloatVector va = FloatVector.broadcast(F, a);
        for (; i + step <= n; i += step) {
            FloatVector.fromArray(F, x, xOff + i).fma(va, FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] += a * x[xOff + i];
        }
    }

    /** Sum of squares of a segment's floats, accumulated in double per vector chunk. */
    static double sumSquares(MemorySegment s, long off, int n) {
        int i = 0;
        int step = F.length();
        FloatVector acc = FloatVector.zero(F);
        for (; i + step <= n; i += step) {
            FloatVector v = FloatVector.fromMemorySegment(F, s, off + 4L * i, LE);
            acc = v.fma(v, acc);
        }
        double sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            float v = s.get(cria.tensor.LE.FLOAT, off + 4L * i);
            sum += v * v;
        }
        return sum;
    }
}
