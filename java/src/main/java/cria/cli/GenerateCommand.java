// `cria generate`: text in, text out, streamed on stdout; timings on stderr; --chat applies the model's template.
package cria.cli;

import cria.CriaException;
import cria.engine.GenerateOptions;
import cria.engine.Generation;
import cria.engine.Model;
import cria.engine.Session;
import cria.tokenizer.ChatTemplate;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Generates text from a prompt, or chats with the model's own template. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generate text. Only the generated text goes to stdout, streamed; timings go to stderr.",
            "Examples:",
            "  cria generate -m model.gguf -p \"Once upon a time\" -n 64 --temp 0",
            "  cria generate -m model.gguf --chat --system \"You are terse.\" -p \"Name three rivers.\"",
            "  cria generate -m model.gguf --chat        (interactive when stdin is a terminal)",
            "  cria generate -m model.gguf --lora style.gguf:0.8 -p \"Once upon a time\"   (a LoRA adapter at scale 0.8)"})
final class GenerateCommand extends Verb {
    @Mixin
    ModelArgs modelArgs;

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "the prompt (default: empty; with --chat and no -p, stdin is the user's turn)")
    String prompt;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "read the prompt from a file")
    Path promptFile;

    @Option(names = {"-n", "--n-predict"}, defaultValue = "128", paramLabel = "N", description = "tokens to generate at most (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Mixin
    SamplingArgs sampling;

    @Option(names = "--chat", description = "apply the model's chat template (interactive when stdin is a terminal, one turn otherwise)")
    boolean chat;

    @Option(names = "--system", paramLabel = "TEXT", description = "system message for --chat")
    String system;

    @Option(names = "--ignore-eos", description = "keep generating past end-of-generation tokens")
    boolean ignoreEos;

    @Override
    public Integer call() throws IOException {
        if (maxTokens < 0) {
            throw new CriaException("-n must not be negative");
        }
        if (prompt != null && promptFile != null) {
            throw new CriaException("give the prompt with -p or -f, not both");
        }
        String text = promptFile != null ? readFile(promptFile) : prompt;
        GenerateOptions options = new GenerateOptions(maxTokens, sampling.params(), sampling.stop, ignoreEos);
        try (Model model = Model.load(modelArgs.model, modelArgs.modelOptions(), err()::println);
             Session session = model.newSession(modelArgs.sessionOptions());
             Interrupts interrupts = new Interrupts()) {
            if (!chat) {
                return report(session.generate(text == null ? "" : text, options, printer(interrupts)), interrupts);
            }
            ChatTemplate template = model.chatTemplate();
            List<ChatTemplate.Message> messages = new ArrayList<>();
            if (system != null) {
                messages.add(new ChatTemplate.Message("system", system));
            }
            boolean interactive = System.console() != null && System.console().isTerminal() && text == null;
            if (!interactive) {
                String user = text != null ? text : new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
                messages.add(new ChatTemplate.Message("user", user));
                return report(turn(model, session, template, messages, options, interrupts), interrupts);
            }
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            err().println("cria: chatting with " + modelArgs.model.getFileName() + " (" + template.name() + " template); an empty line or Ctrl-D ends");
            while (true) {
                err().print("> ");
                err().flush();
                String line = in.readLine();
                if (line == null || line.isBlank()) {
                    return 0;
                }
                messages.add(new ChatTemplate.Message("user", line));
                Generation g = turn(model, session, template, messages, options, interrupts);
                report(g, interrupts);
                out().println();
                if (out().checkError()) {
                    return 0; // stdout is gone: Main says so in one line
                }
                messages.add(new ChatTemplate.Message("assistant", g.text()));
                interrupts.clear();
            }
        }
    }

    private Generation turn(Model model, Session session, ChatTemplate template, List<ChatTemplate.Message> messages,
                            GenerateOptions options, Interrupts interrupts) {
        return session.generateAfter(model.chatTokens(messages), options, printer(interrupts));
    }

    private cria.engine.TokenListener printer(Interrupts interrupts) {
        PrintWriter out = out();
        return (id, piece) -> {
            out.print(piece);
            // checkError flushes, and is true once a write failed (a full disk, a closed pipe):
            // stop generating then; Main reports the failure when the verb returns
            return !out.checkError() && !interrupts.requested();
        };
    }

    private int report(Generation g, Interrupts interrupts) {
        out().flush();
        PrintWriter err = err();
        err.println();
        // The seed in use ends the summary: said before the text, it would precede an error that
        // stops the run (two lines for one failure), and it would race the streamed text.
        err.println(String.format(Locale.ROOT, "cria: prompt %d tokens in %.2f s (%.1f t/s); generated %d tokens in %.2f s (%.1f t/s); finish: %s%s",
                g.promptTokens(), g.promptNanos() / 1e9, g.promptTokensPerSecond(), g.tokens().length,
                g.generateNanos() / 1e9, g.tokensPerSecond(), g.finishReason().label(),
                sampling.temperature > 0 ? "; seed " + sampling.seed() : ""));
        if (interrupts.requested()) {
            err.println("cria: interrupted after " + g.tokens().length + " tokens");
            return 130;
        }
        return 0;
    }

    private static String readFile(Path p) {
        try {
            return Files.readString(p);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new CriaException(p + ": no such file");
        } catch (IOException e) {
            throw new CriaException(p + ": cannot read: " + e.getMessage());
        }
    }
}
