// `cria template`: renders a conversation with a model's chat template (tokenizer.chat_template, else Llama 2/3).
package cria.cli;

import com.fasterxml.jackson.databind.JsonNode;
import cria.CriaException;
import cria.gguf.GgufFile;
import cria.gguf.Metadata;
import cria.tokenizer.ChatTemplate;
import cria.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Prints the prompt a model's chat template makes of a list of messages, exactly (no newline added). */
@Command(name = "template", mixinStandardHelpOptions = true,
        description = {"Render a conversation with the model's chat template and print the prompt.",
            "MESSAGES.json is a JSON array of {\"role\": ..., \"content\": ...} objects.",
            "Example: cria template -m model.gguf -f messages.json"})
final class TemplateCommand extends Verb {

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL", description = "GGUF file with the vocabulary and template")
    Path model;

    @Option(names = {"-f", "--file"}, required = true, paramLabel = "MESSAGES.json", description = "the conversation")
    Path file;

    @Option(names = "--no-generation-prompt", description = "do not end with the opening of an assistant turn")
    boolean noGenerationPrompt;

    @Option(names = "--format", paramLabel = "NAME", description = "use a built-in format instead of the file's template: llama2 or llama3")
    String format;

    @Override
    public Integer call() {
        List<ChatTemplate.Message> messages = readMessages(file);
        ChatTemplate tmpl;
        try (GgufFile f = GgufFile.open(model)) {
            Metadata md = f.metadata();
            Tokenizer tok = Tokenizer.fromMetadata(md);
            tmpl = ChatTemplate.fromMetadata(md, tok);
            if (format != null) {
                tmpl = ChatTemplate.named(format, tok.bos() >= 0 ? tok.tokenText(tok.bos()) : "",
                        tok.eos() >= 0 ? tok.tokenText(tok.eos()) : "");
            }
        }
        out().print(tmpl.render(messages, !noGenerationPrompt));
        out().flush();
        return 0;
    }

    static List<ChatTemplate.Message> readMessages(Path file) {
        JsonNode root;
        try {
            root = Json.STRICT.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new CriaException(file + ": no such file");
        } catch (IOException e) {
            throw new CriaException(file + ": not a JSON file (" + Main.oneLine(e.getMessage()) + ")");
        }
        if (root != null && root.isObject() && root.has("messages")) {
            root = root.get("messages");
        }
        if (root == null || !root.isArray()) {
            throw new CriaException(file + ": expected a JSON array of {\"role\", \"content\"} objects");
        }
        List<ChatTemplate.Message> out = new ArrayList<>();
        for (int i = 0; i < root.size(); i++) {
            JsonNode m = root.get(i);
            if (!m.isObject() || !m.path("role").isTextual() || !m.path("content").isTextual()) {
                throw new CriaException(file + ": message " + (i + 1) + " needs a string \"role\" and a string \"content\"");
            }
            out.add(new ChatTemplate.Message(m.get("role").textValue(), m.get("content").textValue()));
        }
        return out;
    }
}
