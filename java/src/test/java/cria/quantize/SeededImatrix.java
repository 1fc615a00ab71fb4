// A deterministic importance matrix for a model's tensors (seeded, StrictMath): the one the recorded llama-quantize digests were made with.
package cria.quantize;

import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * For every matrix of a model except token_embd (llama-imatrix never has it), in file order:
 * column sums {@code 500 * exp(2 g)} with g standard normal from {@code new Random(42)} (a
 * spread of importance over two orders of magnitude) and a count of 500 rows; the second
 * layer's attn_k gets count 0 (a matrix that saw no input: llama-quantize weighs it 1).
 * Datasets ["seeded-42"], 5 chunks of 100. Run {@code main(MODEL, OUT)} to write it for
 * llama-quantize: {@code java -cp target/test-classes:target/classes cria.quantize.SeededImatrix MODEL OUT.gguf}.
 */
public final class SeededImatrix {
    private SeededImatrix() {}

    /** The matrix for the tensors of {@code model}. */
    public static ImportanceMatrix of(GgufFile model) {
        Random r = new Random(42);
        Map<String, ImportanceMatrix.Entry> m = new LinkedHashMap<>();
        for (GgufTensorInfo t : model.tensors()) {
            if (t.shape().length < 2 || t.name().equals("token_embd.weight")) {
                continue;
            }
            float[] s = new float[(int) t.shape()[0]];
            for (int i = 0; i < s.length; i++) {
                s[i] = (float) (StrictMath.exp(2 * r.nextGaussian()) * 500);
            }
            m.put(t.name(), new ImportanceMatrix.Entry(s, t.name().equals("blk.1.attn_k.weight") ? 0 : 500));
        }
        return new ImportanceMatrix(m, List.of("seeded-42"), 5, 100);
    }

    /** Writes the matrix of {@code args[0]} (a model) to {@code args[1]}. */
    public static void main(String[] args) {
        try (GgufFile f = GgufFile.open(Path.of(args[0]))) {
            of(f).write(Path.of(args[1]));
        }
    }
}
