// Byte-level BPE (tokenizer.ggml.model = gpt2): pre-tokenize, map bytes to characters, apply ranked merges per word.
package cria.tokenizer;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;

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
    private final FutureTask<MergeTable> merges;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>(CACHE_LIMIT * 2);

    /**
     * The merge table is built on a background thread (it is most of the cost of loading a large
     * vocabulary) while the caller goes on, e.g. to map the weights; the first encode waits for it.
     */
    BpeEncoder(Vocab vocab, String[] mergeList) {
        this.vocab = vocab;
        this.pre = PreTokenizer.of(vocab.flavor.name(), vocab.flavor.regexes());
        this.ignoreMerges = vocab.flavor.ignoreMerges();
        this.merges = new FutureTask<>(() -> new MergeTable(vocab, mergeList));
        Thread.ofPlatform().daemon().name("cria-bpe-merges").start(merges);
    }

    private MergeTable merges() {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return merges.get();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException re) {
                throw re;
            }
            throw new IllegalStateException(c);
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
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
        MergeTable mt = merges();
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
            id[i] = mt.byteId(bytes[i]);
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        // Queue entries are (rank << 32 | left index): the smallest is the lowest rank, then the leftmost.
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            push(heap, mt, id, i, i + 1);
        }
        while (!heap.isEmpty()) {
            long e = heap.pop();
            int rank = (int) (e >>> 32);
            int l = (int) e;
            int r = next[l];
            // Stale when the left symbol was merged away or either side changed since the pair was queued.
            if (id[l] < 0 || r < 0 || mt.rank(id[l], id[r]) != rank) {
                continue;
            }
            id[l] = mt.result(rank);
            id[r] = -1;
            next[l] = next[r];
            if (next[r] >= 0) {
                prev[next[r]] = l;
            }
            if (prev[l] >= 0) {
                push(heap, mt, id, prev[l], l);
            }
            if (next[l] >= 0) {
                push(heap, mt, id, l, next[l]);
            }
        }
        IntList out = new IntList(n);
        for (int i = 0; i != -1; i = next[i]) {
            if (id[i] < vocab.size()) {
                out.add(id[i]);
            } else {
                // Not a token: fall back to the single byte characters that are tokens.
                String s = mt.extraText(id[i]);
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

    private static void push(LongHeap heap, MergeTable mt, int[] id, int l, int r) {
        int rank = mt.rank(id[l], id[r]);
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
