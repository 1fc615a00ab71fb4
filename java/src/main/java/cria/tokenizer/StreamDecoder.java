// Streaming detokenizer: feed generated ids one at a time, get back only text whose UTF-8 characters are complete.
package cria.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns a stream of token ids into text as generation goes. A token may carry only part of a
 * character (Llama 3 splits emoji and CJK into byte tokens; SentencePiece falls back to
 * {@code <0xNN>}); such bytes are held until the character is complete. Bytes that can never form a
 * character come out as U+FFFD. Joining everything {@link #feed} and {@link #flush} return gives the
 * same text as {@link Tokenizer#decode} of all the ids, except that no leading space is dropped
 * (a stream usually continues a prompt). Not thread-safe: one per generated sequence.
 */
public final class StreamDecoder {
    private final Tokenizer tokenizer;
    private final boolean renderSpecial;
    private byte[] held = new byte[8];
    private int n;

    StreamDecoder(Tokenizer tokenizer, boolean renderSpecial) {
        this.tokenizer = tokenizer;
        this.renderSpecial = renderSpecial;
    }

    /** Adds one token; returns the text completed by it (often empty, never null). */
    public String feed(int id) {
        byte[] p = tokenizer.piece(id, renderSpecial);
        if (n + p.length > held.length) {
            held = Arrays.copyOf(held, Math.max(held.length * 2, n + p.length));
        }
        System.arraycopy(p, 0, held, n, p.length);
        n += p.length;
        int complete = completePrefix(held, n);
        if (complete == 0) {
            return "";
        }
        String s = new String(held, 0, complete, StandardCharsets.UTF_8);
        System.arraycopy(held, complete, held, 0, n - complete);
        n -= complete;
        return s;
    }

    /** Ends the stream: returns what is held (an unfinished character becomes U+FFFD) and resets. */
    public String flush() {
        String s = new String(held, 0, n, StandardCharsets.UTF_8);
        n = 0;
        return s;
    }

    /** Whether bytes of an unfinished character are being held. */
    public boolean hasPending() {
        return n > 0;
    }

    /**
     * Length of the longest prefix that can be decoded now: everything except a trailing lead byte
     * whose continuation bytes have not all arrived yet.
     */
    static int completePrefix(byte[] b, int n) {
        // A sequence is at most 4 bytes: look back at most 3 bytes for the lead of the last one.
        for (int back = 1; back <= Math.min(3, n); back++) {
            int c = b[n - back] & 0xFF;
            if ((c & 0xC0) == 0x80) {
                continue; // continuation byte: keep looking for the lead
            }
            int need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
            return need > back ? n - back : n;
        }
        return n;
    }
}
