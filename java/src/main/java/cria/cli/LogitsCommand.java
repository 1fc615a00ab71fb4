// `cria logits`: the logits at every input position, float32 little-endian [positions][n_vocab].
package cria.cli;

import cria.CriaException;
import cria.engine.Model;
import cria.engine.Session;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Writes the model's logits for every input token, as llama.cpp's reference files store them. */
@Command(name = "logits", mixinStandardHelpOptions = true,
        description = {"Write the logits at every input position as float32 little-endian [positions][n_vocab].",
            "Example: cria logits -m model.gguf --ids 1,403,407 -o out.f32",
            "         cria logits -m model.gguf -p \"Once upon a time\" -o out.f32"})
final class LogitsCommand extends Verb {
    @Mixin
    ModelArgs modelArgs;

    static final class Input {
        @Option(names = "--ids", split = ",", paramLabel = "ID,ID,...", description = "token ids, comma-separated")
        int[] ids;

        @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "text, tokenized with the model's vocabulary (BOS added as the model says)")
        String prompt;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.f32", description = "output file")
    Path output;

    @Override
    public Integer call() throws IOException {
        try (Model model = Model.load(modelArgs.model, modelArgs.modelOptions(), err()::println)) {
            int[] ids = input.ids != null ? input.ids : Prompts.encode(model, input.prompt);
            if (ids.length == 0) {
                throw new CriaException("no tokens to evaluate");
            }
            int vocab = model.config().vocab();
            try (Session s = model.newSession(modelArgs.sessionOptions().withAllLogits(true)
                    .withContextLength(Math.max(modelArgs.ctx, ids.length)));
                 OutputStream out = new BufferedOutputStream(Files.newOutputStream(output), 1 << 20)) {
                ByteBuffer buf = ByteBuffer.allocate(4 * vocab).order(ByteOrder.LITTLE_ENDIAN);
                IOException[] failure = {null};
                s.evalAll(ids, (i, logits) -> {
                    buf.clear();
                    buf.asFloatBuffer().put(logits, 0, vocab);
                    try {
                        out.write(buf.array(), 0, 4 * vocab);
                    } catch (IOException e) {
                        failure[0] = e;
                    }
                });
                if (failure[0] != null) {
                    throw new CriaException(output + ": cannot write: " + failure[0].getMessage());
                }
            }
            err().println("cria: wrote " + ids.length + " x " + vocab + " logits to " + output
                    + (ids.length <= 32 ? " for ids " + Arrays.toString(ids) : ""));
        }
        return 0;
    }
}
