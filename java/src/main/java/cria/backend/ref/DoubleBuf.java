// A buffer of the training oracle (RefTrainOps): rows × cols float64 values on the heap, row-major.
package cria.backend.ref;

import cria.backend.Buf;

/** Training's reference memory: every value kept in double so that the oracle rounds nothing between ops. */
final class DoubleBuf extends Buf {
    /** The values, row-major: value (r, c) is {@code data[r · cols + c]}. */
    final double[] data;

    DoubleBuf(String name, int rows, int cols) {
        super(name, rows, cols);
        data = new double[rows * cols];
    }

    double get(int r, int c) {
        return data[r * cols() + c];
    }

    void set(int r, int c, double v) {
        data[r * cols() + c] = v;
    }

    void add(int r, int c, double v) {
        data[r * cols() + c] += v;
    }
}
