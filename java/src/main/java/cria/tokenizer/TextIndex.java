// Token text -> id lookup that also finds a substring (or two joined substrings) without allocating a String.
package cria.tokenizer;

/**
 * An open-addressing hash index over the vocabulary's texts. Besides whole strings it looks up a
 * region of a string, and the concatenation of two regions: the BPE merge table (280k merges for
 * Llama 3) and the SentencePiece pair search are built from such lookups, and avoiding a String per
 * lookup keeps loading a 128k vocabulary fast. A text that occurs twice maps to its last id, as in llama.cpp.
 */
final class TextIndex {
    private final String[] texts;
    private final long[] table; // hash << 32 | (id + 1); 0 = empty. The hash beside the id saves a memory access per probe.
    private final int mask;

    TextIndex(String[] texts) {
        this.texts = texts;
        int cap = Integer.highestOneBit(Math.max(16, texts.length * 2 - 1)) << 1;
        table = new long[cap];
        mask = cap - 1;
        for (int id = 0; id < texts.length; id++) {
            insert(id);
        }
    }

    private void insert(int id) {
        String t = texts[id];
        int h = hash(t, 0, t.length(), null, 0, 0);
        long entry = ((long) h << 32) | (id + 1);
        for (int i = spread(h); ; i = (i + 1) & mask) {
            long e = table[i];
            if (e == 0 || ((int) (e >>> 32) == h && texts[(int) e - 1].equals(t))) {
                table[i] = entry; // a duplicate text: the later id wins
                return;
            }
        }
    }

    private int spread(int h) {
        return (h ^ (h >>> 16)) * 0x9E3779B1 & mask;
    }

    // Hash of a[aFrom, aTo) followed by b[bFrom, bTo) (b may be null): the same as String.hashCode of the joined text.
    private static int hash(String a, int aFrom, int aTo, String b, int bFrom, int bTo) {
        int h = 0;
        for (int i = aFrom; i < aTo; i++) {
            h = 31 * h + a.charAt(i);
        }
        if (b != null) {
            for (int i = bFrom; i < bTo; i++) {
                h = 31 * h + b.charAt(i);
            }
        }
        return h;
    }

    /** The id of the text, or -1. */
    int get(String s) {
        return get(s, 0, s.length());
    }

    /** The id of the text s[from, to), or -1. */
    int get(String s, int from, int to) {
        return get(s, from, to, null, 0, 0);
    }

    /** The id of the text a[aFrom, aTo) + b[bFrom, bTo), or -1. */
    int get(String a, int aFrom, int aTo, String b, int bFrom, int bTo) {
        int len = (aTo - aFrom) + (b == null ? 0 : bTo - bFrom);
        int h = hash(a, aFrom, aTo, b, bFrom, bTo);
        for (int i = spread(h); ; i = (i + 1) & mask) {
            long e = table[i];
            if (e == 0) {
                return -1;
            }
            if ((int) (e >>> 32) == h) {
                int id = (int) e - 1;
                String t = texts[id];
                if (t.length() == len && t.regionMatches(0, a, aFrom, aTo - aFrom)
                        && (b == null || t.regionMatches(aTo - aFrom, b, bFrom, bTo - bFrom))) {
                    return id;
                }
            }
        }
    }
}
