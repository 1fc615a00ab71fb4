// One fine-tuning example of a JSONL file: plain text, a prompt with its completion, a chat, or a labelled text.
package cria.train;

import cria.tokenizer.ChatTemplate;
import java.util.List;
import java.util.Objects;

/**
 * One line of a fine-tuning file, as read (not yet tokenized); see {@link Examples} for the file
 * format and how each kind is turned into tokens.
 *
 * @param line       the line number in its file (1-based), for messages
 * @param kind       what the line was
 * @param prompt     the text not trained on: the prompt of a {@link Kind#COMPLETION}, the text of a
 *                   {@link Kind#CLASSIFICATION}; empty for {@link Kind#TEXT} and {@link Kind#CHAT}
 * @param completion the text trained on: the whole text of {@link Kind#TEXT}, the completion of
 *                   {@link Kind#COMPLETION}, the label of {@link Kind#CLASSIFICATION}; empty for {@link Kind#CHAT}
 * @param label      the label of a {@link Kind#CLASSIFICATION}, else null
 * @param messages   the conversation of a {@link Kind#CHAT}, else null
 */
public record Example(int line, Kind kind, String prompt, String completion, String label, List<ChatTemplate.Message> messages) {

    /** The four shapes a line may have. */
    public enum Kind {
        /** {@code {"text"}}: every token is trained. */
        TEXT("text"),
        /** {@code {"prompt","completion"}}: the completion is trained. */
        COMPLETION("prompt/completion"),
        /** {@code {"messages":[...]}}: the assistant turns are trained. */
        CHAT("chat"),
        /** {@code {"text","label"}}: the label is trained, after the text and a fixed cue. */
        CLASSIFICATION("classification");

        private final String label;

        Kind(String label) {
            this.label = label;
        }

        /** A short name for messages and reports ({@code text}, {@code prompt/completion}, {@code chat}, {@code classification}). */
        public String label() {
            return label;
        }
    }

    public Example {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(completion, "completion");
        messages = messages == null ? null : List.copyOf(messages);
        if ((kind == Kind.CHAT) != (messages != null)) {
            throw new IllegalArgumentException("messages go with chat examples only");
        }
        if ((kind == Kind.CLASSIFICATION) != (label != null)) {
            throw new IllegalArgumentException("labels go with classification examples only");
        }
    }

    /** A {@code {"text"}} example. */
    public static Example text(int line, String text) {
        return new Example(line, Kind.TEXT, "", text, null, null);
    }

    /** A {@code {"prompt","completion"}} example. */
    public static Example completion(int line, String prompt, String completion) {
        return new Example(line, Kind.COMPLETION, prompt, completion, null, null);
    }

    /** A {@code {"messages"}} example. */
    public static Example chat(int line, List<ChatTemplate.Message> messages) {
        return new Example(line, Kind.CHAT, "", "", null, messages);
    }

    /** A {@code {"text","label"}} example; its prompt is the text, its completion the label. */
    public static Example classification(int line, String text, String label) {
        return new Example(line, Kind.CLASSIFICATION, text, label, label, null);
    }
}
