// Fine-tuning data: a JSONL file of texts, prompt/completion pairs, chats or labelled texts, read, checked and tokenized with a loss mask.
package cria.train;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import cria.CriaException;
import cria.gguf.Metadata;
import cria.tokenizer.ChatTemplate;
import cria.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The examples of a fine-tuning file and their tokens. The file holds one JSON object per line
 * (blank lines are skipped); each line is one of
 * <ul>
 * <li>{@code {"text": "..."}}: every token is trained;
 * <li>{@code {"prompt": "...", "completion": "..."}}: the completion is trained, after the prompt;
 * <li>{@code {"messages": [{"role": "...", "content": "..."}, ...]}}: a conversation rendered with
 *     the model's chat template ({@code tokenizer.chat_template}); the assistant turns are trained;
 * <li>{@code {"text": "...", "label": "..."}}: a classification, trained as the completion
 *     {@code " " + label} of the prompt {@code text + "\nLabel:"} ({@link #CUE}).
 * </ul>
 * Lines of different kinds may be mixed; any other line is an error naming the file and line.
 *
 * <h2>Tokens and the loss mask</h2>
 * An example becomes {@code [BOS] + encode(prompt) + encode(completion) + [EOS]} (BOS when the
 * vocabulary adds one, EOS when it has one) and a mask {@code trained[t]}: token {@code t} is a
 * target, predicted by the logits of position {@code t - 1}. A text trains every token after BOS,
 * EOS included; a completion or a label trains its own tokens and EOS. The completion is tokenized
 * as it continues the prompt (the tokens of {@code prompt + completion} after those of the prompt,
 * or, where a token would straddle the two, the completion alone), so that a SentencePiece
 * vocabulary gives {@code ▁happy} for {@code " happy"}, as a byte-level BPE gives {@code Ġhappy};
 * spaces that end a prompt are moved to the start of its completion for the same reason. A chat is
 * rendered whole (special tokens parsed, BOS once) and its assistant spans are found by rendering
 * prefixes of the conversation: a turn starts where {@code render(messages before it, generation
 * prompt)} ends and ends where {@code render(messages up to it)} and the whole conversation part
 * ways, or after its first end-of-generation token ({@code <|eot_id|>}, {@code </s>},
 * {@code <|im_end|>}...), whichever comes first: the assistant's content and its end-of-turn text
 * are trained. No EOS is added after a chat.
 *
 * <h2>Classification</h2>
 * The prompt is {@code text + "\nLabel:"} and the completion {@code " " + label}: the cue is the
 * same for every example, a line break (a byte token in SentencePiece vocabularies, {@code Ċ} in
 * byte-level ones) keeps it apart from the text, and the space before the label makes the label
 * start a word in both kinds of vocabulary. The label set is given ({@code labels}, in that order:
 * a label outside it is an error naming the line) or, without it, the labels of the file, sorted.
 * A classifier needs at least two labels.
 *
 * <h2>Length and augmentation</h2>
 * {@link #encode} cuts an example to {@code maxTokens}: texts and chats keep their start; a
 * prompt/completion or a classification loses the start of its prompt (after BOS), so that what is
 * trained survives, and only when the completion alone is too long its end. Augmentation
 * ({@link Augment}) changes the text of a classification, the prompt of a completion (its last word
 * kept) or a plain text, never what a completion, a label or a chat trains.
 */
public final class Examples {
    /** What a classification's prompt ends with: a line break and {@code Label:}. */
    public static final String CUE = "\nLabel:";
    /** The largest file read (the examples are held in memory). */
    public static final long MAX_FILE_BYTES = 1L << 30;

    private static final ObjectReader JSON = new ObjectMapper().reader()
            .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .with(StreamReadFeature.STRICT_DUPLICATE_DETECTION);
    private static final String SHAPES = "expected {\"text\"}, {\"prompt\",\"completion\"}, {\"messages\":[...]} or {\"text\",\"label\"}";

    private final String source;
    private final List<Example> examples;
    private final List<String> labels;
    private final Tokenizer tok;     // null until bound
    private final ChatTemplate chat; // null when the model has none
    private final boolean spacePrefix; // the vocabulary puts a space before the text it encodes (SentencePiece)

    /** One tokenized example: its tokens, which of them are targets, and whether it was cut to fit. */
    public record Encoded(int[] tokens, boolean[] trained, boolean truncated) {
        /** Number of trained tokens. */
        public int trainedCount() {
            int n = 0;
            for (boolean b : trained) {
                n += b ? 1 : 0;
            }
            return n;
        }

        /** The inputs of a training row: every token but the last. */
        public int[] inputs() {
            return Arrays.copyOf(tokens, Math.max(0, tokens.length - 1));
        }

        /** The targets of a training row: {@code tokens[t + 1]} where it is trained, else -1 (not scored). */
        public int[] targets() {
            int[] t = new int[Math.max(0, tokens.length - 1)];
            for (int i = 0; i < t.length; i++) {
                t[i] = trained[i + 1] ? tokens[i + 1] : -1;
            }
            return t;
        }
    }

    private Examples(String source, List<Example> examples, List<String> labels, Tokenizer tok, ChatTemplate chat) {
        this.source = source;
        this.examples = examples;
        this.labels = labels;
        this.tok = tok;
        this.chat = chat;
        int[] a = tok == null ? new int[0] : tok.encode("a", false, false);
        this.spacePrefix = a.length > 0 && tok.tokenText(a[0]).startsWith("\u2581");
    }

    /**
     * Reads, checks and binds a file to a model's vocabulary: {@code read(jsonl, labels).bind(tok, chat)}.
     *
     * @param chat the model's chat template ({@link #chatTemplate}), or null when it has none
     * @throws CriaException for an unreadable file, a bad line (named with its number), a label
     *                       outside {@code labels}, fewer than two labels, or chats without a template
     */
    public static Examples load(Path jsonl, Tokenizer tok, ChatTemplate chat, List<String> labels) {
        return read(jsonl, labels).bind(tok, chat);
    }

    /**
     * Reads and checks a file without tokenizing it (to fail early, before a model loads).
     *
     * @param labels the label set in report order, or null for the file's labels, sorted
     */
    public static Examples read(Path jsonl, List<String> labels) {
        byte[] bytes;
        try {
            long size = Files.size(jsonl);
            if (size > MAX_FILE_BYTES) {
                throw new CriaException(jsonl + ": " + size + " bytes; fine-tuning data is read whole, at most " + MAX_FILE_BYTES
                        + " bytes: use a smaller file");
            }
            bytes = Files.readAllBytes(jsonl);
        } catch (NoSuchFileException e) {
            throw new CriaException(jsonl + ": no such file");
        } catch (IOException e) {
            throw new CriaException(jsonl + ": cannot read (" + e.getMessage() + ")");
        }
        return parse(bytes, jsonl.toString(), labels);
    }

    /** Parses the bytes of a JSONL file; {@code name} names it in messages. */
    static Examples parse(byte[] bytes, String name, List<String> labels) {
        Set<String> given = labels == null ? null : checkLabels(labels, name);
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        List<Example> out = new ArrayList<>();
        Set<String> seen = new TreeSet<>();
        int start = bytes.length >= 3 && (bytes[0] & 0xFF) == 0xEF && (bytes[1] & 0xFF) == 0xBB && (bytes[2] & 0xFF) == 0xBF ? 3 : 0;
        int line = 0;
        for (int s = start; s < bytes.length; ) {
            line++;
            int e = s;
            while (e < bytes.length && bytes[e] != '\n') {
                e++;
            }
            int next = e + 1;
            if (e > s && bytes[e - 1] == '\r') {
                e--;
            }
            String text;
            try {
                text = utf8.decode(ByteBuffer.wrap(bytes, s, e - s)).toString();
            } catch (CharacterCodingException ex) {
                throw new CriaException(name + ":" + line + ": not valid UTF-8; save the file as UTF-8");
            }
            s = next;
            if (text.isBlank()) {
                continue;
            }
            Example ex = ExampleLines.parse(text, name, line, JSON, SHAPES);
            if (ex.label() != null) {
                if (given != null && !given.contains(ex.label())) {
                    throw new CriaException(name + ":" + line + ": label '" + ex.label() + "' is not one of the labels given ("
                            + String.join(", ", labels) + ")");
                }
                seen.add(ex.label());
            }
            out.add(ex);
        }
        if (out.isEmpty()) {
            throw new CriaException(name + ": no examples (the file is empty or every line is blank); " + SHAPES + " per line");
        }
        List<String> set = given != null ? List.copyOf(labels) : List.copyOf(seen);
        if (!seen.isEmpty() && set.size() < 2) {
            throw new CriaException(name + ": every example has the label '" + set.get(0) + "'; a classifier needs at least two"
                    + " labels (give the whole set, e.g. --labels " + set.get(0) + ",other)");
        }
        return new Examples(name, Collections.unmodifiableList(out), set, null, null);
    }

    private static Set<String> checkLabels(List<String> labels, String name) {
        Set<String> set = new LinkedHashSet<>();
        for (String l : labels) {
            if (l == null || l.isBlank()) {
                throw new CriaException(name + ": the label set has an empty label");
            }
            if (!set.add(l.strip())) {
                throw new CriaException(name + ": the label set names '" + l.strip() + "' twice");
            }
        }
        if (!labels.stream().allMatch(l -> l.equals(l.strip()))) {
            throw new CriaException(name + ": labels of the label set must not start or end with spaces");
        }
        return set;
    }

    /**
     * The model's chat template if its file has one ({@code tokenizer.chat_template}), else null:
     * fine-tuning does not guess a format the model was not trained on.
     */
    public static ChatTemplate chatTemplate(Metadata md, Tokenizer tok) {
        var src = md.string("tokenizer.chat_template");
        if (src.isEmpty() || src.get().isBlank()) {
            return null;
        }
        return ChatTemplate.jinja(src.get(), tok.bos() >= 0 ? tok.tokenText(tok.bos()) : "", tok.eos() >= 0 ? tok.tokenText(tok.eos()) : "");
    }

    /**
     * The same examples bound to a vocabulary (and chat template) so that they can be encoded;
     * every chat is rendered once here, so a template that cannot render one fails now, naming the line.
     *
     * @param chat the chat template, or null when the model has none (then a chat line is an error)
     */
    public Examples bind(Tokenizer tokenizer, ChatTemplate chat) {
        Examples b = new Examples(source, examples, labels, java.util.Objects.requireNonNull(tokenizer, "tokenizer"), chat);
        for (Example e : examples) {
            if (e.kind() == Example.Kind.CHAT) {
                if (chat == null) {
                    throw new CriaException(source + ":" + e.line() + ": a {\"messages\"} example needs the model's chat template, and"
                            + " the model has none (no tokenizer.chat_template); use {\"prompt\",\"completion\"} lines instead");
                }
                if (b.chatEncoding(e).trainedCount() == 0) {
                    throw new CriaException(source + ":" + e.line() + ": the chat template renders no text for the assistant turns;"
                            + " nothing to train on");
                }
            }
        }
        return b;
    }

    /** The file's name, as given. */
    public String source() {
        return source;
    }

    /** The examples, in file order. */
    public List<Example> examples() {
        return examples;
    }

    /** The label set: given, or the file's labels sorted; empty when there are no classifications. */
    public List<String> labels() {
        return labels;
    }

    /** How many examples of each kind (kinds with none left out), in the order of {@link Example.Kind}. */
    public Map<Example.Kind, Integer> kinds() {
        Map<Example.Kind, Integer> m = new EnumMap<>(Example.Kind.class);
        for (Example e : examples) {
            m.merge(e.kind(), 1, Integer::sum);
        }
        return m;
    }

    /** One line for people, e.g. {@code 400 examples: 400 classification (labels happy, sad)}. */
    public String summary() {
        StringBuilder sb = new StringBuilder().append(examples.size()).append(examples.size() == 1 ? " example: " : " examples: ");
        Iterator<Map.Entry<Example.Kind, Integer>> it = kinds().entrySet().iterator();
        while (it.hasNext()) {
            Map.Entry<Example.Kind, Integer> k = it.next();
            sb.append(k.getValue()).append(' ').append(k.getKey().label());
            if (k.getKey() == Example.Kind.CLASSIFICATION) {
                sb.append(" (labels ").append(String.join(", ", labels)).append(')');
            }
            sb.append(it.hasNext() ? ", " : "");
        }
        return sb.toString();
    }

    // ---- encoding ----

    /**
     * The tokens of an example and its loss mask, cut to at most {@code maxTokens}, the read part
     * augmented ({@link Augment}) with {@code augmentRate} (0: as written) and {@code augmentSeed}.
     */
    public Encoded encode(Example e, int maxTokens, double augmentRate, long augmentSeed) {
        checkBound();
        if (maxTokens < 2) {
            throw new IllegalArgumentException("maxTokens must be at least 2, got " + maxTokens);
        }
        Encoded full = switch (e.kind()) {
            case CHAT -> chatEncoding(e);
            case TEXT -> {
                String text = Augment.words(e.completion(), augmentRate, augmentSeed, false);
                yield pair(bos(), continuation("", text, true));
            }
            case COMPLETION, CLASSIFICATION -> {
                String read = Augment.words(e.prompt(), augmentRate, augmentSeed, e.kind() == Example.Kind.COMPLETION);
                Example changed = new Example(e.line(), e.kind(), read, e.completion(), e.label(), null);
                yield pair(encodePrompt(changed), encodeCompletion(changed, e.completion()));
            }
        };
        if (full.tokens.length <= maxTokens) {
            return full;
        }
        return e.kind() == Example.Kind.TEXT || e.kind() == Example.Kind.CHAT
                ? new Encoded(Arrays.copyOf(full.tokens, maxTokens), Arrays.copyOf(full.trained, maxTokens), true)
                : cutPrompt(full, maxTokens);
    }

    /**
     * The tokens a prompt/completion or classification example is read from: BOS (when the
     * vocabulary adds one) and the prompt ({@code text + "\nLabel:"} for a classification).
     */
    public int[] encodePrompt(Example e) {
        checkBound();
        if (e.kind() == Example.Kind.CHAT || e.kind() == Example.Kind.TEXT) {
            throw new IllegalArgumentException("a " + e.kind().label() + " example has no prompt");
        }
        return concat(bos(), tok.encode(promptText(e), false, false));
    }

    /**
     * The tokens of a completion of a prompt/completion or classification example, EOS included:
     * the trained part of the encoding. For a classification {@code completion} is a label (the
     * space before it is added here), so that every label of the set can be scored after one prompt.
     */
    public int[] encodeCompletion(Example e, String completion) {
        checkBound();
        if (e.kind() == Example.Kind.CHAT || e.kind() == Example.Kind.TEXT) {
            throw new IllegalArgumentException("a " + e.kind().label() + " example has no completion");
        }
        String c = e.kind() == Example.Kind.CLASSIFICATION ? " " + completion : completion;
        String raw = e.kind() == Example.Kind.CLASSIFICATION ? e.prompt() + CUE : e.prompt();
        return continuation(promptText(e), trailingSpaces(raw) + c, true);
    }

    /**
     * A prompt cut to at most {@code max} tokens: its end, after BOS when it starts with one (what
     * {@link #encode} keeps of a prompt that is too long).
     */
    public int[] fitPrompt(int[] prompt, int max) {
        if (prompt.length <= max) {
            return prompt;
        }
        int head = prompt.length > 0 && tok != null && tok.addsBos() && prompt[0] == tok.bos() ? 1 : 0;
        int[] out = new int[max];
        System.arraycopy(prompt, 0, out, 0, Math.min(head, max));
        System.arraycopy(prompt, prompt.length - (max - Math.min(head, max)), out, Math.min(head, max), max - Math.min(head, max));
        return out;
    }

    /** The prompt text of a prompt/completion or classification (with {@link #CUE}), trailing spaces removed. */
    private static String promptText(Example e) {
        String p = e.kind() == Example.Kind.CLASSIFICATION ? e.prompt() + CUE : e.prompt();
        return p.substring(0, p.length() - trailingSpaces(p).length());
    }

    private static String trailingSpaces(String s) {
        int i = s.length();
        while (i > 0 && s.charAt(i - 1) == ' ') {
            i--;
        }
        return s.substring(i);
    }

    // A prompt whose last completion-side token is cut to fit: the prompt loses its start (after BOS) first.
    private Encoded cutPrompt(Encoded full, int max) {
        int firstTrained = 0;
        while (firstTrained < full.tokens.length && !full.trained[firstTrained]) {
            firstTrained++;
        }
        int completion = full.tokens.length - firstTrained;
        // the prompt tokens that fit, at least one (BOS) so that the first trained token has a position before it
        int keep = Math.max(Math.min(1, firstTrained), max - completion);
        int[] prompt = fitPrompt(Arrays.copyOf(full.tokens, firstTrained), keep);
        int[] tokens = Arrays.copyOf(concat(prompt, Arrays.copyOfRange(full.tokens, firstTrained, full.tokens.length)), max);
        boolean[] trained = new boolean[max];
        for (int t = Math.max(1, prompt.length); t < max; t++) {
            trained[t] = true;
        }
        return new Encoded(tokens, trained, true);
    }

    // BOS + prompt (not trained) followed by the completion (trained).
    private static Encoded pair(int[] prompt, int[] completion) {
        int[] tokens = concat(prompt, completion);
        boolean[] trained = new boolean[tokens.length];
        for (int t = Math.max(1, prompt.length); t < tokens.length; t++) {
            trained[t] = true;
        }
        return new Encoded(tokens, trained, false);
    }

    /**
     * The tokens of {@code text} as it continues {@code before} (no BOS), then EOS when {@code eos}:
     * the tokens of {@code before + text} after those of {@code before} when the latter are a prefix
     * of the former; else, a token straddling the two, {@code text} alone (a SentencePiece
     * vocabulary's added space taking the place of its first space).
     */
    private int[] continuation(String before, String text, boolean eos) {
        int[] ids;
        int[] head = tok.encode(before, false, false);
        int[] joint = tok.encode(before + text, false, false);
        if (!before.isEmpty() && startsWith(joint, head)) {
            ids = Arrays.copyOfRange(joint, head.length, joint.length);
        } else if (!before.isEmpty() && spacePrefix && text.startsWith(" ")) {
            ids = tok.encode(text.substring(1), false, false);
        } else {
            ids = before.isEmpty() ? joint : tok.encode(text, false, false);
        }
        return eos && tok.eos() >= 0 ? concat(ids, new int[] {tok.eos()}) : ids;
    }

    private int[] bos() {
        return tok.addsBos() ? new int[] {tok.bos()} : new int[0];
    }

    // ---- chats ----

    private Encoded chatEncoding(Example e) {
        List<ChatTemplate.Message> m = e.messages();
        String full = render(e, m, false);
        int[] tokens = chatTokens(full);
        boolean[] trained = new boolean[tokens.length];
        for (int i = 0; i < m.size(); i++) {
            if (!m.get(i).role().equals("assistant")) {
                continue;
            }
            String before = render(e, m.subList(0, i), true);
            String upTo = render(e, m.subList(0, i + 1), false);
            if (!upTo.startsWith(before) || !full.startsWith(before)) {
                throw new CriaException(source + ":" + e.line() + ": the chat template does not render this conversation prefix by"
                        + " prefix (message " + (i + 1) + " changes what comes before it), so its assistant turns cannot be found");
            }
            // the turn ends where the conversation goes on differently (some templates open a new
            // assistant turn whatever add_generation_prompt says), or after its end-of-turn token
            int end = before.length() + sharedPrefix(upTo.substring(before.length()), full.substring(before.length()));
            int from = sharedPrefix(chatTokens(before), tokens);
            int to = sharedPrefix(chatTokens(full.substring(0, end)), tokens);
            for (int t = Math.max(1, from); t < to; t++) {
                trained[t] = true;
                if (tok.isEndOfGeneration(tokens[t])) {
                    break;
                }
            }
        }
        return new Encoded(tokens, trained, false);
    }

    private String render(Example e, List<ChatTemplate.Message> messages, boolean generationPrompt) {
        try {
            return chat.render(messages, generationPrompt);
        } catch (CriaException ex) {
            throw new CriaException(source + ":" + e.line() + ": " + ex.getMessage(), ex);
        }
    }

    // A rendered chat as tokens: BOS once (the template may write it), special tokens parsed.
    private int[] chatTokens(String rendered) {
        int[] ids = concat(bos(), tok.encode(rendered, false, true));
        if (ids.length >= 2 && tok.addsBos() && ids[0] == tok.bos() && ids[1] == tok.bos()) {
            ids = Arrays.copyOfRange(ids, 1, ids.length);
        }
        return ids;
    }

    // ---- helpers ----

    private void checkBound() {
        if (tok == null) {
            throw new IllegalStateException("examples read without a vocabulary: bind them to a tokenizer first");
        }
    }

    private static boolean startsWith(int[] a, int[] prefix) {
        return a.length >= prefix.length && Arrays.equals(a, 0, prefix.length, prefix, 0, prefix.length);
    }

    private static int sharedPrefix(String a, String b) {
        int n = Math.min(a.length(), b.length());
        int i = 0;
        while (i < n && a.charAt(i) == b.charAt(i)) {
            i++;
        }
        return i;
    }

    private static int sharedPrefix(int[] a, int[] b) {
        int n = Math.min(a.length, b.length);
        int i = Arrays.mismatch(a, 0, n, b, 0, n);
        return i < 0 ? n : i;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
