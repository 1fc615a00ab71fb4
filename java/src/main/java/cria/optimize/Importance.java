// The importance matrix being collected: per product, the sum of each input column's squared activation.
package cria.optimize;

import cria.backend.Weight;
import cria.quantize.ImportanceMatrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A {@link Calibration.Tap} that sums, for every product it is shown, each input column's squared
 * activation over the rows, and counts the rows, as llama.cpp's {@code llama-imatrix} does: only
 * products of the blocks ({@code blk.*}) and, when asked, {@code output.weight}; inputs of fewer
 * than 16 rows are ignored (llama-imatrix's rule, which keeps single-token steps out). Sums are kept
 * in double (llama-imatrix keeps float), which only removes rounding.
 */
public final class Importance implements Calibration.Tap {
    /** Products with fewer input rows than this are not counted (as llama-imatrix). */
    public static final int MIN_ROWS = 16;

    private final boolean processOutput;
    private final Map<String, double[]> sums = new TreeMap<>();
    private final Map<String, Long> counts = new TreeMap<>();

    /** @param processOutput also collect {@code output.weight} */
    public Importance(boolean processOutput) {
        this.processOutput = processOutput;
    }

    @Override
    public void accept(Weight weight, MemorySegment x, int n) {
        String name = weight.name();
        int bracket = name.indexOf('[');
        if (bracket > 0) {
            // a row view of a fused matrix (phi3's attn_qkv, ffn_up: LlamaWeights names them
            // "NAME[part]"): every part has the same input, llama-imatrix's one entry of NAME
            if (!name.endsWith("[q]") && !name.endsWith("[gate]")) {
                return;
            }
            name = name.substring(0, bracket);
        }
        if (n < MIN_ROWS || !(name.startsWith("blk.") || processOutput && name.equals("output.weight"))) {
            return;
        }
        int cols = weight.cols();
        double[] s = sums.computeIfAbsent(name, k -> new double[cols]);
        for (int r = 0; r < n; r++) {
            long base = (long) r * cols * Float.BYTES;
            for (int j = 0; j < cols; j++) {
                float v = x.getAtIndex(ValueLayout.JAVA_FLOAT, base / Float.BYTES + j);
                s[j] += (double) v * v;
            }
        }
        counts.merge(name, (long) n, Long::sum);
    }

    /** The sums of squares of one product's input columns so far, or null (shared, not a copy). */
    public double[] sums(String name) {
        return sums.get(name);
    }

    /** Rows seen by one product so far (0 if none). */
    public long count(String name) {
        return counts.getOrDefault(name, 0L);
    }

    /** What was collected, as an importance matrix file's content. */
    public ImportanceMatrix matrix(List<String> datasets, int chunks, int chunkSize) {
        Map<String, ImportanceMatrix.Entry> entries = new TreeMap<>();
        for (Map.Entry<String, double[]> e : sums.entrySet()) {
            double[] s = e.getValue();
            float[] f = new float[s.length];
            for (int j = 0; j < s.length; j++) {
                f[j] = (float) s[j];
            }
            entries.put(e.getKey(), new ImportanceMatrix.Entry(f, counts.get(e.getKey())));
        }
        return new ImportanceMatrix(entries, datasets, chunks, chunkSize);
    }
}
