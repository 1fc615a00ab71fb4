// Random weight tensors of every type for the CUDA tests (RandomWeights in the main code, which cria kernels uses too).
package cria.backend.cuda;

import cria.bench.RandomWeights;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.util.Random;

/** The tests' name for {@link RandomWeights}. */
public final class RandomTensors {
    private RandomTensors() {}

    static int[] scaleFields(GgmlType t) {
        return RandomWeights.scaleFields(t);
    }

    /** A {@code rows x cols} weight of type {@code t} (ggml shape [cols, rows]), values of order one. */
    public static Tensor matrix(String name, GgmlType t, int rows, int cols, Random r) {
        return RandomWeights.matrix(name, t, rows, cols, r);
    }

    /** As {@link #matrix(String, GgmlType, int, int, Random)} with every value scaled by about {@code scale}. */
    public static Tensor matrix(String name, GgmlType t, int rows, int cols, Random r, double scale) {
        return RandomWeights.matrix(name, t, rows, cols, r, scale);
    }
}
