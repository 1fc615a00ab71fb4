// Trains a SentencePiece-style BPE vocabulary (the llama tokenizer model) on text: specials, byte fallback, characters, merged pieces.
package cria.tokenizer;

import cria.CriaException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;

/**
 * Learns a vocabulary of a chosen size for the {@code llama} tokenizer model (SentencePiece BPE
 * with byte fallback), the way SentencePiece's BPE trainer does, so that {@link Tokenizer} and
 * llama.cpp tokenize with it exactly as the training segmented its text.
 *
 * <p><b>Normalization</b> is llama's: none beyond writing spaces as U+2581 ({@code ▁}) and putting
 * one {@code ▁} before each document (SentencePiece's {@code add_dummy_prefix}). Documents are
 * split into words before each {@code ▁}, so a piece may begin with {@code ▁} but never holds one
 * after its first character; each distinct word is counted once with its frequency.
 *
 * <p><b>The vocabulary</b> is {@code <unk>} (0), {@code <s>} (1), {@code </s>} (2), the 256 byte
 * tokens {@code <0x00>..<0xFF>} (3..258), then the characters that cover the text, most frequent
 * first ({@code ▁} always; the rarest characters, {@code 1 - coverage} of all characters, are left to
 * byte fallback, like SentencePiece's {@code character_coverage}), then the merged pieces in the
 * order they were learned, until the vocabulary has the size asked for.
 *
 * <p><b>Merging</b>: each step adds the string made by the adjacent pair of symbols that occurs most
 * often in the words (counted with word frequency; a string that several different pairs make is
 * counted once for all of them). Ties go to the shorter string, then to the smaller one in
 * {@link String#compareTo} order, so the same text always gives the same vocabulary. Pieces longer
 * than {@link #maxPieceLength(int)} code points are not learned, nor pieces that mix Unicode
 * scripts (see {@link #splitByScript(boolean)}), nor pieces that could join with another into the
 * text of a special or byte token (which the tokenizer would then emit).
 *
 * <p><b>Scores</b>: the piece learned at step {@code r} (0-based) scores {@code -r}; characters
 * score below all merges and specials and bytes 0. A SentencePiece-style encoder (Cria's, llama.cpp's)
 * repeatedly merges the neighbouring pair whose concatenation is the highest-scoring token, the
 * leftmost on ties; the trainer keeps each word segmented exactly as that encoder would with the
 * pieces learned so far (a new piece scores lowest, so it only extends that segmentation), so the
 * tokenizer reproduces the trained segmentation of every training word.
 */
public final class VocabTrainer {
    /** Tokens before the characters: {@code <unk>}, {@code <s>}, {@code </s>} and the 256 byte tokens. */
    public static final int FIXED_TOKENS = 259;
    /** The smallest vocabulary: the fixed tokens and {@code ▁}. */
    public static final int MIN_SIZE = FIXED_TOKENS + 1;
    /** The largest vocabulary (scores are floats: merge ranks stay exact below 2^24). */
    public static final int MAX_SIZE = 1 << 24;
    /** SentencePiece's default share of characters that get tokens of their own. */
    public static final double DEFAULT_COVERAGE = 0.9995;
    /** SentencePiece's default longest piece, in code points. */
    public static final int DEFAULT_MAX_PIECE_LENGTH = 16;

    static final char WORD_START = '\u2581';

    private final int size;
    private double coverage = DEFAULT_COVERAGE;
    private int maxPieceLength = DEFAULT_MAX_PIECE_LENGTH;
    private boolean splitByScript = true;
    private LongConsumer progress;

    /**
     * A trainer for a vocabulary of {@code size} tokens.
     *
     * @throws CriaException when {@code size} is below {@link #MIN_SIZE} or above {@link #MAX_SIZE}
     */
    public VocabTrainer(int size) {
        if (size < MIN_SIZE || size > MAX_SIZE) {
            throw new CriaException("vocabulary size " + size + " is out of range: it needs " + FIXED_TOKENS
                    + " tokens for <unk>, <s>, </s> and the 256 bytes plus at least one piece; use " + MIN_SIZE + " to " + MAX_SIZE);
        }
        this.size = size;
    }

    /**
     * The share of all characters in the text (counted with repeats) that get tokens of their own,
     * most frequent first; the rest are spelled with byte tokens. 1 keeps every character.
     *
     * @throws CriaException unless {@code 0 < coverage <= 1}
     */
    public VocabTrainer characterCoverage(double coverage) {
        if (!(coverage > 0 && coverage <= 1)) {
            throw new CriaException("character coverage " + coverage + " is out of range; use a share in (0, 1], e.g. 0.9995");
        }
        this.coverage = coverage;
        return this;
    }

    /**
     * The longest piece learned, in code points (SentencePiece's {@code max_piece_length}).
     *
     * @throws CriaException unless {@code 2 <= n <= 1024}
     */
    public VocabTrainer maxPieceLength(int n) {
        if (n < 2 || n > 1024) {
            throw new CriaException("max piece length " + n + " is out of range; use 2 to 1024 code points (SentencePiece uses 16)");
        }
        this.maxPieceLength = n;
        return this;
    }

