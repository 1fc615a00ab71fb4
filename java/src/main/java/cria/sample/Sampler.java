// Picks the next token from logits: penalties, top-k, top-p, min-p, temperature, seeded draw; allocation-free per token.
package cria.sample;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * A stateful sampler for one sequence: it remembers the tokens it has seen (for the penalties)
 * and owns its random stream, so the same seed and the same logits give the same tokens. All
 * work arrays are sized once for the vocabulary.
 */
public final class Sampler {
    private final SamplerParams p;
    private final int vocab;
    private final SplittableRandom random;
    private final int[] history;
    private int historyLen;
    private long seen;
    private final int[] counts;
    private final float[] work;
    private final long[] order;
    private final int[] candidates;
    private final float[] probs;

    /** The longest history the penalties look at. */
    public static final int MAX_WINDOW = 1 << 16;

    /**
     * A sampler for a vocabulary of {@code vocab} tokens (buffers sized once).
     *
     * @throws IllegalArgumentException when a setting is out of range
     */
    public Sampler(SamplerParams params, int vocab) {
        this.p = params.validate();
        this.vocab = vocab;
        this.random = new SplittableRandom(params.seed());
        // The window is sized from a request's setting: bounded, so that a huge repeat_last_n cannot
        // take gigabytes (windows beyond MAX_WINDOW, and -1 = all, look at the last MAX_WINDOW tokens).
        int window = params.repeatLastN() < 0 ? MAX_WINDOW : Math.clamp(params.repeatLastN(), 1, MAX_WINDOW);
        this.history = new int[window];
        this.counts = new int[vocab];
        this.work = new float[vocab];
        this.order = new long[vocab];
        this.candidates = new int[vocab];
        this.probs = new float[vocab];
    }

    /** The settings in use. */
    public SamplerParams params() {
        return p;
    }

    /** True when a penalty is set (repetition, frequency or presence). */
    public boolean hasPenalties() {
        return p.repeatPenalty() != 1f || p.frequencyPenalty() != 0f || p.presencePenalty() != 0f;
    }

    /**
     * The uniform number in [0, 1) that {@link #sample} would draw next (none when greedy: 0),
     * consuming it: for samplers that run elsewhere (a GPU) but must follow this seed exactly.
     */
    public double drawUniform() {
        return p.isGreedy() ? 0 : random.nextDouble();
    }

    /** Records a token (prompt or generated) for the penalties. */
    public void accept(int token) {
        if (p.repeatLastN() == 0) {
            return;
        }
        history[(int) (seen % history.length)] = token;
        seen++;
        historyLen = (int) Math.min(seen, history.length);
    }

    /** Forgets the history (a new sequence). The random stream continues. */
    public void reset() {
        seen = 0;
        historyLen = 0;
    }

    /** Chooses a token from {@code logits} (not modified). */
    public int sample(float[] logits) {
        return sample(logits, 0);
    }

    /** Chooses a token from {@code logits[off, off + vocab)} (not modified). */
    public int sample(float[] logits, int off) {
        if (logits.length - off < vocab) {
            throw new IllegalArgumentException("logits has " + (logits.length - off) + " entries from " + off + ", vocabulary " + vocab);
        }
        float[] l = work;
        System.arraycopy(logits, off, l, 0, vocab);
        applyPenalties(l);
        if (p.isGreedy()) {
            return argmax(l);
        }
        int n = sortedCandidates(l);
        // top-p on the untempered distribution: smallest prefix reaching p
        double max = l[candidates[0]];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double e = Math.exp(l[candidates[i]] - max);
            probs[i] = (float) e;
            sum += e;
        }
        if (p.topP() < 1) {
            double cum = 0;
            int keep = n;
            for (int i = 0; i < n; i++) {
                cum += probs[i] / sum;
                if (cum >= p.topP()) {
                    keep = i + 1;
                    break;
                }
            }
            n = keep;
        }
        // min-p: keep logits within log(minP) of the best
        if (p.minP() > 0) {
            double floor = max + Math.log(p.minP());
            int keep = 1;
            while (keep < n && l[candidates[keep]] >= floor) {
                keep++;
            }
            n = keep;
        }
        // temperature, softmax, draw
        double t = p.temperature();
        double total = 0;
        for (int i = 0; i < n; i++) {
            double e = Math.exp((l[candidates[i]] - max) / t);
            probs[i] = (float) e;
            total += e;
        }
        double r = random.nextDouble() * total;
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += probs[i];
            if (r < cum) {
                return candidates[i];
            }
        }
        return candidates[n - 1];
    }

    /** Fills {@link #candidates} with token ids by descending logit (top-k of them when set); returns the count. */
    private int sortedCandidates(float[] l) {
        int k = p.topK() > 0 ? Math.min(p.topK(), vocab) : vocab;
        if (k <= 64) {
            // partial insertion sort keeps the k best without sorting the whole vocabulary
            int n = 0;
            for (int id = 0; id < vocab; id++) {
                float v = l[id];
                if (n == k && v <= l[candidates[n - 1]]) {
                    continue;
                }
                int j = n < k ? n++ : n - 1;
                while (j > 0 && l[candidates[j - 1]] < v) {
                    candidates[j] = candidates[j - 1];
                    j--;
                }
                candidates[j] = id;
            }
            return n;
        }
        // Only logits within 30 * max(1, temperature) of the best can matter: each of the others
        // weighs less than e^-30 of the best even after the temperature, all of them together less
        // than 2e-8 of the total for a 128K vocabulary. Sorting those few instead of the whole
        // vocabulary (OpenAI's requests set no top-k) saves milliseconds per token and sequence.
        float best = Float.NEGATIVE_INFINITY;
        for (int id = 0; id < vocab; id++) {
            best = Math.max(best, l[id]);
        }
        double floor = best - 30 * Math.max(1.0, p.temperature());
        int m = 0;
        for (int id = 0; id < vocab; id++) {
            if (l[id] >= floor || Float.isNaN(l[id])) {
                // sortable key: flip the float so larger logits come first, ties by smaller id
                int bits = Float.floatToIntBits(l[id]);
                int key = bits >= 0 ? bits : bits ^ 0x7fffffff;
                order[m++] = ((long) ~key << 32) | id;
            }
        }
        Arrays.sort(order, 0, m);
        k = Math.min(k, m);
        for (int i = 0; i < k; i++) {
            candidates[i] = (int) order[i];
        }
        return k;
    }

    private void applyPenalties(float[] l) {
        boolean repeat = p.repeatPenalty() != 1f;
        boolean freq = p.frequencyPenalty() != 0f || p.presencePenalty() != 0f;
        if ((!repeat && !freq) || historyLen == 0) {
            return;
        }
        for (int i = 0; i < historyLen; i++) {
            counts[history[i]]++;
        }
        for (int i = 0; i < historyLen; i++) {
            int tok = history[i];
            int c = counts[tok];
            if (c == 0) {
                continue; // already penalized
            }
            if (repeat) {
                l[tok] = l[tok] > 0 ? l[tok] / p.repeatPenalty() : l[tok] * p.repeatPenalty();
            }
            l[tok] -= c * p.frequencyPenalty() + p.presencePenalty();
            counts[tok] = 0;
        }
    }

    /** Index of the largest value (the first on ties). */
    public static int argmax(float[] a) {
        int best = 0;
        for (int i = 1; i < a.length; i++) {
            if (a[i] > a[best]) {
                best = i;
            }
        }
        return best;
    }
}
