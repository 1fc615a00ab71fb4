// Checks SparseGPT against a hand-solved two-input case and, on correlated data, against Wanda and magnitude.
package cria.optimize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.ejml.data.DMatrixRMaj;
import org.junit.jupiter.api.Test;

class SparseGptTest {
    private static final int COLS = 64;
    private static final int ROWS = 24;
    private static final int TOKENS = 600;

    @Test
    void prunesTheCheaperInputAndMovesItsWorkToTheOther() {
        // H = [[2, 1], [1, 3]]: pruning input 0 of w = (1, 5) is cheaper (OBS error 5/3 against 75),
        // and the best fix for the kept input is w1 + w0·H01/H11 = 5 + 1/3.
        DMatrixRMaj h = new DMatrixRMaj(new double[][] {{2, 1}, {1, 3}});
        float[] w = {1, 5};
        SparseGpt.Result r = SparseGpt.prune(w, 1, 2, h, PrunePattern.unstructured(0.5), 0, 128, 1);
        assertEquals(0f, w[0]);
        assertEquals(5 + 1 / 3.0, w[1], 1e-6);
        assertEquals(0, r.deadInputs());
        assertEquals(0.5 * 1 / (3 / 5.0), r.loss(), 1e-9); // (w0 / U00)² / 2 with U00² = [H⁻¹]00 = 3/5
    }

    @Test
    void theFactorIsTheUpperCholeskyOfTheInverse() {
        Random rnd = new Random(3);
        DMatrixRMaj h = hessian(correlatedInputs(rnd, 12, 100), 12).matrix();
        DMatrixRMaj u = SparseGpt.upperCholeskyOfInverse(h, 0.0);
        DMatrixRMaj product = new DMatrixRMaj(12, 12);
        org.ejml.dense.row.CommonOps_DDRM.multTransA(u, u, product);
        DMatrixRMaj identity = new DMatrixRMaj(12, 12);
        org.ejml.dense.row.CommonOps_DDRM.mult(product, h, identity);
        for (int i = 0; i < 12; i++) {
            for (int j = 0; j < 12; j++) {
                assertEquals(i == j ? 1 : 0, identity.get(i, j), 1e-8, i + "," + j);
                if (j < i) {
                    assertEquals(0, u.get(i, j), "below the diagonal");
                }
            }
        }
    }

    @Test
    void nothingPrunedLeavesTheWeightsAsTheyAre() {
        Random rnd = new Random(5);
        float[] x = correlatedInputs(rnd, COLS, TOKENS);
        float[] w = PruneMasksTest.gaussian(rnd, ROWS * COLS);
        float[] p = w.clone();
        SparseGpt.prune(p, ROWS, COLS, hessian(x, COLS).matrix(), PrunePattern.unstructured(0), 0.01, 16, 2);
        assertArrayEquals(w, p);
    }

    @Test
    void deadInputsLoseTheirWeights() {
        Random rnd = new Random(9);
        float[] x = correlatedInputs(rnd, 8, 50);
        for (int t = 0; t < 50; t++) {
            x[t * 8 + 3] = 0;
        }
        float[] w = PruneMasksTest.gaussian(rnd, 2 * 8);
        SparseGpt.Result r = SparseGpt.prune(w, 2, 8, hessian(x, 8).matrix(), PrunePattern.unstructured(0.25), 0.01, 128, 1);
        assertEquals(1, r.deadInputs());
        assertEquals(0f, w[3]);
        assertEquals(0f, w[8 + 3]);
        assertEquals(2, PruneMasksTest.zerosInRow(w, 0, 8));
    }

    @Test
    void exactShareOfEveryRowAndNOfMGroups() {
        Random rnd = new Random(13);
        float[] x = correlatedInputs(rnd, COLS, TOKENS);
        DMatrixRMaj h = hessian(x, COLS).matrix();
        float[] w = PruneMasksTest.gaussian(rnd, ROWS * COLS);
        for (double s : new double[] {0.3, 0.5, 0.7}) {
            float[] p = w.clone();
            SparseGpt.prune(p, ROWS, COLS, h, PrunePattern.unstructured(s), 0.01, 24, 2);
            for (int r = 0; r < ROWS; r++) {
                assertEquals((int) Math.floor(COLS * s + 1e-9), PruneMasksTest.zerosInRow(p, r, COLS), "row " + r + " at " + s);
            }
        }
        float[] p = w.clone();
        SparseGpt.prune(p, ROWS, COLS, h, PrunePattern.nOfM(2, 4), 0.01, 128, 2);
        for (int r = 0; r < ROWS; r++) {
            for (int g = 0; g < COLS; g += 4) {
                int z = 0;
                for (int j = g; j < g + 4; j++) {
                    z += p[r * COLS + j] == 0 ? 1 : 0;
                }
                assertEquals(2, z, "row " + r + " group " + g);
            }
        }
    }