    /**
     * Whether a piece must keep to one Unicode script (SentencePiece's {@code split_by_unicode_script},
     * on by default): then no piece mixes letters with punctuation or digits, as in {@code ▁said,},
     * which compresses better but gives the model fewer shared word tokens. {@code ▁} goes with any
     * script; Hiragana and Katakana count as Han.
     */
    public VocabTrainer splitByScript(boolean split) {
        this.splitByScript = split;
        return this;
    }

    /** Told the number of tokens in the vocabulary so far, now and then during training and once at the end. */
    public VocabTrainer progress(LongConsumer progress) {
        this.progress = progress;
        return this;
    }

    /**
     * Trains on {@code documents} (each one a line of text, iterated once).
     *
     * @throws CriaException when the text is empty, or too small to learn a vocabulary of this size
     */
    public TrainedVocab train(Iterable<String> documents) {
        Map<String, long[]> words = countWords(documents);
        if (words.isEmpty()) {
            throw new CriaException("no text to train a vocabulary on: every document is empty; give it some text");
        }
        List<String> chars = coveringCharacters(words);
        int[] charId = new int[0x110000];
        java.util.Arrays.fill(charId, -1);
        for (int i = 0; i < chars.size(); i++) {
            charId[chars.get(i).codePointAt(0)] = FIXED_TOKENS + i;
        }
        List<String> pieces = new ArrayList<>(size);
        pieces.add("<unk>");
        pieces.add("<s>");
        pieces.add("</s>");
        for (int b = 0; b < 256; b++) {
            pieces.add(String.format("<0x%02X>", b));
        }
        pieces.addAll(chars);
        PieceMerger merger = new PieceMerger(pieces, maxPieceLength, splitByScript, size, progress);
        splitAtRareCharacters(words, charId, merger);
        merger.run();
        return TrainedVocab.of(pieces, chars.size());
    }

    // Normalizes each document and counts its words (from one ▁ to the next).
    private static Map<String, long[]> countWords(Iterable<String> documents) {
        Map<String, long[]> words = new HashMap<>();
        StringBuilder sb = new StringBuilder();
        for (String doc : documents) {
            if (doc == null || doc.isEmpty()) {
                continue;
            }
            sb.setLength(0);
            sb.append(WORD_START).append(doc.replace(' ', WORD_START));
            int start = 0;
            for (int i = 1; i <= sb.length(); i++) {
                if (i == sb.length() || sb.charAt(i) == WORD_START) {
                    words.computeIfAbsent(sb.substring(start, i), k -> new long[1])[0]++;
                    start = i;
                }
            }
        }
        return words;
    }

    // The characters that get tokens: most frequent first (ties by code point) until the coverage is reached; ▁ always.
    private List<String> coveringCharacters(Map<String, long[]> words) {
        Map<Integer, long[]> counts = new HashMap<>();
        long total = 0;
        for (Map.Entry<String, long[]> e : words.entrySet()) {
            String w = e.getKey();
            long f = e.getValue()[0];
            for (int i = 0; i < w.length(); ) {
                int cp = w.codePointAt(i);
                i += Character.charCount(cp);
                counts.computeIfAbsent(cp, k -> new long[1])[0] += f;
                total += f;
            }
        }
        List<Map.Entry<Integer, long[]>> sorted = new ArrayList<>(counts.entrySet());
        sorted.sort((a, b) -> a.getValue()[0] != b.getValue()[0] ? Long.compare(b.getValue()[0], a.getValue()[0])
                : Integer.compare(a.getKey(), b.getKey()));
        List<String> chars = new ArrayList<>();
        chars.add(String.valueOf(WORD_START));
        long covered = 0;
        int room = size - FIXED_TOKENS;
        for (Map.Entry<Integer, long[]> e : sorted) {
            if (chars.size() >= room || covered >= coverage * total) {
                break;
            }
            covered += e.getValue()[0];
            if (e.getKey() != WORD_START) {
                chars.add(Character.toString(e.getKey()));
            }
        }
        return chars;
    }

    // Rare characters (no token) can never be inside a piece: they cut words into runs, which the merger learns from.
    private static void splitAtRareCharacters(Map<String, long[]> words, int[] charId, PieceMerger merger) {
        Map<String, long[]> runs = new HashMap<>();
        for (Map.Entry<String, long[]> e : words.entrySet()) {
            String w = e.getKey();
            int start = 0;
            for (int i = 0; i <= w.length(); ) {
                int cp = i < w.length() ? w.codePointAt(i) : -1;
                if (cp < 0 || charId[cp] < 0) {
                    if (w.codePointCount(start, i) >= 2) {
                        runs.computeIfAbsent(w.substring(start, i), k -> new long[1])[0] += e.getValue()[0];
                    }
                    if (cp < 0) {
                        break;
                    }
                    i += Character.charCount(cp);
                    start = i;
                } else {
                    i += Character.charCount(cp);
                }
            }
        }
        // Sorted so that the merger's internal order (and so nothing at all) depends on hash order.
        List<String> keys = new ArrayList<>(runs.keySet());
        keys.sort(null);
        for (String run : keys) {
            int[] seg = new int[run.codePointCount(0, run.length())];
            int n = 0;
            for (int i = 0; i < run.length(); ) {
                int cp = run.codePointAt(i);
                seg[n++] = charId[cp];
                i += Character.charCount(cp);
            }
            merger.addWord(seg, runs.get(run)[0]);
        }
    }
}
