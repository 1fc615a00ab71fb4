// Byte-level BPE (tokenizer.ggml.model = gpt2): pre-tokenize, map bytes to characters, apply ranked merges per word.
package cria.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * GPT-2 / Llama 3 style tokenization of one text fragment. The pre-tokenizer cuts the text into
 * words; each word's UTF-8 bytes become GPT-2's byte characters; then, within the word, the
 * adjacent pair with the lowest merge rank (leftmost on ties) is merged until no pair has a rank.
 *
 * <p>Merges are held by number, not text: every string that occurs in a merge gets an id (its token
 * id, or an extra id past the vocabulary when the string is not a token), and a merge is a lookup of
 * the two ids' pair. Words repeat a lot in real text, so finished words are cached.
 */
final class BpeEncoder {
    private static final int CACHE_LIMIT = 1 << 16;

    private final Vocab vocab;
    private final PreTokenizer pre;
    private final boolean ignoreMerges;
    private final LongIntMap ranks;         // (left id, right id) -> rank
    private final int[] mergeResult;        // rank -> id of the merged string
    private final List<String> extraTexts;  // texts of ids >= vocab size
    private final int[] byteIds = new int[256];
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    BpeEncoder(Vocab vocab, String[] merges) {
        this.vocab = vocab;
        this.pre = PreTokenizer.of(vocab.flavor.name(), vocab.flavor.regexes());
        this.ignoreMerges = vocab.flavor.ignoreMerges();
        Map<String, Integer> extra = new HashMap<>();
        this.extraTexts = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            String s = String.valueOf(ByteUnicode.charOf(b));
            int id = vocab.index.get(s);
            byteIds[b] = id >= 0 ? id : extraId(s, extra);
        }
        this.ranks = new LongIntMap(merges.length);
        this.mergeResult = new int[merges.length];
        TextIndex idx = vocab.index;
        for (int r = 0; r < merges.length; r++) {
            String m = merges[r];
            int sp = m.indexOf(' ', 1); // the first piece is never empty, so a leading space belongs to it
            if (sp < 0) {
                mergeResult[r] = -1;
                continue;
            }
            int n = m.length();
            // Looked up in place (no substrings): almost every piece and result is a token.
            int a = idx.get(m, 0, sp);
            if (a < 0) {
                a = extraId(m.substring(0, sp), extra);
            }
            int b = idx.get(m, sp + 1, n);
            if (b < 0) {
                b = extraId(m.substring(sp + 1), extra);
            }
            long key = pair(a, b);
            if (ranks.get(key) < 0) { // a repeated pair keeps its first (best) rank
                ranks.put(key, r);
            }
            int joined = idx.get(m, 0, sp, m, sp + 1, n);
            mergeResult[r] = joined >= 0 ? joined : extraId(m.substring(0, sp) + m.substring(sp + 1), extra);
        }
    }

    // An id past the vocabulary for a string that occurs in merges but is not a token.
    private int extraId(String s, Map<String, Integer> extra) {
        return extra.computeIfAbsent(s, k -> {
            extraTexts.add(k);
            return vocab.size() + extraTexts.size() - 1;
        });
    }

    private static long pair(int a, int b) {
        return ((long) a << 32) | (b & 0xFFFFFFFFL);
    }

    /** Appends the tokens of one text fragment to {@code out}. */
    void encode(String text, IntList out) {
        int[] cps = Unicode.codePoints(text, 0, text.length());
        IntList words = pre.split(cps);
        byte[] buf = new byte[64];
        int pos = 0;
        for (int w = 0; w < words.size(); w++) {
            int len = words.get(w);
            // The word's UTF-8 bytes (the cache key is the word itself).
            if (buf.length < len * 4) {
                buf = new byte[len * 4];
            }
            int nb = 0;
            for (int i = pos; i < pos + len; i++) {
                nb = Unicode.utf8(cps[i], buf, nb);
            }
            String key = new String(cps, pos, len);
            pos += len;
            int[] ids = cache.get(key);
            if (ids == null) {
                ids = encodeWord(buf, nb);
                if (cache.size() >= CACHE_LIMIT) {
                    cache.clear();
                }
                cache.put(key, ids);
            }
            out.addAll(ids);
        }
    }

    private int[] encodeWord(byte[] bytes, int n) {
        if (ignoreMerges) {
            char[] cs = new char[n];
            for (int i = 0; i < n; i++) {
                cs[i] = ByteUnicode.charOf(bytes[i]);
            }
            int whole = vocab.index.get(new String(cs));
            if (whole >= 0) {
                return new int[] {whole};
            }
        }
        int[] id = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            id[i] = byteIds[bytes[i] & 0xFF];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        // Queue entries are (rank << 32 | left index): the smallest is the lowest rank, then the leftmost.
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            push(heap, id, i, i + 1);
        }
        while (!heap.isEmpty()) {
            long e = heap.pop();
            int rank = (int) (e >>> 32);
            int l = (int) e;
            int r = next[l];
            // Stale when the left symbol was merged away or either side changed since the pair was queued.
            if (id[l] < 0 || r < 0 || ranks.get(pair(id[l], id[r])) != rank) {
                continue;
            }
            id[l] = mergeResult[rank];
            id[r] = -1;
            next[l] = next[r];
            if (next[r] >= 0) {
                prev[next[r]] = l;
            }
            if (prev[l] >= 0) {
                push(heap, id, prev[l], l);
            }
            if (next[l] >= 0) {
                push(heap, id, l, next[l]);
            }
        }
        IntList out = new IntList(n);
        for (int i = 0; i != -1; i = next[i]) {
            if (id[i] < vocab.size()) {
                out.add(id[i]);
            } else {
                // Not a token: fall back to the single byte characters that are tokens.
                String s = extraTexts.get(id[i] - vocab.size());
                for (int k = 0; k < s.length(); k++) {
                    int t = vocab.id(String.valueOf(s.charAt(k)));
                    if (t != Vocab.NONE) {
                        out.add(t);
                    }
                }
            }
        }
        return out.toArray();
    }

    private void push(LongHeap heap, int[] id, int l, int r) {
        int rank = ranks.get(pair(id[l], id[r]));
        if (rank >= 0) {
            heap.push(((long) rank << 32) | l);
        }
    }

    /** A binary min-heap of longs. */
    private static final class LongHeap {
        private long[] a;
        private int n;

        LongHeap(int capacity) {
            a = new long[Math.max(8, capacity)];
        }

        boolean isEmpty() {
            return n == 0;
        }

        void push(long v) {
            if (n == a.length) {
                a = java.util.Arrays.copyOf(a, n * 2);
            }
            int i = n++;
            while (i > 0) {
                int p = (i - 1) >>> 1;
                if (a[p] <= v) {
                    break;
                }
                a[i] = a[p];
                i = p;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long v = a[--n];
            int i = 0;
            while (true) {
                int c = 2 * i + 1;
                if (c >= n) {
                    break;
                }
                if (c + 1 < n && a[c + 1] < a[c]) {
                    c++;
                }
                if (a[c] >= v) {
                    break;
                }
                a[i] = a[c];
                i = c;
            }
            a[i] = v;
            return top;
        }
    }
}
