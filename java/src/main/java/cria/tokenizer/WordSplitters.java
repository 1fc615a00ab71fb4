// Hand-written splitters for the two most used pre-tokenizer regexes (GPT-2's and Llama 3's), as llama.cpp has them.
package cria.tokenizer;

/**
 * The GPT-2 pattern {@code 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+}
 * and the Llama 3 pattern {@code (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 * ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+} (Qwen 2's is the same with single digits),
 * written out as scanners over code points. They are faster than a regex engine and follow
 * llama.cpp's own scanners decision for decision, so the words are the same ones llama.cpp makes.
 * Each works inside the fragments a previous step made: nothing is seen across a fragment's end.
 */
final class WordSplitters {
    private WordSplitters() {}

    /** A step that applies the GPT-2 scanner. */
    static PreTokenizer.Step gpt2() {
        return (text, in, out) -> {
            int start = 0;
            for (int f = 0; f < in.size(); f++) {
                int end = start + in.get(f);
                gpt2(text.cps, start, end, out);
                start = end;
            }
        };
    }

    /** A step that applies the Llama 3 scanner; digits are grouped up to {@code maxDigits} (3, or 1 for Qwen 2). */
    static PreTokenizer.Step llama3(int maxDigits) {
        return (text, in, out) -> {
            int start = 0;
            for (int f = 0; f < in.size(); f++) {
                int end = start + in.get(f);
                llama3(text.cps, start, end, maxDigits, out);
                start = end;
            }
        };
    }

    private static final int NONE = -1;

    private static int cp(int[] cps, int pos, int end) {
        return pos < end ? cps[pos] : NONE;
    }

    private static int fl(int[] cps, int pos, int end) {
        return pos < end ? Unicode.flags(cps[pos]) : 0;
    }

    private static boolean isLetter(int f) {
        return (f & Unicode.LETTER) != 0;
    }

    private static boolean isNumber(int f) {
        return (f & Unicode.NUMBER) != 0;
    }

    private static boolean isSpace(int f) {
        return (f & Unicode.WHITESPACE) != 0;
    }

    /** Neither whitespace, letter nor number, but a character (flags 0 means "past the end"). */
    private static boolean isOther(int f) {
        return (f & (Unicode.WHITESPACE | Unicode.LETTER | Unicode.NUMBER)) == 0 && f != 0;
    }

    /** Length of a contraction ('s 't 'm 'd 're 've 'll) at pos, or 0. */
    private static int contraction(int[] cps, int pos, int end, boolean anyCase) {
        if (cps[pos] != '\'' || pos + 1 >= end) {
            return 0;
        }
        int a = cps[pos + 1];
        if (anyCase) {
            a = Unicode.toLower(a);
        }
        if (a == 's' || a == 't' || a == 'm' || a == 'd') {
            return 2;
        }
        if (pos + 2 < end) {
            int b = cps[pos + 2];
            if (anyCase) {
                b = Unicode.toLower(b);
            }
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
                return 3;
            }
        }
        return 0;
    }

    static void gpt2(int[] cps, int begin, int end, IntList out) {
        int pos = begin;
        while (pos < end) {
            int start = pos;
            int c = cps[pos];
            int n = contraction(cps, pos, end, false);
            if (n > 0) {
                out.add(n);
                pos += n;
                continue;
            }
            // An optional single space prefixes a run of letters, of numbers, or of other characters.
            int f2 = c == ' ' ? fl(cps, pos + 1, end) : Unicode.flags(c);
            if (isLetter(f2) || isNumber(f2) || isOther(f2)) {
                int kind = isLetter(f2) ? 0 : isNumber(f2) ? 1 : 2;
                if (c == ' ') {
                    pos++;
                }
                while (pos < end && sameKind(kind, Unicode.flags(cps[pos]))) {
                    pos++;
                }
                out.add(pos - start);
                continue;
            }
            int spaces = 0;
            while (isSpace(fl(cps, pos + spaces, end))) {
                spaces++;
            }
            if (spaces > 1 && pos + spaces < end) {
                pos += spaces - 1; // \s+(?!\S): leave the last space to prefix the next word
            } else if (spaces > 0) {
                pos += spaces;
            } else {
                pos++;
            }
            out.add(pos - start);
        }
    }

    private static boolean sameKind(int kind, int f) {
        return switch (kind) {
            case 0 -> isLetter(f);
            case 1 -> isNumber(f);
            default -> isOther(f);
        };
    }

    static void llama3(int[] cps, int begin, int end, int maxDigits, IntList out) {
        int pos = begin;
        while (pos < end) {
            int start = pos;
            int c = cps[pos];
            int f = Unicode.flags(c);
            int n = contraction(cps, pos, end, true);
            if (n > 0) {
                out.add(n);
                pos += n;
                continue;
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if (!(c == '\r' || c == '\n' || isNumber(f)) && (isLetter(f) || isLetter(fl(cps, pos + 1, end)))) {
                pos++;
                while (isLetter(fl(cps, pos, end))) {
                    pos++;
                }
                out.add(pos - start);
                continue;
            }
            // \p{N}{1,maxDigits}
            if (isNumber(f)) {
                int group = pos;
                while (isNumber(fl(cps, pos, end))) {
                    pos++;
                    if (pos - group >= maxDigits) {
                        out.add(pos - group);
                        group = pos;
                    }
                }
                if (pos > group) {
                    out.add(pos - group);
                }
                continue;
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            int f2 = c == ' ' ? fl(cps, pos + 1, end) : f;
            if ((f2 & (Unicode.WHITESPACE | Unicode.LETTER | Unicode.NUMBER)) == 0) {
                if (c == ' ') {
                    pos++;
                }
                while (isOther(fl(cps, pos, end))) {
                    pos++;
                }
                int c2 = cp(cps, pos, end);
                while (c2 == '\r' || c2 == '\n') {
                    c2 = cp(cps, ++pos, end);
                }
                out.add(pos - start);
                continue;
            }
            int spaces = 0;
            int lastNewlineEnd = 0;
            while (isSpace(fl(cps, pos + spaces, end))) {
                int c2 = cps[pos + spaces];
                if (c2 == '\r' || c2 == '\n') {
                    lastNewlineEnd = pos + spaces + 1;
                }
                spaces++;
            }
            if (lastNewlineEnd > 0) {
                pos = lastNewlineEnd; // \s*[\r\n]+
            } else if (spaces > 1 && pos + spaces < end) {
                pos += spaces - 1; // \s+(?!\S)
            } else if (spaces > 0) {
                pos += spaces; // \s+
            } else {
                pos++;
            }
            out.add(pos - start);
        }
    }
}
