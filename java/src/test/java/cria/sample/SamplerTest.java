// The sampler: greedy picks the maximum, filters keep what they should, draws follow the distribution, seeds repeat.
package cria.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class SamplerTest {
    static float[] logits(int n, long seed) {
        Random r = new Random(seed);
        float[] l = new float[n];
        for (int i = 0; i < n; i++) {
            l[i] = (float) r.nextGaussian() * 3;
        }
        return l;
    }

    @Test
    void greedyIsArgmax() {
        float[] l = logits(1000, 1);
        Sampler s = new Sampler(SamplerParams.greedy(), 1000);
        assertEquals(Sampler.argmax(l), s.sample(l));
    }

    @Test
    void topKOneIsGreedyAtAnyTemperature() {
        float[] l = logits(5000, 2);
        Sampler s = new Sampler(SamplerParams.defaults().withTopK(1).withTemperature(2f).withSeed(3), 5000);
        for (int i = 0; i < 20; i++) {
            assertEquals(Sampler.argmax(l), s.sample(l));
        }
    }

    @Test
    void drawsFollowTheSoftmaxWithoutFilters() {
        float[] l = {0f, (float) Math.log(3), (float) Math.log(6)}; // probabilities 0.1, 0.3, 0.6
        Sampler s = new Sampler(SamplerParams.defaults().withTopK(0).withTopP(1f).withMinP(0f).withTemperature(1f).withSeed(5), 3);
        int[] c = new int[3];
        int n = 20000;
        for (int i = 0; i < n; i++) {
            c[s.sample(l)]++;
        }
        assertEquals(0.1, c[0] / (double) n, 0.015);
        assertEquals(0.3, c[1] / (double) n, 0.015);
        assertEquals(0.6, c[2] / (double) n, 0.015);
    }

    @Test
    void topPAndMinPDropTheTail() {
        float[] l = {0f, (float) Math.log(3), (float) Math.log(6)};
        Sampler p = new Sampler(SamplerParams.defaults().withTopK(0).withTopP(0.5f).withMinP(0f).withSeed(1), 3);
        Sampler m = new Sampler(SamplerParams.defaults().withTopK(0).withTopP(1f).withMinP(0.4f).withSeed(1), 3);
        for (int i = 0; i < 500; i++) {
            assertEquals(2, p.sample(l));       // 0.6 alone reaches 0.5
            assertTrue(m.sample(l) >= 1);       // 0.1 < 0.4 * 0.6
        }
    }

    @Test
    void repeatPenaltyAndPresencePenaltyPushDownSeenTokens() {
        float[] l = {5f, 4.9f, -1f};
        Sampler s = new Sampler(SamplerParams.greedy().withRepeatPenalty(1.1f), 3);
        assertEquals(0, s.sample(l));
        s.accept(0);
        assertEquals(1, s.sample(l)); // 5 / 1.1 < 4.9
        Sampler pres = new Sampler(SamplerParams.greedy().withPresencePenalty(0.2f), 3);
        pres.accept(0);
        assertEquals(1, pres.sample(l));
        Sampler freq = new Sampler(SamplerParams.greedy().withFrequencyPenalty(0.06f), 3);
        freq.accept(0);
        assertEquals(0, freq.sample(l)); // 5 - 0.06 > 4.9
        freq.accept(0);
        assertEquals(1, freq.sample(l)); // 5 - 0.12 < 4.9
    }

    @Test
    void seedsRepeatAndDiffer() {
        float[] l = logits(3000, 9);
        SamplerParams p = SamplerParams.defaults().withTemperature(1.2f).withTopK(0).withTopP(1f).withMinP(0f);
        Sampler a = new Sampler(p.withSeed(42), 3000);
        Sampler b = new Sampler(p.withSeed(42), 3000);
        Sampler c = new Sampler(p.withSeed(43), 3000);
        StringBuilder sa = new StringBuilder();
        StringBuilder sb = new StringBuilder();
        StringBuilder sc = new StringBuilder();
        for (int i = 0; i < 50; i++) {
            sa.append(a.sample(l)).append(',');
            sb.append(b.sample(l)).append(',');
            sc.append(c.sample(l)).append(',');
        }
        assertEquals(sa.toString(), sb.toString());
        assertNotEquals(sa.toString(), sc.toString());
    }

    @Test
    void badSettingsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> SamplerParams.defaults().withTopP(0f).validate());
        assertThrows(IllegalArgumentException.class, () -> SamplerParams.defaults().withTopK(-1).validate());
        assertThrows(IllegalArgumentException.class, () -> SamplerParams.defaults().withMinP(2f).validate());
    }

    /**
     * Without top-k the sampler sorts only the logits that can matter (within 30 x max(1, T) of
     * the best): a token 40 below the best at temperature 10 (weight e^-4, 1.8 %) must still be
     * drawn at its rate, and the thousands far below never.
     */
    @Test
    void farLogitsAreDroppedOnlyWhenTheTemperatureMakesThemNegligible() {
        int vocab = 50_000;
        float[] l = new float[vocab];
        java.util.Arrays.fill(l, -1000f);
        l[7] = 0f;
        l[40_000] = -40f;
        Sampler s = new Sampler(SamplerParams.defaults().withTopK(0).withTopP(1f).withMinP(0f).withTemperature(10f).withSeed(11), vocab);
        int far = 0;
        int draws = 20_000;
        for (int i = 0; i < draws; i++) {
            int t = s.sample(l);
            if (t == 40_000) {
                far++;
            } else {
                assertEquals(7, t, "only the two near tokens can be drawn");
            }
        }
        double expected = draws * Math.exp(-4) / (1 + Math.exp(-4)); // 360, sd 19
        assertTrue(Math.abs(far - expected) < 6 * Math.sqrt(expected), "the token 40 below was drawn " + far + " times, expected about " + expected);
    }
}
