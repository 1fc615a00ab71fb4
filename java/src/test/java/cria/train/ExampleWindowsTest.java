package cria.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Fine-tuning's windows: padding and packing, the mask of learned targets, epochs, and validation windows. */
class ExampleWindowsTest {

    /** Example i: tokens 1 (BOS), then 10·(i+1) + t; the last two tokens learned. */
    private static Examples.Encoded example(int i, int length) {
        int[] tok = new int[length];
        boolean[] trained = new boolean[length];
        tok[0] = 1;
        for (int t = 1; t < length; t++) {
            tok[t] = 10 * (i + 1) + t;
            trained[t] = t >= length - 2;
        }
        return new Examples.Encoded(tok, trained, false);
    }

    @Test
    void aPaddedWindowHoldsOneExampleAndScoresOnlyWhatItLearns() {
        List<Examples.Encoded> ex = List.of(example(0, 4), example(1, 6));
        ExampleWindows w = new ExampleWindows(2, (i, e) -> ex.get(i), 5, false, 0, false, 2);
        int[] in = new int[5];
        int[] tg = new int[5];
        w.fill(0, in, tg, 0);
        assertArrayEquals(new int[] {1, 11, 12, 13, 2}, in, "the example, then padding");
        assertArrayEquals(new int[] {-1, 12, 13, -1, -1}, tg, "targets of the learned tokens only; nothing after the end");
        w.fill(1, in, tg, 0);
        assertArrayEquals(new int[] {1, 21, 22, 23, 24}, in, "a window of ctx inputs");
        assertArrayEquals(new int[] {-1, -1, -1, 24, 25}, tg, "ctx + 1 tokens: the last one a target only");
        w.fill(2, in, tg, 0);
        assertArrayEquals(new int[] {1, 11, 12, 13, 2}, in, "the second epoch starts again (file order)");
    }

    @Test
    void packedWindowsHoldWholeExamplesAndNoTargetCrossesBetweenThem() {
        List<Examples.Encoded> ex = List.of(example(0, 3), example(1, 3), example(2, 4));
        ExampleWindows w = new ExampleWindows(3, (i, e) -> ex.get(i), 7, false, 0, true, 0);
        assertEquals(2, w.perEpoch(), "3 + 3 tokens fit a window of 7; the third starts the next");
        int[] in = new int[7];
        int[] tg = new int[7];
        w.fill(0, in, tg, 0);
        assertArrayEquals(new int[] {1, 11, 12, 1, 21, 22, 0}, in);
        assertArrayEquals(new int[] {11, 12, -1, 21, 22, -1, -1}, tg, "each example's own targets; the seam is not scored");
    }

    @Test
    void shuffledEpochsAreSeededPermutations() {
        List<Examples.Encoded> ex = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            ex.add(example(i, 3));
        }
        ExampleWindows a = new ExampleWindows(9, (i, e) -> ex.get(i), 3, true, 5, false, 0);
        ExampleWindows b = new ExampleWindows(9, (i, e) -> ex.get(i), 3, true, 5, false, 0);
        int[] first = new int[9];
        int[] second = new int[9];
        int[] in = new int[3];
        int[] tg = new int[3];
        for (int k = 0; k < 18; k++) {
            a.fill(k, in, tg, 0);
            int[] in2 = new int[3];
            b.fill(k, in2, new int[3], 0);
            assertArrayEquals(in, in2, "the same seed, the same window " + k);
            (k < 9 ? first : second)[k % 9] = in[1] / 10 - 1;
        }
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8}, sorted(first), "every example once an epoch");
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8}, sorted(second));
        assertNotEquals(Arrays.toString(first), Arrays.toString(second), "a new order each epoch");
    }

    private static int[] sorted(int[] a) {
        int[] c = a.clone();
        Arrays.sort(c);
        return c;
    }

    @Test
    void validationWindowsArePaddedExamplesUpToTheLimit() {
        List<Examples.Encoded> ex = List.of(example(0, 3), example(1, 3), example(2, 3));
        TrainSource.Validation v = ExampleWindows.validation(ex, 4, 2, 0);
        assertEquals(2, v.count());
        int[] in = new int[8];
        int[] tg = new int[8];
        v.fill(1, in, tg, 4);
        assertArrayEquals(new int[] {0, 0, 0, 0, 1, 21, 22, 0}, in);
        assertArrayEquals(new int[] {0, 0, 0, 0, 21, 22, -1, -1}, tg);
    }
}
