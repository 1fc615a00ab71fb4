// Checks the pattern parsing, the per-row mask selection, magnitude and Wanda pruning on small hand-checkable cases.
package cria.optimize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import java.util.Random;
import org.junit.jupiter.api.Test;

class PruneMasksTest {

    @Test
    void patternsParseAndBoundTheirNumbers() {
        PrunePattern p = PrunePattern.parse("2:4");
        assertEquals(2, p.n());
        assertEquals(4, p.m());
        assertEquals(0.5, p.sparsity());
        assertEquals("2:4", p.toString());
        assertEquals(0.75, PrunePattern.parse(" 1:4 ").sparsity());
        for (String bad : new String[] {"", "2", "2:", ":4", "4:4", "5:4", "0:4", "-1:4", "2:1", "a:b", "2:4:8", "1:99999999999", "1:70000"}) {
            CriaException e = assertThrows(CriaException.class, () -> PrunePattern.parse(bad), bad);
            assertTrue(e.getMessage().contains("--pattern") && !e.getMessage().contains("\n"), e.getMessage());
        }
        assertThrows(CriaException.class, () -> PrunePattern.unstructured(1.0));
        assertThrows(CriaException.class, () -> PrunePattern.unstructured(-0.1));
        assertThrows(CriaException.class, () -> PrunePattern.unstructured(Double.NaN));
        CriaException e = assertThrows(CriaException.class, () -> PrunePattern.nOfM(2, 4).check(10, "blk.0.attn_q.weight"));
        assertTrue(e.getMessage().contains("10") && e.getMessage().contains("blk.0.attn_q.weight"), e.getMessage());
    }

    @Test
    void rangesOfARowAddUpToItsShare() {
        PrunePattern p = PrunePattern.unstructured(0.3);
        int total = 0;
        for (int from = 0; from < 100; from += 7) {
            total += p.prunedIn(from, Math.min(100, from + 7));
        }
        assertEquals(30, total);
        assertEquals(128, PrunePattern.unstructured(0.5).prunedIn(0, 256));
        assertEquals(0, PrunePattern.unstructured(0).prunedIn(0, 256));
    }

    @Test
    void magnitudeZeroesTheSmallestOfEachRow() {
        float[] w = {
            1, -5, 0.5f, 3,
            -0.1f, 0.2f, -0.3f, 0.4f,
        };
        PruneMasks.magnitude(w, 2, 4, PrunePattern.unstructured(0.5));
        assertArrayEquals(new float[] {0, -5, 0, 3, 0, 0, -0.3f, 0.4f}, w);
    }

    @Test
    void tiesGoToTheLowerIndex() {
        float[] w = {2, 2, 2, 2, 1, 1};
        PruneMasks.magnitude(w, 1, 6, PrunePattern.unstructured(0.5));
        assertArrayEquals(new float[] {0, 2, 2, 2, 0, 0}, w);
    }

    @Test
    void nOfMKeepsTheLargestOfEachGroup() {
        float[] w = {
            1, 4, -3, 2, /**/ 0.1f, -0.4f, 0.3f, 0.2f,
            9, 8, 7, 6, /**/ -1, 1, -2, 2,
        };
        PruneMasks.magnitude(w, 2, 8, PrunePattern.nOfM(2, 4));
        assertArrayEquals(new float[] {0, 4, -3, 0, 0, -0.4f, 0.3f, 0, 9, 8, 0, 0, 0, 0, -2, 2}, w);
    }

    @Test
    void everyRowLosesExactlyItsShareOnRandomData() {
        Random rnd = new Random(7);
        int rows = 13;
        int cols = 48;
        float[] w = gaussian(rnd, rows * cols);
        float[] norms = new float[cols];
        for (int j = 0; j < cols; j++) {
            norms[j] = (float) Math.exp(rnd.nextGaussian());
        }
        for (double s : new double[] {0.1, 0.5, 0.77}) {
            float[] m = w.clone();
            PruneMasks.magnitude(m, rows, cols, PrunePattern.unstructured(s));
            float[] wa = w.clone();
            Wanda.prune(wa, rows, cols, norms, PrunePattern.unstructured(s));
            for (int r = 0; r < rows; r++) {
                assertEquals((int) Math.floor(cols * s + 1e-9), zerosInRow(m, r, cols), "magnitude row " + r + " at " + s);
                assertEquals((int) Math.floor(cols * s + 1e-9), zerosInRow(wa, r, cols), "wanda row " + r + " at " + s);
            }
            assertKeptUnchanged(w, m);
            assertKeptUnchanged(w, wa);
        }
        for (int[] nm : new int[][] {{2, 4}, {1, 4}, {4, 8}, {3, 16}}) {
            float[] wa = w.clone();
            Wanda.prune(wa, rows, cols, norms, PrunePattern.nOfM(nm[0], nm[1]));
            for (int r = 0; r < rows; r++) {
                for (int g = 0; g < cols; g += nm[1]) {
                    int z = 0;
                    for (int j = g; j < g + nm[1]; j++) {
                        z += wa[r * cols + j] == 0 ? 1 : 0;
                    }
                    assertEquals(nm[1] - nm[0], z, nm[0] + ":" + nm[1] + " row " + r + " group " + g);
                }
            }
        }
    }

    @Test
    void wandaIsMagnitudeWhenEveryInputHasTheSameNorm() {
        Random rnd = new Random(11);
        float[] w = gaussian(rnd, 9 * 32);
        float[] norms = new float[32];
        java.util.Arrays.fill(norms, 3.5f);
        for (PrunePattern p : new PrunePattern[] {PrunePattern.unstructured(0.5), PrunePattern.nOfM(2, 4)}) {
            float[] m = w.clone();
            float[] wa = w.clone();
            PruneMasks.magnitude(m, 9, 32, p);
            Wanda.prune(wa, 9, 32, norms, p);
            assertArrayEquals(m, wa, p.toString());
        }
    }

    @Test
    void wandaKeepsSmallWeightsOfLargeInputs() {
        // row: weights 1, 2, 3, 4 on inputs whose norms are 10, 1, 1, 0.1: scores 10, 2, 3, 0.4
        float[] w = {1, 2, 3, 4};
        Wanda.Norms n = new Wanda.Norms(4);
        n.add(new float[] {6, 0.6f, 0.8f, 0.06f, 8, 0.8f, 0.6f, 0.08f}, 2); // column norms 10, 1, 1, 0.1
        assertEquals(2, n.rows());
        assertArrayEquals(new float[] {10, 1, 1, 0.1f}, n.norms(), 1e-6f);
        Wanda.prune(w, 1, 4, n.norms(), PrunePattern.unstructured(0.5));
        assertArrayEquals(new float[] {1, 0, 3, 0}, w);
    }

    static float[] gaussian(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    static int zerosInRow(float[] w, int r, int cols) {
        int z = 0;
        for (int j = 0; j < cols; j++) {
            z += w[r * cols + j] == 0 ? 1 : 0;
        }
        return z;
    }

    private static void assertKeptUnchanged(float[] before, float[] after) {
        for (int i = 0; i < before.length; i++) {
            assertTrue(after[i] == 0 || after[i] == before[i], "weight " + i + " changed");
        }
    }
}
