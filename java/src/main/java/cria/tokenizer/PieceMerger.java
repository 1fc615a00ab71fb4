// The merge loop of VocabTrainer: pair counts updated word by word, a lazy max-heap, words kept as the encoder segments them.
package cria.tokenizer;

import cria.CriaException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * Learns merged pieces until the vocabulary is full. Words are int arrays of piece ids. A
 * candidate is the string two neighbouring pieces make; its count is how often (with word
 * frequency) such a pair occurs. After a piece is learned only the words that contain it are
 * re-segmented, their old pairs uncounted and their new pairs counted. The heap holds, for every
 * candidate, an entry at least as high as its count (a count that grows is pushed again, one that
 * shrinks is corrected when its entry comes up), so the first entry that matches its candidate's
 * count is the best candidate.
 *
 * <p>Invariant: every word is segmented as {@link SpmEncoder} would segment it with the pieces
 * learned so far (no neighbouring pair makes a learned piece). A new piece ranks below all
 * earlier ones, so re-running the encoder's greedy merge from the current segmentation gives the
 * same result as encoding from scratch.
 */
final class PieceMerger {
    private static final int PROGRESS_EVERY = 256;

    /** A string two neighbouring pieces make: how often it occurs, and where (words, stale entries allowed). */
    private static final class Candidate {
        final String text;
        final boolean eligible;
        int piece = -1;   // its token id once learned
        long count;
        long queued;      // the count of its newest heap entry
        IntList words = new IntList(4);
        int lastWord = -1;
        int touched = -1; // the step that last raised its count
        int index;        // in candidates

        Candidate(String text, boolean eligible) {
            this.text = text;
            this.eligible = eligible;
        }
    }

    private record Entry(long count, Candidate c) {}

    private final List<String> pieces;
    private final int maxPieceLength;
    private final boolean splitByScript;
    private final int size;
    private final LongConsumer progress;
    private final Set<String> forbidden = new HashSet<>();
    private final Map<String, Candidate> byText = new HashMap<>();
    private final List<Candidate> candidates = new ArrayList<>();
    private PairMap byPair = new PairMap(1 << 16);
    private final List<int[]> words = new ArrayList<>();
    private final List<Long> freqs = new ArrayList<>();
    private final List<Candidate> grown = new ArrayList<>(); // raised in the current step
    private final PriorityQueue<Entry> heap = new PriorityQueue<>((a, b) -> {
        if (a.count != b.count) {
            return Long.compare(b.count, a.count);
        }
        if (a.c.text.length() != b.c.text.length()) {
            return Integer.compare(a.c.text.length(), b.c.text.length());
        }
        return a.c.text.compareTo(b.c.text);
    });

    /** @param pieces the vocabulary so far (specials, bytes, characters); learned pieces are appended */
    PieceMerger(List<String> pieces, int maxPieceLength, boolean splitByScript, int size, LongConsumer progress) {
        this.pieces = pieces;
        this.maxPieceLength = maxPieceLength;
        this.splitByScript = splitByScript;
        this.size = size;
        this.progress = progress;
        // No two pieces may make the text of a special or byte token: the encoder would merge them into it.
        for (int i = 0; i < VocabTrainer.FIXED_TOKENS; i++) {
            String t = pieces.get(i);
            for (int k = 2; k < t.length(); k++) {
                forbidden.add(t.substring(0, k));
                forbidden.add(t.substring(t.length() - k));
            }
            forbidden.add(t);
        }
    }

    /** Adds a word (piece ids of its characters, at least two) that occurs {@code freq} times. */
    void addWord(int[] seg, long freq) {
        int w = words.size();
        words.add(seg);
        freqs.add(freq);
        for (int i = 0; i + 1 < seg.length; i++) {
            count(candidate(seg[i], seg[i + 1]), w, freq, -1);
        }
    }

    /** Learns pieces until the vocabulary has {@code size} tokens. */
    void run() {
        for (Candidate c : candidates) {
            if (c.count > 0) {
                push(c);
            }
        }
        int step = 0;
        while (pieces.size() < size) {
            Entry e = heap.poll();
            if (e == null) {
                throw new CriaException("the text is too small for a vocabulary of " + size + " tokens: only "
                        + pieces.size() + " could be learned; give more (or more varied) text or ask for fewer tokens");
            }
            Candidate c = e.c;
            if (c.piece >= 0) {
                continue;
            }
            if (e.count != c.count) {
                if (c.count > 0) {
                    push(c); // its count shrank since this entry was pushed
                }
                continue;
            }
            c.piece = pieces.size();
            pieces.add(c.text);
            learn(c, step++);
            if (progress != null && pieces.size() % PROGRESS_EVERY == 0) {
                progress.accept(pieces.size());
            }
        }
        if (progress != null && pieces.size() % PROGRESS_EVERY != 0) {
            progress.accept(pieces.size()); // the end, unless just told
        }
    }

