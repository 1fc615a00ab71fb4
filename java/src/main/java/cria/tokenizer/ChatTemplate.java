// Chat prompts: renders tokenizer.chat_template (Jinja, configured as Hugging Face does) or a built-in Llama 2 / Llama 3 format.
package cria.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.OutputTooBigException;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.loader.ResourceNotFoundException;
import cria.CriaException;
import cria.gguf.Metadata;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Turns a conversation into the prompt text a model was trained on. The template is the file's
 * {@code tokenizer.chat_template}, rendered with Jinja semantics as Hugging Face's
 * {@code apply_chat_template} does it: {@code trim_blocks} and {@code lstrip_blocks} on, the variables
 * {@code messages}, {@code add_generation_prompt}, {@code bos_token} and {@code eos_token}, and a
 * {@code raise_exception(message)} function. A file without a template gets the Llama 3 format when
 * its vocabulary has {@code <|start_header_id|>}, otherwise the Llama 2 format.
 *
 * <p>A file's template is untrusted code. It renders under limits that no real template comes near
 * (see {@code TemplateLimits}): output and string size, loop iterations and macro calls, recursion
 * and nesting depth, time and memory; without {@code include} or {@code import}. Any error, or any
 * limit hit, is a {@link CriaException} with a one-line message, never an empty or partial prompt.
 *
 * <p>The rendered prompt usually starts with the BOS text: tokenize it with
 * {@code encode(prompt, false, true)} so that BOS is not added twice.
 */
public final class ChatTemplate {

    /** One message of a conversation; the role is usually {@code system}, {@code user} or {@code assistant}. */
    public record Message(String role, String content) {
        public Message {
            Objects.requireNonNull(role, "role");
            Objects.requireNonNull(content, "content");
        }
    }

    /** The built-in formats, for files without a template. */
    public enum Builtin { LLAMA2, LLAMA3 }

    private final String name;
    private final String source;   // Jinja source, or null for a built-in
    private final Builtin builtin; // or null for Jinja
    private final String bos;
    private final String eos;

    private ChatTemplate(String name, String source, Builtin builtin, String bos, String eos) {
        this.name = name;
        this.source = source;
        this.builtin = builtin;
        this.bos = bos;
        this.eos = eos;
    }

    /**
     * The template of a model: {@code tokenizer.chat_template} from its metadata, or a built-in
     * format chosen from the vocabulary. BOS/EOS texts come from the tokenizer.
     */
    public static ChatTemplate fromMetadata(Metadata md, Tokenizer tokenizer) {
        String bos = tokenizer.bos() >= 0 ? tokenizer.tokenText(tokenizer.bos()) : "";
        String eos = tokenizer.eos() >= 0 ? tokenizer.tokenText(tokenizer.eos()) : "";
        var tmpl = md.string("tokenizer.chat_template");
        if (tmpl.isPresent() && !tmpl.get().isBlank()) {
            return jinja(tmpl.get(), bos, eos);
        }
        Builtin b = tokenizer.tokenId("<|start_header_id|>") >= 0 ? Builtin.LLAMA3 : Builtin.LLAMA2;
        return builtin(b, bos, eos);
    }

    /** A Jinja template with the given BOS/EOS texts. */
    public static ChatTemplate jinja(String source, String bos, String eos) {
        // Jinja2 (keep_trailing_newline off) drops one newline at the end of the template source.
        String src = source.endsWith("\r\n") ? source.substring(0, source.length() - 2)
                : source.endsWith("\n") ? source.substring(0, source.length() - 1) : source;
        return new ChatTemplate("jinja", src, null, bos, eos);
    }

    /** A built-in format with the given BOS/EOS texts (e.g. {@code <s>}/{@code </s>}). */
    public static ChatTemplate builtin(Builtin format, String bos, String eos) {
        return new ChatTemplate(format.name().toLowerCase(java.util.Locale.ROOT), null, format, bos, eos);
    }

    /** A built-in format by name: {@code llama2} or {@code llama3}. */
    public static ChatTemplate named(String name, String bos, String eos) {
        return switch (name) {
            case "llama2" -> builtin(Builtin.LLAMA2, bos, eos);
            case "llama3" -> builtin(Builtin.LLAMA3, bos, eos);
            default -> throw new CriaException("unknown chat format '" + name + "'; use llama2 or llama3");
        };
    }

