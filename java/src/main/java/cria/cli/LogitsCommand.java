// `cria logits`: the logits at every input position, float32 little-endian [positions][n_vocab].
package cria.cli;

import cria.CriaException;
import cria.engine.Model;
import cria.engine.Session;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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
    public Integer call() {
        OutputFiles.check(output, "-o", OutputFiles.Kind.STREAM); // before the model loads: a bad path costs nothing
        try (Model model = Model.load(modelArgs.model, modelArgs.modelOptions(), err()::println)) {
            int[] ids = input.ids != null ? input.ids : Prompts.encode(model, input.prompt);
            if (ids.length == 0) {
                throw new CriaException("no tokens to evaluate");
            }
            int vocab = model.config().vocab();
            try (Session s = model.newSession(modelArgs.sessionOptions().withAllLogits(true)
                    .withContextLength(Math.max(modelArgs.ctx, ids.length)))) {
                OutputFiles.write(output, "-o", OutputFiles.Kind.STREAM, out -> {
                    ByteBuffer buf = ByteBuffer.allocate(4 * vocab).order(ByteOrder.LITTLE_ENDIAN);
                    IOException[] failure = {null};
                    s.evalAll(ids, (i, logits) -> {
                        if (failure[0] != null) {
                            return; // the first failure is the one to report; the rest would say the same
                        }
                        buf.clear();
                        buf.asFloatBuffer().put(logits, 0, vocab);
                        try {
                            out.write(buf.array(), 0, 4 * vocab);
                        } catch (IOException e) {
                            failure[0] = e;
                        }
                    });
                    if (failure[0] != null) {
                        throw failure[0];
                    }
                });
            }
            err().println("cria: wrote " + ids.length + " x " + vocab + " logits to " + output
                    + (ids.length <= 32 ? " for ids " + Arrays.toString(ids) : ""));
        }
        return 0;
    }
}