    // Re-segments every word holding the new piece's pair, moving pair counts from the old segmentation to the new.
    private void learn(Candidate learned, int step) {
        IntList where = learned.words;
        learned.words = null;
        for (int k = 0; k < where.size(); k++) {
            int w = where.get(k);
            int[] seg = words.get(w);
            if (!holds(seg, learned)) {
                continue; // a stale entry, or a word listed twice and already done
            }
            long f = freqs.get(w);
            for (int i = 0; i + 1 < seg.length; i++) {
                count(candidate(seg[i], seg[i + 1]), w, -f, step);
            }
            int[] next = encode(seg);
            words.set(w, next);
            for (int i = 0; i + 1 < next.length; i++) {
                count(candidate(next[i], next[i + 1]), w, f, step);
            }
        }
        // A new heap entry for every candidate whose count rose above its newest entry.
        for (Candidate c : grown) {
            if (c.piece < 0 && c.count > c.queued) {
                push(c);
            }
        }
        grown.clear();
    }

    // Whether a neighbouring pair of the word makes the piece.
    private boolean holds(int[] seg, Candidate learned) {
        for (int i = 0; i + 1 < seg.length; i++) {
            if (candidate(seg[i], seg[i + 1]) == learned) {
                return true;
            }
        }
        return false;
    }

    // Adds delta to a candidate's count (eligible, unlearned candidates only) and notes where and when it rose.
    private void count(Candidate c, int w, long delta, int step) {
        if (!c.eligible || c.piece >= 0) {
            return;
        }
        c.count += delta;
        if (delta > 0) {
            if (c.lastWord != w) {
                c.words.add(w);
                c.lastWord = w;
            }
            if (step >= 0 && c.touched != step) {
                c.touched = step;
                grown.add(c);
            }
        }
    }

    private void push(Candidate c) {
        c.queued = c.count;
        heap.add(new Entry(c.count, c));
    }

    // The encoder's greedy merge: the neighbouring pair making the earliest-learned piece, leftmost on ties, until none.
    private int[] encode(int[] seg) {
        int[] s = seg.clone();
        int n = s.length;
        while (n > 1) {
            int best = -1;
            int bestPiece = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < n; i++) {
                int p = candidate(s[i], s[i + 1]).piece;
                if (p >= 0 && p < bestPiece) {
                    bestPiece = p;
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            s[best] = bestPiece;
            System.arraycopy(s, best + 2, s, best + 1, n - best - 2);
            n--;
        }
        return n == s.length ? s : java.util.Arrays.copyOf(s, n);
    }

    // Whether a piece keeps to one Unicode script, as SentencePiece's split_by_unicode_script asks: ▁ goes with
    // any script, Hiragana and Katakana count as Han, punctuation and digits are their own (Common) script.
    static boolean oneScript(String text) {
        Character.UnicodeScript prev = null;
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (cp == VocabTrainer.WORD_START) {
                continue;
            }
            Character.UnicodeScript s = Character.UnicodeScript.of(cp);
            if (s == Character.UnicodeScript.HIRAGANA || s == Character.UnicodeScript.KATAKANA || cp == 0x30FC) {
                s = Character.UnicodeScript.HAN;
            }
            if (prev != null && s != prev) {
                return false;
            }
            prev = s;
        }
        return true;
    }

    // The candidate two neighbouring pieces make (created on first sight and cached per pair).
    private Candidate candidate(int left, int right) {
        long key = ((long) left << 32) | (right & 0xFFFFFFFFL);
        int i = byPair.get(key);
        if (i >= 0) {
            return candidates.get(i);
        }
        String text = pieces.get(left) + pieces.get(right);
        Candidate c = byText.get(text);
        if (c == null) {
            boolean eligible = text.indexOf(VocabTrainer.WORD_START, 1) < 0
                    && text.codePointCount(0, text.length()) <= maxPieceLength
                    && !forbidden.contains(text)
                    && (!splitByScript || oneScript(text));
            c = new Candidate(text, eligible);
            c.index = candidates.size();
            candidates.add(c);
            byText.put(text, c);
        }
        if (byPair.full()) {
            byPair = byPair.grown();
        }
        byPair.put(key, c.index);
        return c;
    }

    /** Pair of piece ids (as a long) to candidate index; open addressing, grown when half full. */
    private static final class PairMap {
        private final long[] keys;
        private final int[] values;
        private final int mask;
        private int used;

        PairMap(int capacity) {
            keys = new long[capacity];
            values = new int[capacity];
            java.util.Arrays.fill(values, -1);
            mask = capacity - 1;
        }

        private int slot(long key) {
            long h = key * 0x9E3779B97F4A7C15L;
            return (int) (h ^ (h >>> 32)) & mask;
        }

        int get(long key) {
            for (int i = slot(key); ; i = (i + 1) & mask) {
                if (values[i] < 0 || keys[i] == key) {
                    return values[i];
                }
            }
        }

        void put(long key, int value) {
            for (int i = slot(key); ; i = (i + 1) & mask) {
                if (values[i] < 0) {
                    keys[i] = key;
                    values[i] = value;
                    used++;
                    return;
                }
                if (keys[i] == key) {
                    values[i] = value;
                    return;
                }
            }
        }

        boolean full() {
            return used * 2 >= keys.length;
        }

        PairMap grown() {
            PairMap m = new PairMap(keys.length * 2);
            for (int i = 0; i < keys.length; i++) {
                if (values[i] >= 0) {
                    m.put(keys[i], values[i]);
                }
            }
            return m;
        }
    }
}
