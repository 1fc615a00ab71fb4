// Python's str/dict/list methods and slicing with Python's meaning, as functions for rewritten chat templates (PythonSyntax).
package cria.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@link PythonSyntax} turns {@code recv.method(args)} and {@code recv[a:b:c]} into. Each
 * does what Python does (Jinja2 templates are Python expressions): {@code split} with a
 * separator splits on that text, keeping empty parts, and without one on runs of whitespace;
 * {@code strip(chars)} removes those characters; a slice takes negative indices and steps.
 * A receiver of another type than the method belongs to is an error, as in Python.
 */
public final class PythonFunctions {
    private PythonFunctions() {}

    /** Python's TypeError or ValueError in one of these functions; the template fails with its message. */
    static final class PythonError extends RuntimeException {
        PythonError(String message) {
            super(message);
        }
    }

    /** The Jinjava function names and their methods. */
    static final List<String> NAMES = List.of("startswith", "endswith", "strip", "lstrip", "rstrip", "split", "upper", "lower",
            "title", "capitalize", "items", "keys", "values", "get", "count", "find", "join", "slice");

    private static String str(Object recv, String method) {
        if (recv instanceof CharSequence s) {
            return s.toString();
        }
        throw new PythonError("'" + typeName(recv) + "' object has no attribute '" + method + "'");
    }

    private static String typeName(Object o) {
        return o == null ? "NoneType" : o instanceof Map ? "dict" : o instanceof Collection ? "list"
                : o instanceof Number ? "number" : o.getClass().getSimpleName();
    }

    private static Object arg(Object[] a, int i) {
        return a != null && i < a.length ? a[i] : null;
    }

    /** {@code s.startswith(prefix)}; prefix may be a list of prefixes (Python's tuple). */
    public static boolean startswith(Object recv, Object... a) {
        String s = str(recv, "startswith");
        return anyOf(arg(a, 0), p -> s.startsWith(p));
    }

    /** {@code s.endswith(suffix)}; suffix may be a list of suffixes. */
    public static boolean endswith(Object recv, Object... a) {
        String s = str(recv, "endswith");
        return anyOf(arg(a, 0), p -> s.endsWith(p));
    }

    private static boolean anyOf(Object what, java.util.function.Predicate<String> test) {
        if (what instanceof Collection<?> c) {
            return c.stream().anyMatch(x -> test.test(String.valueOf(x)));
        }
        if (!(what instanceof CharSequence)) {
            throw new PythonError("startswith/endswith takes a string or a list of strings, not " + typeName(what));
        }
        return test.test(what.toString());
    }

    /** {@code s.strip([chars])}. */
    public static String strip(Object recv, Object... a) {
        return rstrip(lstrip(recv, a), a);
    }

    /** {@code s.lstrip([chars])}. */
    public static String lstrip(Object recv, Object... a) {
        String s = str(recv, "lstrip");
        Object chars = arg(a, 0);
        int i = 0;
        while (i < s.length() && stripped(s.charAt(i), chars)) {
            i++;
        }
        return s.substring(i);
    }

    /** {@code s.rstrip([chars])}. */
    public static String rstrip(Object recv, Object... a) {
        String s = str(recv, "rstrip");
        Object chars = arg(a, 0);
        int e = s.length();
        while (e > 0 && stripped(s.charAt(e - 1), chars)) {
            e--;
        }
        return s.substring(0, e);
    }

    private static boolean stripped(char c, Object chars) {
        return chars == null ? Character.isWhitespace(c) || Character.isSpaceChar(c) : chars.toString().indexOf(c) >= 0;
    }

    /** {@code s.split([sep[, maxsplit]])}. */
    public static List<String> split(Object recv, Object... a) {
        String s = str(recv, "split");
        Object sep = arg(a, 0);
        long max = arg(a, 1) instanceof Number n ? n.longValue() : -1;
        List<String> out = new ArrayList<>();
        if (sep == null) {
            int i = 0;
            while (true) {
                while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                    i++;
                }
                if (i >= s.length()) {
                    break;
                }
                if (max >= 0 && out.size() == max) {
                    out.add(s.substring(i).stripTrailing());
                    break;
                }
                int j = i;
                while (j < s.length() && !Character.isWhitespace(s.charAt(j))) {
                    j++;
                }
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        String p = sep.toString();
        if (p.isEmpty()) {
            throw new PythonError("split: empty separator");
        }
        int from = 0;
        for (int at = s.indexOf(p); at >= 0 && (max < 0 || out.size() < max); at = s.indexOf(p, from)) {
            out.add(s.substring(from, at));
            from = at + p.length();
        }
        out.add(s.substring(from));
        return out;
    }

    /** {@code s.upper()}. */
    public static String upper(Object recv, Object... a) {
        return str(recv, "upper").toUpperCase(Locale.ROOT);
    }

    /** {@code s.lower()}. */
    public static String lower(Object recv, Object... a) {
        return str(recv, "lower").toLowerCase(Locale.ROOT);
    }

    /** {@code s.title()}: each word's first letter upper case, the rest lower. */
    public static String title(Object recv, Object... a) {
        String s = str(recv, "title");
        StringBuilder b = new StringBuilder(s.length());
        boolean inWord = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            b.append(inWord ? Character.toLowerCase(c) : Character.toUpperCase(c));
            inWord = Character.isLetter(c);
        }
        return b.toString();
    }

