// Chat prompts: renders tokenizer.chat_template (Jinja, configured as Hugging Face does) or a built-in Llama 2 / Llama 3 format.
package cria.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import cria.CriaException;
import cria.gguf.Metadata;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Turns a conversation into the prompt text a model was trained on. The template is the file's
 * {@code tokenizer.chat_template}, rendered with Jinja semantics as Hugging Face's
 * {@code apply_chat_template} does it: {@code trim_blocks} and {@code lstrip_blocks} on, the variables
 * {@code messages}, {@code add_generation_prompt}, {@code bos_token} and {@code eos_token}, and a
 * {@code raise_exception(message)} function. A file without a template gets the Llama 3 format when
 * its vocabulary has {@code <|start_header_id|>}, otherwise the Llama 2 format.
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
     * @throws CriaException when the template rejects the conversation (its {@code raise_exception})
     *                       or cannot be rendered
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
                    // Jinja2 semantics where Jinjava differs by default (each checked against Jinja2 on
                    // random conversations): message text is data, never re-rendered (nested
                    // interpretation off); filters bind tighter than operators; {{- -}} trims; dict
                    // keys and string escapes as in Python. (The Pyish object mapper is left off: it
                    // escapes control characters in strings.)
                    LegacyOverrides jinja2 = LegacyOverrides.newBuilder()
                            .withUseNaturalOperatorPrecedence(true)
                            .withParseWhitespaceControlStrictly(true)
                            .withEvaluateMapKeys(true)
                            .withIterateOverMapKeys(true)
                            .withHandleBackslashInQuotesOnly(true)
                            .withKeepNullableLoopValues(true)
                            .withUseTrimmingForNotesAndExpressions(true)
                            .build();
                    JinjavaConfig cfg = JinjavaConfig.newBuilder()
                            .withTrimBlocks(true).withLstripBlocks(true)
                            .withNestedInterpretationEnabled(false)
                            .withLegacyOverrides(jinja2)
                            .build();
                    j = new Jinjava(cfg);
                    j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                            ChatTemplate.class, "raiseException", String.class));
                    j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                            ChatTemplate.class, "strftimeNow", String.class));
                    j.getGlobalContext().registerFilter(new PythonTrim());
                    engine = j;
                }
            }
        }
        return j;
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
        for (Message m : messages) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("role", m.role());
            o.put("content", m.content());
            msgs.add(o);
        }
        Map<String, Object> vars = new HashMap<>();
        vars.put("messages", msgs);
        vars.put("add_generation_prompt", addGenerationPrompt);
        vars.put("bos_token", bos);
        vars.put("eos_token", eos);
        RenderResult r;
        try {
            r = engine().renderForResult(source, vars);
        } catch (TemplateException e) {
            throw new CriaException("chat template: " + e.getMessage());
        }
        for (TemplateError e : r.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                String msg = e.getException() != null && rootCause(e.getException()) instanceof TemplateException t
                        ? t.getMessage() : e.getMessage();
                throw new CriaException("chat template: " + msg + (e.getLineno() > 0 ? " (template line " + e.getLineno() + ")" : ""));
            }
        }
        return r.getOutput();
    }

    private static Throwable rootCause(Throwable t) {
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t;
    }
}
