// Seeded word-level text augmentation for fine-tuning: words dropped and neighbours swapped, the rest of the text kept.
package cria.train;

import java.util.ArrayList;
import java.util.List;

/**
 * A light, meaning-keeping augmentation of training text: each word (a run of non-space
 * characters) is dropped with probability {@code rate / 2}, never all of them, then neighbouring
 * words are swapped with probability {@code rate / 2} each (a word moves at most one place). The
 * spaces and line breaks between the words stay where they were, so a multi-line prompt keeps its
 * layout. The result depends only on the text, the rate and the seed: pass a seed made of the
 * run's seed, the example and the epoch ({@link #seed}) to get a fresh but reproducible variant
 * per epoch.
 *
 * <p>It is applied to the part of an example that is read, never to the part that is learnt: the
 * text of a classification, the prompt of a prompt/completion pair (whose last word, often a cue
 * such as {@code A:}, stays in place), a plain text; never a completion, a label or a chat.
 */
public final class Augment {
    /** The largest rate: at 1, half of the words go and half of the pairs swap. */
    public static final double MAX_RATE = 1.0;

    private Augment() {}

    /** The seed of one example in one epoch of a run whose seed is {@code seed}. */
    public static long seed(long seed, long example, long epoch) {
        long z = Windows.mix(seed ^ 0x5DEECE66DL);
        z = Windows.mix(z + example * 0x9E3779B97F4A7C15L);
        return Windows.mix(z + epoch * 0xC2B2AE3D27D4EB4FL);
    }

    /**
     * The augmented text ({@code text} itself when {@code rate} is 0 or it has fewer than two words).
     *
     * @param keepLast keep the last word in place (neither dropped nor swapped)
     * @throws IllegalArgumentException when {@code rate} is outside 0..{@link #MAX_RATE}
     */
    public static String words(String text, double rate, long seed, boolean keepLast) {
        if (!(rate >= 0 && rate <= MAX_RATE)) {
            throw new IllegalArgumentException("augmentation rate " + rate + " is outside 0.." + MAX_RATE);
        }
        List<String> words = new ArrayList<>();
        List<String> gaps = new ArrayList<>(); // gaps.get(i) is the whitespace before words.get(i); one more at the end
        split(text, words, gaps);
        int n = words.size();
        if (rate == 0 || n < 2) {
            return text;
        }
        int free = keepLast ? n - 1 : n; // words that may move or go
        double p = rate / 2;
        long state = seed;
        boolean[] dropped = new boolean[n];
        int kept = n;
        for (int i = 0; i < free; i++) {
            state += 0x9E3779B97F4A7C15L;
            if (uniform(state) < p) {
                dropped[i] = true;
                kept--;
            }
        }
        if (kept == 0) { // never all words: the first one stays
            dropped[0] = false;
        }
        List<String> out = new ArrayList<>(n);
        List<String> outGaps = new ArrayList<>(n + 1);
        String lineBreak = null; // the last gap with a line break since the previous word kept
        for (int i = 0; i <= n; i++) {
            String gap = gaps.get(i);
            if (gap.indexOf('\n') >= 0) {
                lineBreak = gap;
            }
            if (i == n || !dropped[i]) {
                // a word keeps the gap before it, or a line break of the dropped words before it; the
                // first word kept takes the text's leading gap, the end keeps the trailing one
                outGaps.add(out.isEmpty() && i < n ? gaps.get(0) : lineBreak != null && i < n ? lineBreak : gap);
                lineBreak = null;
                if (i < n) {
                    out.add(words.get(i));
                }
            }
        }
        int movable = keepLast && !dropped[n - 1] ? out.size() - 1 : out.size();
        for (int i = 0; i + 1 < movable; i++) {
            state += 0x9E3779B97F4A7C15L;
            if (uniform(state) < p) {
                String w = out.get(i);
                out.set(i, out.get(i + 1));
                out.set(i + 1, w);
                i++; // a word moves at most one place
            }
        }
        StringBuilder sb = new StringBuilder(text.length());
        for (int i = 0; i < out.size(); i++) {
            sb.append(outGaps.get(i)).append(out.get(i));
        }
        return sb.append(outGaps.get(out.size())).toString();
    }

    // Words (runs of non-whitespace) and the whitespace before each, plus the trailing whitespace.
    private static void split(String text, List<String> words, List<String> gaps) {
        int i = 0;
        int len = text.length();
        while (true) {
            int g = i;
            while (i < len && Character.isWhitespace(text.charAt(i))) {
                i++;
            }
            gaps.add(text.substring(g, i));
            if (i == len) {
                return;
            }
            int w = i;
            while (i < len && !Character.isWhitespace(text.charAt(i))) {
                i++;
            }
            words.add(text.substring(w, i));
        }
    }

    // A uniform number in [0, 1) from SplitMix64's output for this state.
    private static double uniform(long state) {
        return (Windows.mix(state) >>> 11) * 0x1.0p-53;
    }
}
