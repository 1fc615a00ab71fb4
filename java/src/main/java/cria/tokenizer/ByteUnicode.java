// GPT-2's reversible byte <-> character mapping: every byte gets a printable character, so BPE works on text.
package cria.tokenizer;

import java.util.Arrays;

/**
 * Bytes that are printable Latin-1 characters ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves;
 * the other 68 bytes are given the characters U+0100, U+0101, ... in byte order. Byte-level BPE
 * vocabularies spell every token in these characters (a space is 'Ġ', a newline 'Ċ').
 */
final class ByteUnicode {
    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final short[] CHAR_TO_BYTE = new short[0x200];

    static {
        Arrays.fill(CHAR_TO_BYTE, (short) -1);
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (0x100 + extra++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = (short) b;
        }
    }

    private ByteUnicode() {}

    /** The character that stands for a byte (0..255). */
    static char charOf(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte a character stands for, or -1 when it stands for none. */
    static int byteOf(int c) {
        return c >= 0 && c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }
}
