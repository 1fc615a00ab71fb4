// Python expression syntax that chat templates use and Jinjava lacks, rewritten into calls Jinjava runs (PythonFunctions).
package cria.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Chat templates are written for Jinja2, where expressions are Python's: strings have
 * {@code startswith}, {@code strip(chars)}, {@code split(sep)}; sequences slice as
 * {@code messages[1:]} or {@code messages[::-1]}; keyword arguments take any expression
 * ({@code namespace(last=messages|length - 1)}). Jinjava parses none of these (a Java string has
 * no {@code startswith}; a slice is a syntax error; {@code last=x - 1} becomes {@code (last=x) - 1}).
 * Qwen3's and Gemma 3's templates use all three. This rewrites each, inside {@code {{ }}} and
 * {@code {% %}} only and never inside a string literal, into what Jinjava runs with the same
 * meaning: {@code recv.startswith(a)} → {@code py_startswith(recv, a)} (the functions of
 * {@link PythonFunctions}), {@code recv[a:b:c]} → {@code py_slice(recv, a, b, c)}, and a keyword
 * argument's value into parentheses. Text the rewrite does not recognize is left as it is. It
 * also does Jinja2's {@code lstrip_blocks} (Jinjava's option strips more than Jinja2's).
 */
final class PythonSyntax {
    private PythonSyntax() {}

    /** Python methods of str, dict and list that Jinjava's Java objects lack or do otherwise. */
    static final Set<String> METHODS = Set.of("startswith", "endswith", "strip", "lstrip", "rstrip", "split", "upper", "lower",
            "title", "capitalize", "items", "keys", "values", "get", "count", "find", "join");

    /** The template with its Python-only syntax rewritten; text outside tags unchanged. */
    static String rewrite(String template) {
        StringBuilder out = new StringBuilder(template.length() + 64);
        int i = 0;
        while (i < template.length()) {
            int open = nextTag(template, i);
            if (open < 0) {
                out.append(template, i, template.length());
                break;
            }
            out.append(template, i, open);
            char kind = template.charAt(open + 1);
            if (kind != '{' && !(open + 2 < template.length() && template.charAt(open + 2) == '+')) {
                lstrip(out);
            }
            out.append(template, open, open + 2);
            if (kind == '#') {
                int end = template.indexOf("#}", open + 2);
                end = end < 0 ? template.length() : end + 2;
                out.append(template, open + 2, end);
                i = end;
                continue;
            }
            String close = kind == '{' ? "}}" : "%}";
            int end = closeOf(template, open + 2, close);
            if (end < 0) { // unterminated: Jinjava will say so
                out.append(template, open + 2, template.length());
                break;
            }
            if (kind == '%' && isRaw(template, open + 2, end)) {
                int endRaw = template.indexOf("endraw", end);
                int stop = endRaw < 0 ? template.length() : endRaw;
                out.append(template, open + 2, stop);
                i = stop;
                continue;
            }
            out.append(expression(template.substring(open + 2, end)));
            i = end;
        }
        return out.toString();
    }

    /**
     * Jinja2's lstrip_blocks: the spaces and tabs before a block or comment tag go when nothing
     * else precedes it on its line. (Jinjava's own option also strips them after other text.)
     */
    private static void lstrip(StringBuilder out) {
        int j = out.length();
        while (j > 0 && (out.charAt(j - 1) == ' ' || out.charAt(j - 1) == '\t')) {
            j--;
        }
        if (j == 0 || out.charAt(j - 1) == '\n' || out.charAt(j - 1) == '\r') {
            out.setLength(j);
        }
    }

    private static int nextTag(String s, int from) {
        for (int i = s.indexOf('{', from); i >= 0 && i + 1 < s.length(); i = s.indexOf('{', i + 1)) {
            char c = s.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
        }
        return -1;
    }

    private static boolean isRaw(String s, int from, int end) {
        String body = s.substring(from, end).strip();
        if (body.startsWith("-") || body.startsWith("+")) {
            body = body.substring(1).strip();
        }
        return body.equals("raw") || body.startsWith("raw ");
    }