    /** {@code s.capitalize()}. */
    public static String capitalize(Object recv, Object... a) {
        String s = str(recv, "capitalize");
        return s.isEmpty() ? s : Character.toUpperCase(s.charAt(0)) + s.substring(1).toLowerCase(Locale.ROOT);
    }

    /** {@code s.count(sub)} or {@code list.count(x)}. */
    public static long count(Object recv, Object... a) {
        Object x = arg(a, 0);
        if (recv instanceof Collection<?> c) {
            return c.stream().filter(e -> java.util.Objects.equals(e, x)).count();
        }
        String s = str(recv, "count");
        String sub = String.valueOf(x);
        if (sub.isEmpty()) {
            return s.length() + 1L;
        }
        long n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
        }
        return n;
    }

    /** {@code s.find(sub)}: the first index, or -1. */
    public static long find(Object recv, Object... a) {
        return str(recv, "find").indexOf(String.valueOf(arg(a, 0)));
    }

    /** {@code sep.join(items)}. */
    public static String join(Object recv, Object... a) {
        String sep = str(recv, "join");
        Object items = arg(a, 0);
        if (!(items instanceof Collection<?> c)) {
            throw new PythonError("join takes a list, not " + typeName(items));
        }
        return joined(sep, c);
    }

    private static String joined(String sep, Collection<?> c) {
        StringBuilder b = new StringBuilder();
        boolean first = true;
        for (Object o : c) {
            if (!first) {
                b.append(sep);
            }
            b.append(o);
            first = false;
        }
        return b.toString();
    }

    private static Map<?, ?> map(Object recv, String method) {
        if (recv instanceof Map<?, ?> m) {
            return m;
        }
        throw new PythonError("'" + typeName(recv) + "' object has no attribute '" + method + "'");
    }

    /** {@code d.items()}: [key, value] pairs in the dict's order. */
    public static List<List<Object>> items(Object recv, Object... a) {
        List<List<Object>> out = new ArrayList<>();
        map(recv, "items").forEach((k, v) -> out.add(Arrays.asList(k, v)));
        return out;
    }

    /** {@code d.keys()}. */
    public static List<Object> keys(Object recv, Object... a) {
        return new ArrayList<>(map(recv, "keys").keySet());
    }

    /** {@code d.values()}. */
    public static List<Object> values(Object recv, Object... a) {
        return new ArrayList<>(map(recv, "values").values());
    }

    /** {@code d.get(key[, default])}. */
    public static Object get(Object recv, Object... a) {
        Map<?, ?> m = map(recv, "get");
        Object k = arg(a, 0);
        return m.containsKey(k) ? m.get(k) : arg(a, 1);
    }

    /** {@code seq[start:stop:step]} of a list or string; null bounds are Python's None. */
    public static Object slice(Object recv, Object start, Object stop, Object step) {
        long st = step == null ? 1 : index(step);
        if (st == 0) {
            throw new PythonError("slice step cannot be zero");
        }
        List<?> list = recv instanceof List<?> l ? l : recv instanceof Collection<?> c ? new ArrayList<>(c) : null;
        String s = recv instanceof CharSequence cs ? cs.toString() : null;
        if (list == null && s == null) {
            throw new PythonError("'" + typeName(recv) + "' object is not subscriptable");
        }
        long n = list != null ? list.size() : s.length();
        long lo = bound(start, n, st, true);
        long hi = bound(stop, n, st, false);
        List<Object> out = new ArrayList<>();
        StringBuilder sb = new StringBuilder();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) {
            if (list != null) {
                out.add(list.get((int) i));
            } else {
                sb.append(s.charAt((int) i));
            }
        }
        return list != null ? out : sb.toString();
    }

    private static long index(Object o) {
        if (o instanceof Number n) {
            return n.longValue();
        }
        throw new PythonError("slice indices must be integers or None, not " + typeName(o));
    }

    // Python's slice.indices(): a missing bound is the start or end in the step's direction;
    // a negative one counts from the end; both are clamped to the sequence.
    private static long bound(Object b, long n, long step, boolean start) {
        if (b == null) {
            return step > 0 ? (start ? 0 : n) : (start ? n - 1 : -1);
        }
        long v = index(b);
        if (v < 0) {
            v += n;
            if (v < 0) {
                v = step > 0 ? 0 : -1;
            }
        } else if (v >= n) {
            v = step > 0 ? n : n - 1;
        }
        return v;
    }
}
