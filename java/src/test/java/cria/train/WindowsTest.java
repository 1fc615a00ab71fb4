// The recipe's windows against hand computations and an independent BigInteger SplitMix64 / Fisher-Yates.
package cria.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import java.math.BigInteger;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class WindowsTest {
    private static final BigInteger M = BigInteger.ONE.shiftLeft(64);

    private static BigInteger u(long hex) {
        return new BigInteger(Long.toUnsignedString(hex));
    }

    // SplitMix64's finalizer in arbitrary precision, reduced mod 2^64 by hand.
    private static BigInteger mix(BigInteger z) {
        z = z.xor(z.shiftRight(30)).multiply(u(0xBF58476D1CE4E5B9L)).mod(M);
        z = z.xor(z.shiftRight(27)).multiply(u(0x94D049BB133111EBL)).mod(M);
        return z.xor(z.shiftRight(31));
    }

    /** The recipe's permutation written again, as plainly as possible, in BigInteger arithmetic. */
    static int[] referencePermutation(int n, BigInteger seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        BigInteger state = seed.mod(M);
        for (int j = n - 1; j >= 1; j--) {
            state = state.add(u(0x9E3779B97F4A7C15L)).mod(M);
            int r = mix(state).shiftRight(11).mod(BigInteger.valueOf(j + 1)).intValue();
            int t = p[j];
            p[j] = p[r];
            p[r] = t;
        }
        return p;
    }

    private static BigInteger epochSeed(long seed, long epoch) {
        return BigInteger.valueOf(seed).add(BigInteger.valueOf(epoch).multiply(u(0xD1B54A32D192ED03L)));
    }

    private static int[] stream(int n) {
        int[] s = new int[n];
        for (int i = 0; i < n; i++) {
            s[i] = 100 + i;
        }
        return s;
    }

    private static int[][] window(Windows w, long k) {
        int[] in = new int[w.ctx() + 2];
        int[] tg = new int[w.ctx() + 2];
        w.fill(k, in, tg, 1);
        return new int[][] {Arrays.copyOfRange(in, 1, 1 + w.ctx()), Arrays.copyOfRange(tg, 1, 1 + w.ctx())};
    }

    @Test
    void sequentialWindowsStepThroughTheStreamAndWrap() {
        Windows w = new Windows(stream(7), 3, false, 42);
        assertEquals(0, w.start(0));
        assertEquals(3, w.start(1));
        assertEquals(6, w.start(2));
        assertEquals(2, w.start(3)); // 9 mod 7
        assertArrayEquals(new int[] {100, 101, 102}, window(w, 0)[0]);
        assertArrayEquals(new int[] {101, 102, 103}, window(w, 0)[1]);
        assertArrayEquals(new int[] {106, 100, 101}, window(w, 2)[0], "window 2 wraps past the end");
        assertArrayEquals(new int[] {100, 101, 102}, window(w, 2)[1]);
        assertEquals(5, w.start(4)); // 12 mod 7
        assertArrayEquals(new int[] {105, 106, 100}, window(w, 4)[0]);
        assertArrayEquals(new int[] {106, 100, 101}, window(w, 4)[1]);
    }

    @Test
    void fillLeavesTheRestOfTheRowAlone() {
        Windows w = new Windows(stream(7), 3, false, 42);
        int[] in = new int[5];
        int[] tg = new int[5];
        Arrays.fill(in, -1);
        Arrays.fill(tg, -1);
        w.fill(1, in, tg, 1);
        assertArrayEquals(new int[] {-1, 103, 104, 105, -1}, in);
        assertArrayEquals(new int[] {-1, 104, 105, 106, -1}, tg);
        assertThrows(IllegalArgumentException.class, () -> w.fill(0, in, tg, 3));
    }

    @Test
    void sequentialStartDoesNotOverflowForHugeCounters() {
        Windows w = new Windows(stream(7), 3, false, 42);
        long k = Long.MAX_VALUE / 2;
        assertEquals(BigInteger.valueOf(k).multiply(BigInteger.valueOf(3)).mod(BigInteger.valueOf(7)).longValue(), w.start(k));
    }

    @Test
    void permutationForSeed42IsPinned() {
        int[] expected = referencePermutation(10, BigInteger.valueOf(42));
        assertArrayEquals(expected, Windows.permutation(10, 42));
        // the same values from a Python re-implementation, so that both cannot drift together
        assertArrayEquals(new int[] {0, 2, 7, 5, 9, 4, 8, 3, 6, 1}, Windows.permutation(10, 42));
        assertArrayEquals(new int[] {9, 2, 6, 7, 0, 1, 5, 4, 8, 3}, Windows.permutation(10, 42 + Windows.EPOCH_STRIDE));
    }

    @Test
    void permutationsArePermutationsAndMatchTheReference() {
        for (int n : new int[] {1, 2, 3, 10, 97, 1000}) {
            for (long seed : new long[] {0, 1, 42, -1, Long.MIN_VALUE, 0x123456789ABCDEFL}) {
                int[] p = Windows.permutation(n, seed);
                int[] sorted = p.clone();
                Arrays.sort(sorted);
                for (int i = 0; i < n; i++) {
                    assertEquals(i, sorted[i], "n=" + n + " seed=" + seed + " is not a permutation");
                }
                assertArrayEquals(referencePermutation(n, BigInteger.valueOf(seed)), p, "n=" + n + " seed=" + seed);
            }
        }
    }

    @Test
    void shuffledWindowsFollowEachEpochsPermutation() {
        int[] s = stream(23);
        int ctx = 4;
        long seed = 7;
        Windows w = new Windows(s, ctx, true, seed);
        assertEquals(5, w.perEpoch()); // floor(23 / 4)
        for (long k = 0; k < 40; k++) {
            long e = k / 5;
            int[] perm = referencePermutation(5, epochSeed(seed, e));
            long start = (long) perm[(int) (k % 5)] * ctx;
            assertEquals(start, w.start(k), "window " + k);
            int[][] win = window(w, k);
            for (int t = 0; t < ctx; t++) {
                assertEquals(s[(int) (start + t)], win[0][t]);
                assertEquals(s[(int) (start + t + 1)], win[1][t]);
            }
        }
        // going back to an earlier epoch gives the same windows again
        assertEquals(referencePermutation(5, epochSeed(seed, 0))[3] * (long) ctx, w.start(3));
    }

    @Test
    void epochsShuffleDifferently() {
        Windows w = new Windows(stream(100), 10, true, 42);
        long[] e0 = new long[10];
        long[] e1 = new long[10];
        for (int k = 0; k < 10; k++) {
            e0[k] = w.start(k);
            e1[k] = w.start(10 + k);
        }
        assertNotEquals(Arrays.toString(e0), Arrays.toString(e1));
        long[] sorted0 = e0.clone();
        long[] sorted1 = e1.clone();
        Arrays.sort(sorted0);
        Arrays.sort(sorted1);
        assertArrayEquals(new long[] {0, 10, 20, 30, 40, 50, 60, 70, 80, 90}, sorted0, "each epoch visits every window once");
        assertArrayEquals(sorted0, sorted1);
        assertArrayEquals(new long[] {0, 20, 70, 50, 90, 40, 80, 30, 60, 10}, e0); // seed 42's pinned permutation times ctx
    }

    @Test
    void aStreamShorterThanTheContextWrapsInOneWindow() {
        Windows w = new Windows(new int[] {5, 6, 7}, 4, true, 1);
        assertEquals(1, w.perEpoch());
        assertEquals(0, w.start(9));
        assertArrayEquals(new int[] {5, 6, 7, 5}, window(w, 9)[0]);
        assertArrayEquals(new int[] {6, 7, 5, 6}, window(w, 9)[1]);
    }

    @Test
    void gradientAccumulationCountsRowsWithinMicroBatchesWithinSteps() {
        int accum = 3;
        int batch = 4;
        long expected = 0;
        for (long s = 0; s < 3; s++) {
            for (int a = 0; a < accum; a++) {
                for (int i = 0; i < batch; i++) {
                    assertEquals(expected++, Windows.index(s, accum, a, batch, i), "step " + s + " micro " + a + " row " + i);
                }
            }
        }
        assertEquals((5L * 3 + 2) * 4 + 1, Windows.index(5, 3, 2, 4, 1));
        assertEquals(3_000_000_000L * 8 * 64, Windows.index(3_000_000_000L, 8, 0, 64, 0), "counted in long");
        assertThrows(IllegalArgumentException.class, () -> Windows.index(0, 3, 3, 4, 0));
        assertThrows(IllegalArgumentException.class, () -> Windows.index(0, 3, 0, 4, 4));
    }

    @Test
    void validationWindowsAreConsecutiveWithoutWrapping() {
        int[] v = stream(10);
        Windows.Validation val = new Windows.Validation(v, 3, 100);
        assertEquals(3, val.count()); // floor(9 / 3)
        int[] in = new int[3];
        int[] tg = new int[3];
        val.fill(2, in, tg, 0);
        assertArrayEquals(new int[] {106, 107, 108}, in);
        assertArrayEquals(new int[] {107, 108, 109}, tg);
        val.fill(0, in, tg, 0);
        assertArrayEquals(new int[] {100, 101, 102}, in);
        assertEquals(2, new Windows.Validation(v, 3, 2).count(), "capped");
        assertEquals(1, new Windows.Validation(stream(4), 3, 100).count(), "exactly ctx + 1 tokens make one window");
        CriaException e = assertThrows(CriaException.class, () -> new Windows.Validation(stream(3), 3, 100));
        assertTrue(e.getMessage().contains("--val-split") && e.getMessage().contains("--ctx"), e.getMessage());
        assertThrows(CriaException.class, () -> new Windows.Validation(new int[0], 3, 100));
    }

    @Test
    void badStreamsAndContextsAreRefused() {
        assertThrows(CriaException.class, () -> new Windows(new int[0], 4, true, 1));
        assertThrows(CriaException.class, () -> new Windows(stream(10), 0, true, 1));
        assertThrows(IllegalArgumentException.class, () -> new Windows(stream(10), 2, true, 1).start(-1));
    }
}