    /** Where the tag opened before {@code from} closes (outside string literals), or -1. */
    private static int closeOf(String s, int from, String close) {
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = stringEnd(s, i) - 1;
            } else if (s.startsWith(close, i)) {
                return i;
            }
        }
        return -1;
    }

    /** The index after the string literal that opens at {@code i} (or the end of s). */
    private static int stringEnd(String s, int i) {
        char q = s.charAt(i);
        for (int j = i + 1; j < s.length(); j++) {
            char c = s.charAt(j);
            if (c == '\\') {
                j++;
            } else if (c == q) {
                return j + 1;
            }
        }
        return s.length();
    }

    /** One tag's body rewritten until nothing more is recognized. */
    static String expression(String e) {
        StringBuilder s = new StringBuilder(e);
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = stringEnd(s.toString(), i);
                continue;
            }
            if (c == '.' && i > 0 && endsOperand(s, i - 1)) {
                int n = i + 1;
                while (n < s.length() && isIdent(s.charAt(n))) {
                    n++;
                }
                String name = s.substring(i + 1, n);
                if (n < s.length() && s.charAt(n) == '(' && METHODS.contains(name)) {
                    int start = operandStart(s, i - 1);
                    int close = matching(s, n);
                    if (start >= 0 && close > 0) {
                        String recv = s.substring(start, i);
                        String args = s.substring(n + 1, close).strip();
                        s.replace(start, close + 1, "py_" + name + "(" + recv + (args.isEmpty() ? "" : ", " + args) + ")");
                        i = start;
                        continue;
                    }
                }
            }
            if (c == '[' && i > 0 && endsOperand(s, i - 1)) {
                int close = matching(s, i);
                if (close > 0) {
                    List<String> parts = splitTop(s.substring(i + 1, close), ':');
                    int start = operandStart(s, i - 1);
                    if (parts.size() >= 2 && parts.size() <= 3 && start >= 0) {
                        StringBuilder call = new StringBuilder("py_slice(").append(s, start, i);
                        for (int p = 0; p < 3; p++) {
                            String v = p < parts.size() ? parts.get(p).strip() : "";
                            call.append(", ").append(v.isEmpty() ? "none" : v);
                        }
                        s.replace(start, close + 1, call.append(')').toString());
                        i = start;
                        continue;
                    }
                }
            }
            if (c == '(' && i > 0 && isIdent(s.charAt(i - 1))) {
                int close = matching(s, i);
                if (close > 0) {
                    String args = keywordsInParentheses(s.substring(i + 1, close));
                    if (!args.equals(s.substring(i + 1, close))) {
                        s.replace(i + 1, close, args);
                    }
                }
            }
            i++;
        }
        return s.toString();
    }

    /** Each top-level {@code name=value} argument as {@code name=(value)}. */
    private static String keywordsInParentheses(String args) {
        List<String> parts = splitTop(args, ',');
        if (parts.size() == 1 && parts.get(0).isBlank()) {
            return args;
        }
        StringBuilder out = new StringBuilder();
        for (int p = 0; p < parts.size(); p++) {
            String a = parts.get(p);
            int eq = keywordEquals(a);
            if (eq > 0) {
                String value = a.substring(eq + 1).strip();
                boolean wrapped = value.startsWith("(") && matching(new StringBuilder(value), 0) == value.length() - 1;
                a = wrapped ? a : a.substring(0, eq + 1) + "(" + value + ")";
            }
            out.append(p == 0 ? "" : ",").append(a);
        }
        return out.toString();
    }

    /** The index of the '=' of {@code name = value}, or -1 when the argument is not a keyword argument. */
    private static int keywordEquals(String a) {
        int i = 0;
        while (i < a.length() && Character.isWhitespace(a.charAt(i))) {
            i++;
        }
        int n = i;
        while (n < a.length() && isIdent(a.charAt(n))) {
            n++;
        }
        if (n == i || Character.isDigit(a.charAt(i))) {
            return -1;
        }
        while (n < a.length() && Character.isWhitespace(a.charAt(n))) {
            n++;
        }
        boolean single = n < a.length() && a.charAt(n) == '=' && (n + 1 >= a.length() || a.charAt(n + 1) != '=');
        return single ? n : -1;
    }

    /** The parts of s split at top-level {@code sep} (outside strings and brackets). */
    private static List<String> splitTop(String s, char sep) {
        List<String> parts = new ArrayList<>();
        int depth = 0;
        int from = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = stringEnd(s, i) - 1;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (c == sep && depth == 0) {
                parts.add(s.substring(from, i));
                from = i + 1;
            }
        }
        parts.add(s.substring(from));
        return parts;
    }

    /** The index of the bracket closing the one at {@code open}, or -1. */
    private static int matching(CharSequence s, int open) {
        int depth = 0;
        for (int i = open; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                i = stringEnd(s.toString(), i) - 1;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                if (--depth == 0) {
                    return i;
                }
            }
        }
        return -1;
    }

    /** True when the character at {@code i} can end an operand (so a following '.' or '[' applies to it). */
    private static boolean endsOperand(CharSequence s, int i) {
        char c = s.charAt(i);
        return isIdent(c) || c == ')' || c == ']' || c == '\'' || c == '"';
    }

    /**
     * Where the operand that ends at {@code i} starts: a chain of a name, string literal or
     * bracketed group followed by {@code .name}, calls and subscripts; -1 when it cannot tell.
     */
    private static int operandStart(CharSequence s, int i) {
        while (i >= 0) {
            char c = s.charAt(i);
            if (c == ')' || c == ']') {
                int open = opening(s, i);
                if (open < 0) {
                    return -1;
                }
                if (open > 0 && endsOperand(s, open - 1)) {
                    i = open - 1; // a call or subscript of what comes before
                    continue;
                }
                return open; // a parenthesized expression or a list literal
            }
            if (c == '\'' || c == '"') {
                int j = i - 1;
                while (j >= 0 && (s.charAt(j) != c || (j > 0 && s.charAt(j - 1) == '\\'))) {
                    j--;
                }
                return j; // a string literal starts the chain
            }
            if (isIdent(c)) {
                int j = i;
                while (j > 0 && isIdent(s.charAt(j - 1))) {
                    j--;
                }
                if (j > 0 && s.charAt(j - 1) == '.' && j > 1 && endsOperand(s, j - 2)) {
                    i = j - 2;
                    continue;
                }
                return j;
            }
            return -1;
        }
        return -1;
    }

    /** The index of the bracket opening the one that closes at {@code close}, or -1 (strings inside skipped). */
    private static int opening(CharSequence s, int close) {
        int depth = 0;
        for (int i = close; i >= 0; i--) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                int j = i - 1;
                while (j >= 0 && (s.charAt(j) != c || (j > 0 && s.charAt(j - 1) == '\\'))) {
                    j--;
                }
                i = j;
                if (i < 0) {
                    return -1;
                }
            } else if (c == ')' || c == ']' || c == '}') {
                depth++;
            } else if (c == '(' || c == '[' || c == '{') {
                if (--depth == 0) {
                    return i;
                }
            }
        }
        return -1;
    }

    private static boolean isIdent(char c) {
        return Character.isLetterOrDigit(c) || c == '_';
    }
}
