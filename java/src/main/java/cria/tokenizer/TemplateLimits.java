// Bounds on rendering an untrusted chat template: string and output size, loop steps, macro depth, time, allocation.
package cria.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.InterpreterFactory;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.Functions;
import java.lang.management.ManagementFactory;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The limits one render of a Jinja chat template runs under, and the bookkeeping that enforces
 * them. A GGUF file's {@code tokenizer.chat_template} is a program from whoever made the file:
 * without bounds a few lines of it can double a string until the heap is gone, or nest loops for
 * minutes. Jinjava enforces some bounds itself (output size, the size of strings made by
 * concatenation, join and replace, list and map size, macro recursion depth; see
 * {@link #configure}). The rest are enforced here:
 * <ul>
 *   <li>before rendering, the nesting of brackets and block tags ({@link #nestingProblem});</li>
 *   <li>steps: every loop iteration and every scope entered (a macro call, a loop, a block
 *       {@code set}) counts one, and {@code range()} may not make more numbers than that;</li>
 *   <li>the value of every expression: a string longer than the size limit, or a list or map
 *       larger than the step limit, fails the render as soon as it is made;</li>
 *   <li>the size arguments of filters such as {@code center} and {@code round};</li>
 *   <li>wall-clock time and bytes allocated by the rendering thread, checked at every step and
 *       expression.</li>
 * </ul>
 * The counting is done by an interpreter subclass that Jinjava creates for the render. The first
 * limit hit is remembered ({@link #failure()}) and, after it or after any error Jinjava records,
 * every later step fails at once, so that Jinjava, which records most exceptions as errors and
 * carries on, unwinds quickly. One instance serves one render on one thread.
 */
final class TemplateLimits {

    // Output and single-string size, in chars. Real prompts are the conversation plus markup: a few
    // hundred chars of markup per message, so a few KB to a few hundred KB in all, a few MB for a
    // million-token context. 4 Mi chars is far above any markup a template adds to a small
    // conversation; 8x the input on top covers templates that repeat the conversation or escape it
    // (tojson turns one control character into six). A string of 4 Mi chars is 8 MB at most, and
    // what a filter makes of it one item per char (|list) still fits a small heap.
    static final long FIXED_CHARS = 4L << 20;
    static final long CHARS_PER_INPUT_CHAR = 8;
    // Well under Java's largest array, so that a String of the limit can be built at all.
    static final long MAX_CHARS = 1L << 30;

    // Loop iterations plus macro calls. Real templates loop once or twice over the messages (and
    // over tools, which Cria does not pass), so 1000 steps per message is hundreds of times what
    // they need; 100,000 more cover small fixed loops. Three nested loops over range(1000) (10^9
    // iterations) stop after 10^5, in a fraction of a second.
    static final long FIXED_STEPS = 100_000;
    static final long STEPS_PER_MESSAGE = 1_000;

    // Macro recursion depth. Jinja2 (Python) allows some hundreds before its own recursion limit;
    // real templates recurse only over nested JSON schemas of tools, a handful deep.
    static final int MACRO_DEPTH = 64;

    // Wall-clock time. A real template renders in milliseconds (a 2000-message conversation in
    // about 30 ms); the time limit catches what the other limits let through, such as 10^5
    // searches in a string of millions of chars.
    static final long MAX_NANOS = 10_000_000_000L;

    // Bytes the rendering thread may allocate. Measured on real templates (Llama 3, Phi-3): about
    // 16-25 bytes per char of conversation and 2-7 KB per message. The budget is ten times that
    // plus 128 MiB: it bounds the garbage a template makes and, since live memory is part of it,
    // the memory a render can hold (say, many strings kept in a list, each under the size limit).
    static final long FIXED_ALLOCATION = 128L << 20;
    static final long ALLOCATION_PER_INPUT_CHAR = 256;
    static final long ALLOCATION_PER_MESSAGE = 64L << 10;

    // The largest size argument a filter may be given (center(width), indent(width), round(digits),
    // batch(count), widths in format). Templates ask for single digits; 10,000 keeps one call small.
    static final long MAX_FILTER_SIZE = 10_000;

    // Nesting of brackets in one expression and of block tags (if, for, macro, ...). Jinjava parses
    // and renders nesting by recursion: thousands deep overflow the stack, and its expression parser
    // takes time growing faster than the square of the depth (20,000 parentheses: minutes). Jinja2
    // itself stops at well under 100 levels of either (Python's recursion limit), so no working
    // template comes near.
    static final int MAX_NESTING = 100;

    private static final Set<String> BLOCK_TAGS = Set.of(
            "if", "for", "macro", "call", "filter", "block", "with", "autoescape", "unless");

    private static final com.sun.management.ThreadMXBean THREADS = threads();
    private static final ThreadLocal<TemplateLimits> RENDERING = new ThreadLocal<>();
    private static final InterpreterFactory FACTORY = new Factory();

    final long maxChars;
    final long maxSteps;
    final long maxAllocation;
    private final long start;
    private final long allocatedAtStart;
    private long steps;
    private String failure;
    private int failureLine;
    private TemplateError firstError; // once set, the render fails anyway, so nothing more need run

    private TemplateLimits(long maxChars, long maxSteps, long maxAllocation) {
        this.maxChars = maxChars;
        this.maxSteps = maxSteps;
        this.maxAllocation = maxAllocation;
        this.start = System.nanoTime();
        this.allocatedAtStart = allocated();
    }

    /** Limits for rendering a conversation of {@code messages} with {@code inputChars} chars of text in all. */
    static TemplateLimits forConversation(int messages, long inputChars) {
        long chars = Math.min(MAX_CHARS, FIXED_CHARS + CHARS_PER_INPUT_CHAR * inputChars);
        long steps = Math.min(Integer.MAX_VALUE - 1, FIXED_STEPS + STEPS_PER_MESSAGE * messages);
        long bytes = FIXED_ALLOCATION + ALLOCATION_PER_INPUT_CHAR * inputChars + ALLOCATION_PER_MESSAGE * messages;
        return new TemplateLimits(chars, steps, bytes);
    }

    /**
     * Why a template nests too deeply to be given to Jinjava, or null. Looks at the brackets inside
     * each {@code {{ }}} and {@code {% %}} (outside string literals) and at block tags and their
     * {@code end} tags; a malformed template is left to Jinjava to report.
     */
    static String nestingProblem(String src) {
        int blocks = 0;
        int n = src.length();
        int i = 0;
        while (i < n - 1) {
            int open = src.indexOf('{', i);
            if (open < 0 || open == n - 1) {
                break;
            }
            char kind = src.charAt(open + 1);
            if (kind == '#') {
                int end = src.indexOf("#}", open + 2);
                if (end < 0) {
                    break;
                }
                i = end + 2;
                continue;
            }
            if (kind != '{' && kind != '%') {
                i = open + 1;
                continue;
            }
            String close = kind == '{' ? "}}" : "%}";
            int depth = 0;
            char quote = 0;
            int end = -1;
            for (int j = open + 2; j < n; j++) {
                char c = src.charAt(j);
                if (quote != 0) {
                    if (c == '\\') {
                        j++;
                    } else if (c == quote) {
                        quote = 0;
                    }
                } else if (c == '\'' || c == '"') {
                    quote = c;
                } else if (c == '(' || c == '[' || c == '{') {
                    if (++depth > MAX_NESTING) {
                        return "it nests brackets more than " + MAX_NESTING + " deep";
                    }
                } else if (depth > 0 && (c == ')' || c == ']' || c == '}')) {
                    depth--;
                } else if (src.startsWith(close, j)) {
                    end = j;
                    break;
                }
            }
            if (end < 0) {
                break;
            }
            i = end + 2;
            if (kind == '%') {
                String name = tagName(src, open + 2, end);
                if (BLOCK_TAGS.contains(name)) {
                    if (++blocks > MAX_NESTING) {
                        return "it nests block tags (if, for, macro, ...) more than " + MAX_NESTING + " deep";
                    }
                } else if (name.startsWith("end") && BLOCK_TAGS.contains(name.substring(3))) {
                    blocks = Math.max(0, blocks - 1);
                } else if (name.equals("raw")) {
                    Matcher m = END_RAW.matcher(src);
                    if (!m.find(i)) {
                        break;
                    }
                    i = m.end();
                }
            }
        }
        return null;
    }

    private static final Pattern END_RAW = Pattern.compile("\\{%[-+]?\\s*endraw\\s*[-+]?%\\}");

    // The first word of a tag, after its whitespace-control sign.
    private static String tagName(String src, int from, int to) {
        int b = from;
        while (b < to && (src.charAt(b) == '-' || src.charAt(b) == '+' || Character.isWhitespace(src.charAt(b)))) {
            b++;
        }
        int e = b;
        while (e < to && Character.isJavaIdentifierPart(src.charAt(e))) {
            e++;
        }
        return src.substring(b, e);
    }

    /** The limits Jinjava enforces itself, plus the interpreter that counts the rest for this render. */
    JinjavaConfig.Builder configure(JinjavaConfig.Builder b) {
        return b.withMaxOutputSize(maxChars)          // the output, and strings built with + and ~
                .withMaxStringLength(maxChars)        // join and replace
                .withMaxListSize((int) maxSteps)
                .withMaxMapSize((int) maxSteps)
                // Jinjava silently shortens a longer range; one more than allowed lets range() below see it.
                .withRangeLimit((int) maxSteps + 1)
                .withEnableRecursiveMacroCalls(true)
                .withMaxMacroRecursionDepth(MACRO_DEPTH)
                .withInterperterFactory(FACTORY);
    }

    /**
     * Renders under these limits. Jinjava makes the render's interpreter with the factory of the
     * configuration it was built with, not the one passed here, so the limits reach it through
     * the thread.
     */
    RenderResult render(Jinjava jinjava, String source, Map<String, ?> vars, JinjavaConfig config) {
        TemplateLimits outer = RENDERING.get();
        RENDERING.set(this);
        try {
            return jinjava.renderForResult(source, vars, config);
        } finally {
            RENDERING.set(outer);
        }
    }

    /** The first limit hit, as the end of a sentence ("it ..."), or null. */
    String failure() {
        return failure;
    }

    /** The first error Jinjava recorded in this render, or null. */
    TemplateError firstError() {
        return firstError;
    }

    /** The template line being rendered when the limit was hit (0 when unknown). */
    int failureLine() {
        return failureLine;
    }

    /** Remembers the first failure and throws it (and every later check throws it again). */
    private RuntimeException fail(String reason, JinjavaInterpreter at) {
        if (failure == null) {
            failure = reason;
            failureLine = at != null ? at.getLineNumber() : 0;
        }
        throw new LimitExceeded(failure);
    }

    private void step(JinjavaInterpreter at) {
        if (failure != null || firstError != null) {
            throw new LimitExceeded(failure != null ? failure : "stopped after an error");
        }
        if (++steps > maxSteps) {
            throw fail("it ran more than " + maxSteps + " loop iterations and macro calls", at);
        }
        check(at);
    }

    private void check(JinjavaInterpreter at) {
        if (failure != null || firstError != null) {
            throw new LimitExceeded(failure != null ? failure : "stopped after an error");
        }
        if (System.nanoTime() - start > MAX_NANOS) {
            throw fail("it ran longer than " + MAX_NANOS / 1_000_000_000 + " s", at);
        }
        if (THREADS != null && allocated() - allocatedAtStart > maxAllocation) {
            throw fail("it allocated more than " + (maxAllocation >> 20) + " MiB", at);
        }
    }

    // A {% set %} resolves its expression wrapped in a list, so strings are looked for one level down too.
    private void checkValue(Object value, JinjavaInterpreter at) {
        checkSize(value, at);
        if (value instanceof Collection<?> c) {
            for (Object o : c) {
                checkSize(o, at);
            }
        } else if (value instanceof Map<?, ?> m) {
            for (Object o : m.values()) {
                checkSize(o, at);
            }
        }
        check(at);
    }

    private void checkSize(Object value, JinjavaInterpreter at) {
        if (value instanceof CharSequence s && s.length() > maxChars) {
            throw fail("it built a string of more than " + maxChars + " characters", at);
        }
        long size = value instanceof Collection<?> c ? c.size() : value instanceof Map<?, ?> m ? m.size() : 0;
        if (size > maxSteps) {
            throw fail("it built a list or map of more than " + maxSteps + " items", at);
        }
    }

    private static long allocated() {
        return THREADS != null ? THREADS.getCurrentThreadAllocatedBytes() : 0;
    }

    // HotSpot (every JDK Cria runs on) counts the bytes each thread allocates; elsewhere the time
    // limit and the size limits still hold.
    private static com.sun.management.ThreadMXBean threads() {
        try {
            if (ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean t
                    && t.isThreadAllocatedMemorySupported()) {
                if (!t.isThreadAllocatedMemoryEnabled()) {
                    t.setThreadAllocatedMemoryEnabled(true);
                }
                return t;
            }
        } catch (RuntimeException | LinkageError e) {
            // not HotSpot, or management not available: no allocation limit
        }
        return null;
    }

    /**
     * Python's {@code range}, as templates call it, refusing more numbers than the step limit
     * allows. Jinjava's own {@code range} returns a shortened list instead, which would render a
     * wrong prompt without a word.
     */
    public static List<Integer> range(Object start, Object... rest) {
        List<Integer> r = Functions.range(start, rest);
        if (JinjavaInterpreter.getCurrent() instanceof Guarded g && r.size() > g.limits.maxSteps) {
            throw g.limits.fail("it asked for a range() of more than " + g.limits.maxSteps + " numbers", g);
        }
        return r;
    }

    /** Puts size checks in front of the filters whose arguments are sizes of what they make. */
    static void guardSizedFilters(Context global) {
        for (String name : List.of("center", "indent", "batch", "round", "format")) {
            Filter f = global.getFilter(name);
            if (f != null) {
                global.registerFilter(new SizedFilter(f));
            }
        }
    }

    /**
     * A filter whose first argument (or, for {@code format}, a width or precision in the format
     * string) is a size: {@code 'x'|center(10**9)} would make a string of a billion chars, and
     * {@code 1.5|round(10**8)} computes for a minute, in one call where no other limit can look in.
     */
    static final class SizedFilter implements Filter {
        private static final Pattern FORMAT_SIZE = Pattern.compile("%[-#+ 0,(<]*(\\d*)(?:\\.(\\d*))?");
        private static final Set<String> SIZE_KEYWORDS = Set.of("width", "precision", "linecount");
        private final Filter filter;

        SizedFilter(Filter filter) {
            this.filter = filter;
        }

        @Override
        public String getName() {
            return filter.getName();
        }

        @Override
        public boolean preserveSafeString() {
            return filter.preserveSafeString();
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            check(var, args.length > 0 ? args[0] : null);
            return filter.filter(var, interpreter, args);
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            check(var, args.length > 0 ? args[0] : null);
            for (Map.Entry<String, Object> e : kwargs.entrySet()) {
                if (SIZE_KEYWORDS.contains(e.getKey())) {
                    check(null, e.getValue());
                }
            }
            return filter.filter(var, interpreter, args, kwargs);
        }

        private void check(Object var, Object size) {
            if (filter.getName().equals("format")) {
                if (var instanceof CharSequence fmt) {
                    Matcher m = FORMAT_SIZE.matcher(fmt);
                    while (m.find()) {
                        checkSize(m.group(1));
                        checkSize(m.group(2));
                    }
                }
            } else {
                checkSize(size);
            }
        }

        private void checkSize(Object size) {
            double v;
            try {
                v = size instanceof Number n ? n.doubleValue()
                        : size != null && !size.toString().isBlank() ? Double.parseDouble(size.toString().strip()) : 0;
            } catch (NumberFormatException e) {
                return; // not a number: the filter itself says what is wrong
            }
            if (!(Math.abs(v) <= MAX_FILTER_SIZE)) {
                String reason = "it asked the " + filter.getName() + " filter for a size of " + size
                        + " (at most " + MAX_FILTER_SIZE + ")";
                if (JinjavaInterpreter.getCurrent() instanceof Guarded g) {
                    throw g.limits.fail(reason, g);
                }
                throw new LimitExceeded(reason);
            }
        }
    }

    /** What a limit throws inside the render; the render's caller reads {@link #failure()} instead. */
    static final class LimitExceeded extends RuntimeException {
        LimitExceeded(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * Jinjava's interpreter with the counting hooks: {@code wrap} runs once per loop iteration,
     * {@code enterScope} once per macro call, loop and block set, {@code resolveELExpression} once
     * per expression (in {@code {{ }}}, {@code set}, {@code if}, {@code for}).
     */
    static final class Guarded extends JinjavaInterpreter {
        final TemplateLimits limits;

        Guarded(Jinjava jinjava, Context context, JinjavaConfig config, TemplateLimits limits) {
            super(jinjava, context, config);
            this.limits = limits;
        }

        Guarded(Guarded orig) {
            super(orig);
            this.limits = orig.limits;
        }

        @Override
        public Object wrap(Object o) {
            limits.step(this);
            return super.wrap(o);
        }

        @Override
        public InterpreterScopeClosable enterScope(Map<Context.Library, Set<String>> disabled) {
            limits.step(this);
            return super.enterScope(disabled);
        }

        // Jinjava records an error and renders on; the first error decides the render, so the rest
        // is cut short (a recursion stopped at its depth limit would otherwise start again beside).
        @Override
        public void addError(TemplateError error) {
            int before = getErrors().size();
            super.addError(error);
            if (getErrors().size() > before && limits.firstError == null) {
                limits.firstError = error;
            }
        }

        @Override
        public Object resolveELExpression(String expression, int lineNumber) {
            limits.check(this);
            Object value = super.resolveELExpression(expression, lineNumber);
            limits.checkValue(value, this);
            return value;
        }
    }

    /** Makes {@link Guarded} interpreters for the render in progress on this thread. */
    private static final class Factory implements InterpreterFactory {
        @Override
        public JinjavaInterpreter newInstance(JinjavaInterpreter orig) {
            return orig instanceof Guarded g ? new Guarded(g) : new JinjavaInterpreter(orig);
        }

        @Override
        public JinjavaInterpreter newInstance(Jinjava jinjava, Context context, JinjavaConfig config) {
            TemplateLimits limits = RENDERING.get();
            return limits != null ? new Guarded(jinjava, context, config, limits) : new JinjavaInterpreter(jinjava, context, config);
        }
    }
}
