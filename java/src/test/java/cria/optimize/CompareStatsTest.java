// KL divergence, top-1 agreement, perplexities and percentiles of CompareStats on distributions worked out by hand.
package cria.optimize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class CompareStatsTest {
    private static float[] logits(double... probabilities) {
        float[] l = new float[probabilities.length];
        for (int i = 0; i < l.length; i++) {
            l[i] = (float) Math.log(probabilities[i]);
        }
        return l;
    }

    @Test
    void identicalDistributionsDivergeByExactlyZeroAndAgreeOnTheTopToken() {
        Random r = new Random(1);
        CompareStats s = new CompareStats(10);
        for (int t = 0; t < 50; t++) {
            float[] l = new float[37];
            for (int i = 0; i < l.length; i++) {
                l[i] = (float) (4 * r.nextGaussian());
            }
            s.add(l, l.clone(), l.length, r.nextInt(l.length));
        }
        assertEquals(50, s.count());
        assertEquals(0.0, s.meanKld());
        assertEquals(0.0, s.kldPercentile(0.99));
        assertEquals(0.0, s.maxKld());
        assertEquals(1.0, s.sameTopFraction());
        assertEquals(1.0, s.perplexityRatio());
        assertEquals(s.basePerplexity(), s.perplexity());
        assertEquals(0.0, s.meanPDiff());
    }

    @Test
    void knownDistributionsGiveTheirKnownDivergencePerplexityAndDeltaP() {
        // P = (1/2, 1/2), Q = (3/4, 1/4): KL(P||Q) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
        CompareStats s = new CompareStats(1);
        s.add(logits(0.5, 0.5), logits(0.75, 0.25), 2, 1);
        assertEquals(0.5 * Math.log(4.0 / 3), s.meanKld(), 1e-7);
        // the next token is 1: P gives it 1/2 (perplexity 2), Q 1/4 (perplexity 4)
        assertEquals(2.0, s.basePerplexity(), 1e-6);
        assertEquals(4.0, s.perplexity(), 1e-6);
        assertEquals(2.0, s.perplexityRatio(), 1e-6);
        assertEquals(-0.25, s.meanPDiff(), 1e-7);
        assertEquals(0.25, s.rmsPDiff(), 1e-7);
        // P's top is token 0 (the first of a tie), Q's is token 0: they agree
        assertEquals(1.0, s.sameTopFraction());

        // P = (0.1, 0.2, 0.7), Q = (0.6, 0.3, 0.1): the sum written out, and the tops differ
        CompareStats t = new CompareStats(1);
        t.add(logits(0.1, 0.2, 0.7), logits(0.6, 0.3, 0.1), 3, 2);
        double want = 0.1 * Math.log(0.1 / 0.6) + 0.2 * Math.log(0.2 / 0.3) + 0.7 * Math.log(0.7 / 0.1);
        assertEquals(want, t.meanKld(), 1e-6);
        assertEquals(0.0, t.sameTopFraction());
        assertEquals(7.0, t.perplexityRatio(), 1e-5); // next token 2: 1/0.1 against 1/0.7
    }

    @Test
    void theDivergenceIsNotSymmetricAndNeverNegative() {
        CompareStats pq = new CompareStats(1);
        CompareStats qp = new CompareStats(1);
        pq.add(logits(0.9, 0.1), logits(0.5, 0.5), 2, 0);
        qp.add(logits(0.5, 0.5), logits(0.9, 0.1), 2, 0);
        assertEquals(0.9 * Math.log(0.9 / 0.5) + 0.1 * Math.log(0.1 / 0.5), pq.meanKld(), 1e-6);
        assertEquals(0.5 * Math.log(0.5 / 0.9) + 0.5 * Math.log(0.5 / 0.1), qp.meanKld(), 1e-6);
        assertTrue(Math.abs(pq.meanKld() - qp.meanKld()) > 0.1);
        Random r = new Random(7);
        CompareStats s = new CompareStats(1);
        for (int t = 0; t < 200; t++) {
            float[] a = new float[64];
            float[] b = new float[64];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) (3 * r.nextGaussian());
                b[i] = a[i] + (float) (0.3 * r.nextGaussian());
            }
            s.add(a, b, a.length, r.nextInt(64));
        }
        assertTrue(s.kldPercentile(0) >= 0, "the smallest per-token KL divergence is negative: " + s.kldPercentile(0));
        assertTrue(s.meanKld() > 0 && s.kldPercentile(0.99) > s.kldPercentile(0.5));
        assertTrue(s.sameTopFraction() > 0.5 && s.sameTopFraction() < 1, "top-1 " + s.sameTopFraction());
    }

    @Test
    void percentilesInterpolateAsLlamaPerplexityDoes() {
        float[] v = new float[100];
        for (int i = 0; i < 100; i++) {
            v[i] = i + 1; // 1 .. 100
        }
        assertEquals(1 + 0.99 * 99, CompareStats.percentile(v, 100, 0.99), 1e-9);
        assertEquals(50.5, CompareStats.percentile(v, 100, 0.5), 1e-9);
        assertEquals(1, CompareStats.percentile(v, 100, 0));
        assertEquals(100, CompareStats.percentile(v, 100, 1));
        assertEquals(7, CompareStats.percentile(new float[] {7}, 1, 0.99));
        assertTrue(Double.isNaN(CompareStats.percentile(new float[0], 0, 0.99)));
        // the accumulator sorts what it was given, in any order
        CompareStats s = new CompareStats(2);
        double[] kls = {0.3, 0.1, 0.2};
        for (double k : kls) {
            // P = (1/2, 1/2) against Q = (q, 1-q) with KL(P||Q) = k solved for q: -1/2 ln(4 q (1-q)) = k
            double q = 0.5 * (1 + Math.sqrt(1 - Math.exp(-2 * k)));
            s.add(logits(0.5, 0.5), logits(q, 1 - q), 2, 0);
        }
        assertEquals(0.1, s.kldPercentile(0), 1e-6);
        assertEquals(0.2, s.kldPercentile(0.5), 1e-6);
        assertEquals(0.3, s.maxKld(), 1e-6);
        assertEquals(0.2 + 0.98 * 0.1, s.kldPercentile(0.99), 1e-6);
    }

    @Test
    void logSoftmaxGivesTheValuesThatPerplexitySums() {
        Random r = new Random(3);
        float[] l = new float[300];
        for (int i = 0; i < l.length; i++) {
            l[i] = (float) (5 * r.nextGaussian());
        }
        l[17] = 30;
        l[40] = 30; // a tie: the first one is the top
        double[] out = new double[l.length];
        assertEquals(17, CompareStats.logSoftmax(l, l.length, out));
        double sum = 0;
        for (int i = 0; i < l.length; i++) {
            assertEquals(CompareStats.logProb(l, l.length, i), out[i], "token " + i);
            sum += Math.exp(out[i]);
        }
        assertEquals(1.0, sum, 1e-12);
    }
}
