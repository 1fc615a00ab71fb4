// Splits text into words before byte-level BPE: a chain of steps, each a regex or a hand-written scanner.
package cria.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A pre-tokenizer as llama.cpp runs one: the text starts as one fragment; each step splits every
 * fragment further (a regex's matches and the gaps between them both become fragments). Steps
 * whose regex uses Unicode classes run, as in llama.cpp, on a "collapsed" copy of the text in which
 * each non-ASCII code point is replaced by one stand-in character for its class, and the classes
 * in the regex by those stand-ins plus their ASCII members. That makes {@code java.util.regex}
 * see exactly the classes llama.cpp's regex engine sees (see {@link Unicode}).
 */
final class PreTokenizer {

    /** The text being split: its code points, and views built on demand for regex steps. */
    static final class Text {
        final int[] cps;
        private String collapsed;
        private String wide;
        private int[] wideStart; // char index in `wide` of each code point (and of the end)
        private int[] wideCp;    // code point index of each char of `wide`

        Text(int[] cps) {
            this.cps = cps;
        }

        String collapsed() {
            if (collapsed == null) {
                char[] c = new char[cps.length];
                for (int i = 0; i < cps.length; i++) {
                    c[i] = collapse(cps[i]);
                }
                collapsed = new String(c);
            }
            return collapsed;
        }

        /** The text itself, with non-ASCII whitespace as U+000B so that {@code \s} matches it. */
        String wide() {
            if (wide == null) {
                StringBuilder sb = new StringBuilder(cps.length + 8);
                wideStart = new int[cps.length + 1];
                for (int i = 0; i < cps.length; i++) {
                    wideStart[i] = sb.length();
                    int cp = cps[i];
                    sb.appendCodePoint(cp > 0x7F && Unicode.isWhitespace(cp) ? 0x0B : cp);
                }
                wideStart[cps.length] = sb.length();
                wide = sb.toString();
                wideCp = new int[sb.length() + 1];
                for (int i = 0; i <= cps.length; i++) {
                    int from = wideStart[i];
                    int to = i < cps.length ? wideStart[i + 1] : from + 1;
                    for (int k = from; k < to; k++) {
                        wideCp[k] = i;
                    }
                }
            }
            return wide;
        }
    }

    /** One splitting step: reads fragment lengths {@code in}, appends finer ones to {@code out}. */
    interface Step {
        void split(Text text, IntList in, IntList out);
    }

    // Stand-ins for non-ASCII code points in the collapsed text (the values llama.cpp uses).
    private static final char OTHER = '\u00D0';
    private static final char NUMBER = '\u00D1';
    private static final char LETTER = '\u00D2';
    private static final char PUNCTUATION = '\u00D3';
    private static final char MARK = '\u00D4';
    private static final char SYMBOL = '\u00D5';

    static char collapse(int cp) {
        if (cp < 0x80) {
            return (char) cp;
        }
        int f = Unicode.flags(cp);
        if ((f & Unicode.WHITESPACE) != 0) {
            return '\u000B';
        }
        return switch (f & Unicode.CATEGORIES) {
            case Unicode.NUMBER -> NUMBER;
            case Unicode.LETTER -> LETTER;
            case Unicode.PUNCTUATION -> PUNCTUATION;
            case Unicode.MARK -> MARK;
            case Unicode.SYMBOL -> SYMBOL;
            default -> OTHER;
        };
    }

    private final String name;
    private final List<Step> steps;

    PreTokenizer(String name, List<Step> steps) {
        this.name = name;
        this.steps = List.copyOf(steps);
    }

    String name() {
        return name;
    }

    /** Splits code points into words; returns the word lengths in order (they sum to cps.length). */
    IntList split(int[] cps) {
        Text text = new Text(cps);
        IntList cur = new IntList(4);
        if (cps.length > 0) {
            cur.add(cps.length);
        }
        for (Step s : steps) {
            IntList next = new IntList(Math.max(16, cps.length / 3));
            s.split(text, cur, next);
            cur = next;
        }
        return cur;
    }

    /** A step from one of llama.cpp's pre-tokenizer regexes (a hand-written scanner where llama.cpp has one). */
    static Step step(String regex) {
        if (regex.equals(GPT2_REGEX)) {
            return WordSplitters.gpt2();
        }
        if (regex.equals(LLAMA3_REGEX)) {
            return WordSplitters.llama3(3);
        }
        if (regex.equals(QWEN2_REGEX)) {
            return WordSplitters.llama3(1);
        }
        return regexStep(regex);
    }

    static final String GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    static final String LLAMA3_REGEX = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
            + "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String QWEN2_REGEX = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
            + "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private static final String[][] CLASSES = {
        // name, stand-in, ASCII members (as regex class text)
        {"\\p{N}", String.valueOf(NUMBER), "0-9"},
        {"\\p{L}", String.valueOf(LETTER), "A-Za-z"},
        {"\\p{P}", String.valueOf(PUNCTUATION), "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
        {"\\p{M}", String.valueOf(MARK), ""},
        // '~' is a math symbol but llama.cpp leaves it out of \p{S}; keep its behaviour.
        {"\\p{S}", String.valueOf(SYMBOL), "\\$\\+<->\\^`\\|"},
        {"\\p{Lu}", String.valueOf(LETTER), "A-Za-z"},
        {"\\p{Ll}", String.valueOf(LETTER), "A-Za-z"},
        {"\\p{Lt}", String.valueOf(LETTER), "A-Za-z"},
        {"\\p{Lm}", String.valueOf(LETTER), "A-Za-z"},
        {"\\p{Lo}", String.valueOf(LETTER), "A-Za-z"},
    };

    private static boolean usesClasses(String regex) {
        for (String[] c : CLASSES) {
            if (regex.contains(c[0])) {
                return true;
            }
        }
        return false;
    }

    /** The regex rewritten for the collapsed text: each \p{..} becomes its stand-in plus ASCII members. */
    static String collapseRegex(String regex) {
        StringBuilder sb = new StringBuilder(regex.length() + 32);
        boolean inside = false;
        for (int i = 0; i < regex.length(); i++) {
            char c = regex.charAt(i);
            boolean escaped = i > 0 && regex.charAt(i - 1) == '\\';
            if (c == '[' && !escaped) {
                inside = true;
                sb.append(c);
                continue;
            }
            if (c == ']' && inside && !escaped) {
                inside = false;
                sb.append(c);
                continue;
            }
            if (c == '\\' && regex.startsWith("\\p{", i)) {
                int close = regex.indexOf('}', i);
                String[] cls = null;
                if (close > 0) {
                    String pat = regex.substring(i, close + 1);
                    for (String[] k : CLASSES) {
                        if (k[0].equals(pat)) {
                            cls = k;
                        }
                    }
                }
                if (cls != null) {
                    sb.append(inside ? "" : "[").append(cls[1]).append(cls[2]).append(inside ? "" : "]");
                    i = close;
                    continue;
                }
            }
            sb.append(c);
        }
        return sb.toString();
    }

    /** A step that runs the regex with java.util.regex (on the collapsed text when it uses Unicode classes). */
    static Step regexStep(String regex) {
        boolean collapsed = usesClasses(regex);
        if (collapsed && !regex.chars().allMatch(ch -> ch < 0x80)) {
            throw new IllegalArgumentException("regex mixes Unicode classes and non-ASCII characters: " + regex);
        }
        Pattern p = Pattern.compile(collapsed ? collapseRegex(regex) : regex);
        return (text, in, out) -> {
            String s = collapsed ? text.collapsed() : text.wide();
            Matcher m = p.matcher(s);
            int start = 0;
            for (int f = 0; f < in.size(); f++) {
                int len = in.get(f);
                int end = start + len;
                int from = collapsed ? start : text.wideStart[start];
                int to = collapsed ? end : text.wideStart[end];
                m.region(from, to);
                int last = start;
                while (m.find()) {
                    int ms = collapsed ? m.start() : text.wideCp[m.start()];
                    int me = collapsed ? m.end() : text.wideCp[m.end()];
                    if (ms > last) {
                        out.add(ms - last);
                    }
                    if (me > ms) {
                        out.add(me - ms);
                    }
                    last = me;
                }
                if (last < end) {
                    out.add(end - last);
                }
                start = end;
            }
        };
    }

    /** Builds the pre-tokenizer for a list of regexes (applied in order). */
    static PreTokenizer of(String name, List<String> regexes) {
        List<Step> steps = new ArrayList<>();
        for (String r : regexes) {
            steps.add(step(r));
        }
        return new PreTokenizer(name, steps);
    }
}
