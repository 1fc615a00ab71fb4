// Unicode classes as llama.cpp's pre-tokenizers see them (\p{L}, \p{N}, \p{P}, \p{M}, \p{S}, \s), plus UTF-8 helpers.
package cria.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * One flag set per code point, from the general category (Java's Unicode tables) and llama.cpp's
 * whitespace list (which is Python's {@code \s} less U+001C..U+001F). The pre-tokenizers test these
 * flags instead of {@code \p{..}} so that hand-written and regex splitters agree on every code point.
 */
final class Unicode {
    static final int UNDEFINED = 0x001;
    static final int NUMBER = 0x002;
    static final int LETTER = 0x004;
    static final int SEPARATOR = 0x008;
    static final int MARK = 0x010;
    static final int PUNCTUATION = 0x020;
    static final int SYMBOL = 0x040;
    static final int CONTROL = 0x080;
    static final int CATEGORIES = 0x0FF;
    static final int WHITESPACE = 0x100;

    private static final short[] BMP = new short[0x10000];

    static {
        for (int cp = 0; cp < BMP.length; cp++) {
            BMP[cp] = (short) compute(cp);
        }
    }

    private Unicode() {}

    /** The flags of a code point; 0 for values outside Unicode (used for "no character here"). */
    static int flags(int cp) {
        if (cp >= 0 && cp < 0x10000) {
            return BMP[cp];
        }
        return cp >= 0 && cp <= 0x10FFFF ? compute(cp) : 0;
    }

    static boolean isLetter(int cp) {
        return (flags(cp) & LETTER) != 0;
    }

    static boolean isNumber(int cp) {
        return (flags(cp) & NUMBER) != 0;
    }

    static boolean isWhitespace(int cp) {
        return (flags(cp) & WHITESPACE) != 0;
    }

    private static int compute(int cp) {
        int f = switch (Character.getType(cp)) {
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                 Character.MODIFIER_LETTER, Character.OTHER_LETTER -> LETTER;
            case Character.NON_SPACING_MARK, Character.ENCLOSING_MARK, Character.COMBINING_SPACING_MARK -> MARK;
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> NUMBER;
            case Character.SPACE_SEPARATOR, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> SEPARATOR;
            case Character.CONTROL, Character.FORMAT, Character.PRIVATE_USE, Character.SURROGATE -> CONTROL;
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                 Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                 Character.OTHER_PUNCTUATION -> PUNCTUATION;
            case Character.MATH_SYMBOL, Character.CURRENCY_SYMBOL, Character.MODIFIER_SYMBOL, Character.OTHER_SYMBOL -> SYMBOL;
            default -> UNDEFINED;
        };
        if (isSpace(cp)) {
            f |= WHITESPACE;
        }
        return f;
    }

    // The whitespace set llama.cpp uses for \s (not Java's Character.isWhitespace, which differs).
    private static boolean isSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F
                || cp == 0x205F || cp == 0x3000;
    }

    /** Simple (one to one) lower-case mapping, as the contraction rules of the Llama 3 regex use. */
    static int toLower(int cp) {
        return Character.toLowerCase(cp);
    }

    /**
     * The code points of a Java string; an unpaired surrogate (which has no UTF-8 form) becomes
     * U+FFFD, as llama.cpp turns invalid UTF-8 into U+FFFD.
     */
    static int[] codePoints(String s, int from, int to) {
        int[] out = new int[to - from];
        int n = 0;
        for (int i = from; i < to; ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            out[n++] = cp;
        }
        return n == out.length ? out : java.util.Arrays.copyOf(out, n);
    }

    /** Appends the UTF-8 bytes of one code point to {@code dst} at {@code pos}; returns the new position. */
    static int utf8(int cp, byte[] dst, int pos) {
        if (cp < 0x80) {
            dst[pos++] = (byte) cp;
        } else if (cp < 0x800) {
            dst[pos++] = (byte) (0xC0 | (cp >> 6));
            dst[pos++] = (byte) (0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            dst[pos++] = (byte) (0xE0 | (cp >> 12));
            dst[pos++] = (byte) (0x80 | ((cp >> 6) & 0x3F));
            dst[pos++] = (byte) (0x80 | (cp & 0x3F));
        } else {
            dst[pos++] = (byte) (0xF0 | (cp >> 18));
            dst[pos++] = (byte) (0x80 | ((cp >> 12) & 0x3F));
            dst[pos++] = (byte) (0x80 | ((cp >> 6) & 0x3F));
            dst[pos++] = (byte) (0x80 | (cp & 0x3F));
        }
        return pos;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
