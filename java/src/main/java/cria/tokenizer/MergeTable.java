// The BPE merge list as numbers: (left id, right id) -> rank, rank -> merged id; strings that are not tokens get extra ids.
package cria.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code tokenizer.ggml.merges} ("A B" per line, best first) held by number. Every string that
 * occurs in a merge gets an id: its token id, or an id past the vocabulary when it is not a token
 * (llama.cpp compares merge texts, so such strings can still take part in merges). Lookups are done
 * in place on the merge strings, without substrings: 280k merges for Llama 3.
 */
final class MergeTable {
    private final Vocab vocab;
    private final LongIntMap ranks;                      // (left id, right id) -> rank
    private final String[] merges;
    private final int[] mergeResult;                     // rank -> id of the merged string, UNKNOWN until first used
    private final List<String> extraTexts = new ArrayList<>(); // texts of ids >= vocab size
    private final Map<String, Integer> extraIds = new HashMap<>();
    private final int[] byteIds = new int[256];

    MergeTable(Vocab vocab, String[] merges) {
        this.vocab = vocab;
        for (int b = 0; b < 256; b++) {
            String s = String.valueOf(ByteUnicode.charOf(b));
            int id = vocab.index.get(s);
            byteIds[b] = id >= 0 ? id : extraId(s);
        }
        this.merges = merges;
        ranks = new LongIntMap(merges.length);
        mergeResult = new int[merges.length];
        java.util.Arrays.fill(mergeResult, UNKNOWN);
        for (int r = 0; r < merges.length; r++) {
            add(r, merges[r]);
        }
    }

    // One merge of rank r; a method of its own so that the JIT compiles it early in a cold JVM.
    private void add(int r, String m) {
        TextIndex idx = vocab.index;
        int sp = m.indexOf(' ', 1); // the first piece is never empty, so a leading space belongs to it
        if (sp < 0) {
            mergeResult[r] = -1;
            return;
        }
        int n = m.length();
        int a = idx.get(m, 0, sp);
        if (a < 0) {
            a = extraId(m.substring(0, sp));
        }
        int b = idx.get(m, sp + 1, n);
        if (b < 0) {
            b = extraId(m.substring(sp + 1));
        }
        ranks.putIfAbsent(pair(a, b), r); // a repeated pair keeps its first (best) rank
    }

    private static final int UNKNOWN = -2;

    // Only a small share of merges is ever used, so what a merge makes is looked up on first use.
    private int computeResult(int r) {
        String m = merges[r];
        int sp = m.indexOf(' ', 1);
        int n = m.length();
        int joined = vocab.index.get(m, 0, sp, m, sp + 1, n);
        return joined >= 0 ? joined : extraId(m.substring(0, sp) + m.substring(sp + 1));
    }

    // Synchronized: extra ids are also made lazily, from encoding threads.
    private synchronized int extraId(String s) {
        return extraIds.computeIfAbsent(s, k -> {
            extraTexts.add(k);
            return vocab.size() + extraTexts.size() - 1;
        });
    }

    private static long pair(int a, int b) {
        return ((long) a << 32) | (b & 0xFFFFFFFFL);
    }

    /** The rank of merging these two ids, or -1. */
    int rank(int left, int right) {
        return ranks.get(pair(left, right));
    }

    /** The id of what merge {@code rank} makes. */
    int result(int rank) {
        int id = mergeResult[rank];
        if (id == UNKNOWN) {
            id = computeResult(rank);
            mergeResult[rank] = id; // racing threads compute the same value
        }
        return id;
    }

    /** The id of the single-byte character of byte b. */
    int byteId(int b) {
        return byteIds[b & 0xFF];
    }

    /** The text of an extra id (one that is not a token). */
    synchronized String extraText(int id) {
        return extraTexts.get(id - vocab.size());
    }
}
