// SentencePiece-style BPE (tokenizer.ggml.model = llama): merge the best-scoring adjacent pair until none is a token.
package cria.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.PriorityQueue;

/**
 * Llama 1/2 tokenization of one text fragment. The text (spaces already written as U+2581) starts
 * as one symbol per code point; the pair of neighbours whose concatenation is the token with the
 * highest score is merged first (on equal scores the leftmost), until no neighbouring pair forms a
 * token. A symbol that is not a token is written as its UTF-8 bytes through the {@code <0xNN>}
 * byte tokens (byte fallback), or as the unknown token when the vocabulary has no byte tokens.
 */
final class SpmEncoder {
    private final Vocab vocab;
    private final int[] byteTokens = new int[256];

    SpmEncoder(Vocab vocab) {
        this.vocab = vocab;
        for (int b = 0; b < 256; b++) {
            int id = vocab.id(String.format("<0x%02X>", b));
            if (id == Vocab.NONE && b < 0x80) {
                id = vocab.id(String.valueOf((char) b)); // some vocabularies spell ASCII bytes as themselves
            }
            byteTokens[b] = id;
        }
    }

    private record Bigram(int left, int right, float score, int size) {}

    /** Appends the tokens of {@code text} (already escaped) to {@code out}. */
    void encode(String text, IntList out) {
        int len = text.length();
        if (len == 0) {
            return;
        }
        // Symbols: [start, start+n) chars of text; a linked list through prev/next; n == 0 once merged away.
        int[] start = new int[len];
        int[] size = new int[len];
        int[] prev = new int[len];
        int[] next = new int[len];
        int count = 0;
        for (int i = 0; i < len; ) {
            int n = Character.charCount(text.codePointAt(i));
            start[count] = i;
            size[count] = Math.min(n, len - i);
            prev[count] = count - 1;
            i += size[count];
            next[count] = i == len ? -1 : count + 1;
            count++;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>((a, b) -> a.score != b.score
                ? Float.compare(b.score, a.score) : Integer.compare(a.left, b.left));
        for (int i = 1; i < count; i++) {
            tryAdd(text, start, size, i - 1, i, queue);
        }
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            int l = b.left, r = b.right;
            if (size[l] == 0 || size[r] == 0 || size[l] + size[r] != b.size) {
                continue; // one side has changed since this pair was queued
            }
            size[l] += size[r];
            size[r] = 0;
            next[l] = next[r];
            if (next[r] >= 0) {
                prev[next[r]] = l;
            }
            tryAdd(text, start, size, prev[l], l, queue);
            tryAdd(text, start, size, l, next[l], queue);
        }
        for (int i = 0; i != -1; i = next[i]) {
            int id = vocab.index.get(text, start[i], start[i] + size[i]);
            if (id != Vocab.NONE) {
                out.add(id);
            } else {
                byte[] bytes = text.substring(start[i], start[i] + size[i]).getBytes(StandardCharsets.UTF_8);
                boolean allBytes = true;
                for (byte b : bytes) {
                    allBytes &= byteTokens[b & 0xFF] != Vocab.NONE;
                }
                if (allBytes) {
                    for (byte b : bytes) {
                        out.add(byteTokens[b & 0xFF]);
                    }
                } else if (vocab.unk != Vocab.NONE) {
                    out.add(vocab.unk); // no byte tokens to spell it with: one unknown token for the piece
                }
            }
        }
    }

    private void tryAdd(String text, int[] start, int[] size, int left, int right, PriorityQueue<Bigram> queue) {
        if (left < 0 || right < 0) {
            return;
        }
        int from = start[left];
        int n = size[left] + size[right];
        int id = vocab.index.get(text, from, from + n);
        if (id < 0) {
            return;
        }
        queue.add(new Bigram(left, right, vocab.scores[id], n));
    }
}
