// SVD-LLM's Gram matrices G = XᵀX of chosen products' inputs, accumulated in double over a calibration pass.
package cria.optimize;

import cria.backend.Weight;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.LongConsumer;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;

/**
 * A {@link LowRank.GramPass} over a {@link Calibration}: each pass runs every chunk through the
 * model and adds {@code xᵀx} of the rows each named product sees into its Gram matrix
 * (cols × cols, double). Products that share an input (q, k and v) are named once, by the one
 * {@link LowRank.Item#inputOf} picks.
 */
public final class LowRankGrams implements LowRank.GramPass {
    private final Calibration calibration;
    private final int[][] chunks;
    private final PassListener listener;

    /** Told when a pass starts (so a progress bar can be made) and of the tokens it has run. */
    public interface PassListener {
        LongConsumer started(int products);
    }

    /** Passes over these chunks of calibration text; {@code listener} may be null. */
    public LowRankGrams(Calibration calibration, int[][] chunks, PassListener listener) {
        this.calibration = calibration;
        this.chunks = chunks;
        this.listener = listener;
    }

    @Override
    public Map<String, double[]> run(Set<String> products) {
        Map<String, double[]> grams = new LinkedHashMap<>();
        Accumulator acc = new Accumulator(grams, products);
        calibration.run(chunks, acc, listener == null ? null : listener.started(products.size()));
        for (String p : products) {
            if (!grams.containsKey(p)) {
                throw new IllegalStateException("the calibration pass never ran " + p);
            }
        }
        return grams;
    }

    /** The tap: G += xᵀx for the wanted products (EJML's multAddTransA over the rows as doubles). */
    static final class Accumulator implements Calibration.Tap {
        private final Map<String, double[]> grams;
        private final Set<String> wanted;
        private DMatrixRMaj rows = new DMatrixRMaj(1, 1);

        Accumulator(Map<String, double[]> grams, Set<String> wanted) {
            this.grams = grams;
            this.wanted = wanted;
        }

        @Override
        public void accept(Weight weight, MemorySegment x, int n) {
            String name = weight.name();
            if (!wanted.contains(name)) {
                return;
            }
            int c = weight.cols();
            double[] g = grams.computeIfAbsent(name, k -> new double[Math.multiplyExact(c, c)]);
            add(g, c, x, n);
        }

        /** g (c × c) += xᵀx for n rows of c floats. */
        void add(double[] g, int c, MemorySegment x, int n) {
            if (n == 0) {
                return;
            }
            rows.reshape(n, c);
            long count = (long) n * c;
            for (int i = 0; i < count; i++) {
                rows.data[i] = x.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            }
            CommonOps_DDRM.multAddTransA(rows, rows, DMatrixRMaj.wrap(c, c, g));
        }
    }
}