    /** {@code jinja} for a file's template, else {@code llama2} or {@code llama3}. */
    public String name() {
        return name;
    }

    /**
     * Renders a conversation. With {@code addGenerationPrompt} the prompt ends with the opening of
     * an assistant turn, so that generation continues as the assistant.
     *
     * @throws CriaException when the template rejects the conversation (its {@code raise_exception}),
     *                       cannot be rendered, or exceeds a limit of {@code TemplateLimits} (output
     *                       size, loop iterations, recursion, nesting, time, memory); never a partial prompt
     */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        if (builtin == Builtin.LLAMA3) {
            return llama3(messages, addGenerationPrompt);
        }
        if (builtin == Builtin.LLAMA2) {
            return llama2(messages);
        }
        return renderJinja(messages, addGenerationPrompt);
    }

    // Meta's Llama 3 format: a header per message, content trimmed, <|eot_id|> after each.
    private String llama3(List<Message> messages, boolean addGenerationPrompt) {
        StringBuilder sb = new StringBuilder(bos);
        for (Message m : messages) {
            sb.append("<|start_header_id|>").append(m.role()).append("<|end_header_id|>\n\n")
                    .append(m.content().strip()).append("<|eot_id|>");
        }
        if (addGenerationPrompt) {
            sb.append("<|start_header_id|>assistant<|end_header_id|>\n\n");
        }
        return sb.toString();
    }

    // Meta's Llama 2 format: <s>[INST] user [/INST] assistant </s>..., a system prompt inside the first user turn.
    private String llama2(List<Message> messages) {
        StringBuilder sb = new StringBuilder();
        String system = null;
        int i = 0;
        if (!messages.isEmpty() && messages.get(0).role().equals("system")) {
            system = messages.get(0).content();
            i = 1;
        }
        for (boolean first = true; i < messages.size(); i++, first = false) {
            Message m = messages.get(i);
            String content = first && system != null
                    ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.content() : m.content();
            if (m.role().equals("user")) {
                sb.append(bos).append("[INST] ").append(content.strip()).append(" [/INST]");
            } else if (m.role().equals("assistant")) {
                sb.append(' ').append(content.strip()).append(' ').append(eos);
            }
        }
        return sb.toString();
    }

    private static volatile Jinjava engine;

    private static Jinjava engine() {
        Jinjava j = engine;
        if (j == null) {
            synchronized (ChatTemplate.class) {
                j = engine;
                if (j == null) {
                    // Jinjava logs through SLF4J; without a logging backend SLF4J would warn on stderr.
                    System.setProperty("slf4j.internal.verbosity", "ERROR");
                    // Every render passes its own configuration (config(limits)); this one serves Jinjava's setup.
                    j = new Jinjava(config(TemplateLimits.forConversation(0, 0)));
                    j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                            ChatTemplate.class, "raiseException", String.class));
                    j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                            ChatTemplate.class, "strftimeNow", String.class));
                    // Replaces Jinjava's range, which shortens a long range without a word.
                    j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "range",
                            TemplateLimits.class, "range", Object.class, Object[].class));
                    j.getGlobalContext().registerFilter(new PythonTrim());
                    // Python's methods and slices, which PythonSyntax rewrites templates to call.
                    for (String name : PythonFunctions.NAMES) {
                        j.getGlobalContext().registerFunction(name.equals("slice")
                                ? new ELFunctionDefinition("", "py_slice", PythonFunctions.class, "slice", Object.class, Object.class,
                                        Object.class, Object.class)
                                : new ELFunctionDefinition("", "py_" + name, PythonFunctions.class, name, Object.class, Object[].class));
                    }
                    TemplateLimits.guardSizedFilters(j.getGlobalContext());
                    // Hugging Face renders a template from a string with no loader: include, import and
                    // extends have nothing to read. (Jinjava's default would read from the classpath.)
                    j.setResourceLocator((name, encoding, interpreter) -> {
                        throw new ResourceNotFoundException("it includes or imports '" + name
                                + "'; a chat template must be self-contained");
                    });
                    engine = j;
                }
            }
        }
        return j;
    }

    // Jinja2 semantics where Jinjava differs by default (each checked against Jinja2 on random
    // conversations): message text is data, never re-rendered (nested interpretation off); filters
    // bind tighter than operators; {{- -}} trims; dict keys and string escapes as in Python. (The
    // Pyish object mapper is left off: it escapes control characters in strings.)
    private static final LegacyOverrides JINJA2 = LegacyOverrides.newBuilder()
            .withUseNaturalOperatorPrecedence(true)
            .withParseWhitespaceControlStrictly(true)
            .withEvaluateMapKeys(true)
            .withIterateOverMapKeys(true)
            .withHandleBackslashInQuotesOnly(true)
            .withKeepNullableLoopValues(true)
            .withUseTrimmingForNotesAndExpressions(true)
            .build();

    // Java methods of String that Python's str lacks and that make a long string or run a regular
    // expression in one call, where no limit can look in (a regex can backtrack for hours). No
    // template written for Jinja2 calls them.
    private static final Set<String> RESTRICTED_METHODS = Set.of(
            "repeat", "concat", "indent", "formatted", "matches", "replaceAll", "replaceFirst");

    // Jinjava's filters that Jinja2 lacks and that run a regular expression or expand YAML aliases.
    private static final Map<Context.Library, Set<String>> DISABLED = Map.of(
            Context.Library.FILTER, Set.of("regex_replace", "fromyaml"));

    /** Jinjava's configuration for one render under the given limits. */
    private static JinjavaConfig config(TemplateLimits limits) {
        return limits.configure(JinjavaConfig.newBuilder())
                .withTrimBlocks(true).withLstripBlocks(false) // lstrip_blocks as Jinja2 does it: PythonSyntax.rewrite
                .withNestedInterpretationEnabled(false)
                .withLegacyOverrides(JINJA2)
                .withRestrictedMethods(RESTRICTED_METHODS)
                .withDisabled(DISABLED)
                .build();
    }

    /** What a template's {@code raise_exception(...)} throws. */
    static final class TemplateException extends RuntimeException {
        TemplateException(String message) {
            super(message);
        }
    }

    /** Python's {@code str.strip()} as Jinja2's {@code trim} filter does it (Java's trim knows fewer spaces). */
    static final class PythonTrim implements Filter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var == null) {
                return "";
            }
            String s = var.toString();
            int b = 0;
            int e = s.length();
            while (b < e && isPythonSpace(s.charAt(b))) {
                b++;
            }
            while (e > b && isPythonSpace(s.charAt(e - 1))) {
                e--;
            }
            return s.substring(b, e);
        }

        static boolean isPythonSpace(char c) {
            return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680
                    || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
        }
    }

    /** Called by templates as {@code strftime_now(format)} (Llama 3.1+ put today's date in the system prompt). */
    public static String strftimeNow(String format) {
        java.time.LocalDateTime now = java.time.LocalDateTime.now();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                sb.append(c);
                continue;
            }
            char f = format.charAt(++i);
            String pattern = switch (f) {
                case 'd' -> "dd";
                case 'm' -> "MM";
                case 'Y' -> "yyyy";
                case 'y' -> "yy";
                case 'b' -> "MMM";
                case 'B' -> "MMMM";
                case 'a' -> "EEE";
                case 'A' -> "EEEE";
                case 'H' -> "HH";
                case 'I' -> "hh";
                case 'M' -> "mm";
                case 'S' -> "ss";
                case 'p' -> "a";
                case 'j' -> "DDD";
                default -> null;
            };
            if (pattern == null) {
                sb.append(f == '%' ? "%" : "%" + f);
            } else {
                sb.append(java.time.format.DateTimeFormatter.ofPattern(pattern, java.util.Locale.ENGLISH).format(now));
            }
        }
        return sb.toString();
    }

    /** Called by templates as {@code raise_exception(message)}. */
    public static Object raiseException(String message) {
        throw new TemplateException(message);
    }

    private String renderJinja(List<Message> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> msgs = new ArrayList<>();
        long inputChars = bos.length() + eos.length();
        for (Message m : messages) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("role", m.role());
            o.put("content", m.content());
            msgs.add(o);
            inputChars += m.role().length() + m.content().length();
        }
        Map<String, Object> vars = new HashMap<>();
        vars.put("messages", msgs);
        vars.put("add_generation_prompt", addGenerationPrompt);
        vars.put("bos_token", bos);
        vars.put("eos_token", eos);
        String nesting = TemplateLimits.nestingProblem(source);
        String python = PythonSyntax.rewrite(source);
        if (nesting != null) {
            throw failed(nesting, 0);
        }
        Jinjava jinjava = engine(); // first, so that setting it up does not count against the render's limits
        TemplateLimits limits = TemplateLimits.forConversation(messages.size(), inputChars);
        RenderResult r;
        try {
            r = limits.render(jinjava, python, vars, config(limits));
        } catch (TemplateException e) {
            throw refused(e.getMessage(), 0);
        } catch (StackOverflowError e) {
            // Nesting the scan above let through; the stack is unwound by now.
            throw failed("it nests too deeply", 0);
        } catch (RuntimeException e) {
            // Jinjava turns exceptions into errors; one that escapes is a Jinjava bug the template hit.
            throw limits.failure() != null ? failed(limits.failure(), limits.failureLine()) : failed(e.toString(), 0);
        }
        // Jinjava records most failures as errors and renders on: the output is then partial or
        // empty. Any error at all (a warning too: a truncated join, a recursion cut short) fails.
        if (limits.failure() != null) {
            throw failed(limits.failure(), limits.failureLine());
        }
        // The first error recorded is the cause. The result's list is not in order, and it also
        // holds the errors of the render being stopped after the first.
        TemplateError first = limits.firstError();
        if (first == null) {
            first = r.getErrors().stream().filter(e -> !(cause(e) instanceof TemplateLimits.LimitExceeded)).findFirst()
                    .orElse(r.getErrors().isEmpty() ? null : r.getErrors().get(0));
        }
        if (first != null) {
            Throwable cause = cause(first);
            if (cause instanceof TemplateException t) {
                throw refused(t.getMessage(), first.getLineno());
            }
            String reason = cause instanceof OutputTooBigException
                    ? "it made a string or output of more than " + limits.maxChars + " characters"
                    : cause instanceof ResourceNotFoundException ? cause.getMessage()
                    : cause instanceof StackOverflowError ? "it nests too deeply"
                    : cause instanceof PythonFunctions.PythonError ? cause.getMessage()
                    : first.getMessage();
            throw failed(reason, first.getLineno());
        }
        return r.getOutput();
    }

    // What the person running the model can do about a failing template: the file is what it is,
    // and only `cria template` has a switch to a built-in format.
    private static final String ADVICE = "`cria template --format llama2|llama3` renders without it";

    /** The template raised an exception on purpose: it does not accept this conversation. */
    private static CriaException refused(String message, int line) {
        return new CriaException("the model's chat template (tokenizer.chat_template) refused the conversation"
                + at(line) + ": " + oneLine(message) + "; change the conversation to what the template accepts ("
                + ADVICE + ")");
    }

    /** The template could not be rendered: broken, or hostile and stopped by a limit. */
    private static CriaException failed(String reason, int line) {
        return new CriaException("the model's chat template (tokenizer.chat_template) failed" + at(line) + ": "
                + oneLine(reason) + "; the file's template is broken or hostile: use another model file ("
                + ADVICE + ")");
    }

    private static String at(int line) {
        return line > 0 ? " at template line " + line : "";
    }

    // Messages come from the template (raise_exception's text) or quote it: one line, no control or
    // format characters that could drive or fool the terminal, and not endless.
    private static String oneLine(String s) {
        String t = s == null ? "(no message)" : s.replaceAll("[\\p{Cc}\\p{Cf}\\p{Z}\\s]+", " ").strip();
        return t.length() > 300 ? t.substring(0, 300) + "..." : t;
    }

    private static Throwable cause(TemplateError e) {
        return e.getException() != null ? rootCause(e.getException()) : null;
    }

    private static Throwable rootCause(Throwable t) {
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t;
    }
}