    @Test
    void oneThresholdPerBlockPrunesTheBlocksShareOverAllRows() {
        Random rnd = new Random(19);
        float[] x = correlatedInputs(rnd, COLS, TOKENS);
        SparseGpt.Hessian h = hessian(x, COLS);
        float[] w = PruneMasksTest.gaussian(rnd, ROWS * COLS);
        float[] perBlock = w.clone();
        SparseGpt.prune(perBlock, ROWS, COLS, h.matrix(), PrunePattern.unstructured(0.5), SparseGpt.MaskGroup.BLOCK, 0.01, 16, 2);
        boolean unequal = false;
        for (int b = 0; b < COLS; b += 16) {
            int zeros = 0;
            for (int r = 0; r < ROWS; r++) {
                for (int j = b; j < b + 16; j++) {
                    zeros += perBlock[r * COLS + j] == 0 ? 1 : 0;
                }
            }
            assertEquals(ROWS * 8, zeros, "block at " + b);
        }
        for (int r = 0; r < ROWS; r++) {
            unequal |= PruneMasksTest.zerosInRow(perBlock, r, COLS) != COLS / 2;
        }
        assertTrue(unequal, "one threshold for all rows leaves rows at different sparsities");
        float[] perRow = w.clone();
        SparseGpt.prune(perRow, ROWS, COLS, h.matrix(), PrunePattern.unstructured(0.5), 0.01, 16, 2);
        Wanda.Norms norms = new Wanda.Norms(COLS);
        norms.add(x, TOKENS);
        float[] wa = w.clone();
        Wanda.prune(wa, ROWS, COLS, norms.norms(), PrunePattern.unstructured(0.5));
        assertTrue(outputError(w, perBlock, x) < outputError(w, wa, x), "block-wise masks also beat wanda");
    }

    @Test
    void lazyBlocksGiveTheSameResultAsOneBlock() {
        // N:M masks are chosen when the sweep reaches each group, on fully updated weights, so
        // the block size (how late the updates of later columns are made) must not matter.
        Random rnd = new Random(17);
        float[] x = correlatedInputs(rnd, COLS, TOKENS);
        DMatrixRMaj h = hessian(x, COLS).matrix();
        float[] w = PruneMasksTest.gaussian(rnd, ROWS * COLS);
        float[] whole = w.clone();
        SparseGpt.prune(whole, ROWS, COLS, h, PrunePattern.nOfM(2, 4), 0.01, COLS, 1);
        for (int block : new int[] {4, 8, 20, 32}) {
            float[] b = w.clone();
            SparseGpt.prune(b, ROWS, COLS, h, PrunePattern.nOfM(2, 4), 0.01, block, 3);
            assertArrayEquals(whole, b, 1e-4f, "block " + block);
        }
    }

    @Test
    void reconstructsTheLayerOutputBetterThanWandaAndMagnitude() {
        Random rnd = new Random(21);
        float[] x = correlatedInputs(rnd, COLS, TOKENS);
        SparseGpt.Hessian h = hessian(x, COLS);
        Wanda.Norms norms = new Wanda.Norms(COLS);
        norms.add(x, TOKENS);
        float[] w = PruneMasksTest.gaussian(rnd, ROWS * COLS);
        for (PrunePattern p : new PrunePattern[] {PrunePattern.unstructured(0.5), PrunePattern.nOfM(2, 4), PrunePattern.unstructured(0.7)}) {
            float[] mag = w.clone();
            PruneMasks.magnitude(mag, ROWS, COLS, p);
            float[] wa = w.clone();
            Wanda.prune(wa, ROWS, COLS, norms.norms(), p);
            float[] sg = w.clone();
            SparseGpt.prune(sg, ROWS, COLS, h.matrix(), p, 0.01, 16, 2);
            double eMag = outputError(w, mag, x);
            double eWanda = outputError(w, wa, x);
            double eSparse = outputError(w, sg, x);
            assertTrue(eWanda < eMag, p + ": wanda " + eWanda + " vs magnitude " + eMag);
            assertTrue(eSparse < 0.9 * eWanda, p + ": sparsegpt " + eSparse + " vs wanda " + eWanda);
            assertEquals(PruneMasks.zeros(wa), PruneMasks.zeros(sg), p + ": the same budget of zeros");
        }
    }

    /** ‖W·X − Ŵ·X‖² over every token and output. */
    private static double outputError(float[] w, float[] pruned, float[] x) {
        double sum = 0;
        for (int t = 0; t < TOKENS; t++) {
            for (int r = 0; r < ROWS; r++) {
                double d = 0;
                for (int j = 0; j < COLS; j++) {
                    d += ((double) w[r * COLS + j] - pruned[r * COLS + j]) * x[t * COLS + j];
                }
                sum += d * d;
            }
        }
        return sum;
    }

    /** Inputs x = A·z with shared factors (correlated features) and per-feature scales spread over two decades. */
    static float[] correlatedInputs(Random rnd, int cols, int tokens) {
        int factors = cols / 2;
        double[][] a = new double[cols][factors];
        for (int j = 0; j < cols; j++) {
            double scale = Math.pow(10, rnd.nextDouble() * 2 - 1);
            for (int f = 0; f < factors; f++) {
                a[j][f] = scale * rnd.nextGaussian();
            }
        }
        float[] x = new float[tokens * cols];
        double[] z = new double[factors];
        for (int t = 0; t < tokens; t++) {
            for (int f = 0; f < factors; f++) {
                z[f] = rnd.nextGaussian();
            }
            for (int j = 0; j < cols; j++) {
                double v = 0.1 * rnd.nextGaussian();
                for (int f = 0; f < factors; f++) {
                    v += a[j][f] * z[f];
                }
                x[t * cols + j] = (float) v;
            }
        }
        return x;
    }

    static SparseGpt.Hessian hessian(float[] x, int cols) {
        SparseGpt.Hessian h = new SparseGpt.Hessian(cols);
        h.add(x, x.length / cols);
        return h;
    }
}
