// `cria perplexity`: llama.cpp's perplexity over a text file (chunks from BOS, the second half of each scored).
package cria.cli;

import cria.CriaException;
import cria.engine.Model;
import cria.engine.Session;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The method of llama.cpp's {@code llama-perplexity}: the text is tokenized once (with BOS),
 * cut into chunks of N tokens whose first token is replaced by BOS; each chunk is evaluated from
 * an empty cache and the negative log-likelihoods of the tokens of its second half are averaged.
 * The last line is {@code Final estimate: PPL = X +/- Y} with llama.cpp's error estimate.
 */
@Command(name = "perplexity", mixinStandardHelpOptions = true,
        description = {"Perplexity of a model on a text, computed as llama.cpp's llama-perplexity does.",
            "Example: cria perplexity -m model.gguf -f wiki.test.raw -c 512 -b 512",
            "         cria perplexity -m model.gguf --lora adapter.gguf -f wiki.test.raw -c 512   (with a LoRA adapter)"})
final class PerplexityCommand extends Verb {
    @Mixin
    ModelArgs modelArgs;

    @Option(names = {"-f", "--file"}, required = true, paramLabel = "TEXT", description = "the text file")
    Path file;

    @Option(names = "--chunks", defaultValue = "-1", paramLabel = "N", description = "evaluate at most N chunks (default: all)")
    int maxChunks;

    @Override
    public Integer call() {
        String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new CriaException(file + ": no such file");
        } catch (IOException e) {
            throw new CriaException(file + ": cannot read: " + e.getMessage());
        }
        int ctx = modelArgs.ctx > 0 ? modelArgs.ctx : 512;
        if (ctx < 3) {
            // each window scores its second half, each position predicting the next token: fewer
            // than 3 positions leave nothing to score (and a perplexity of NaN)
            throw new CriaException("-c " + ctx + " is too short: perplexity needs windows of at least 3 tokens (e.g. -c 512)");
        }
        try (Model model = Model.load(modelArgs.model, modelArgs.modelOptions(), err()::println)) {
            int[] tokens = model.tokenizer().encode(text, true, false);
            int chunks = tokens.length / ctx;
            if (maxChunks >= 0) {
                chunks = Math.min(chunks, maxChunks);
            }
            if (tokens.length < 2L * ctx) {
                throw new CriaException(file + ": " + tokens.length + " tokens; at least 2 x " + ctx + " (-c) are needed");
            }
            int batch = Math.min(modelArgs.batchSize, ctx);
            int vocab = model.config().vocab();
            int first = ctx / 2;
            int bos = model.tokenizer().bos();
            double nll = 0;
            double nll2 = 0;
            long count = 0;
            Progress progress = new Progress(err(), "perplexity", (long) chunks * ctx, "tokens", Progress.stderrIsTerminal());
            try (Session s = model.newSession(modelArgs.sessionOptions().withContextLength(ctx).withBatchSize(batch).withAllLogits(true))) {
                StringBuilder running = new StringBuilder();
                for (int c = 0; c < chunks; c++) {
                    int[] chunk = java.util.Arrays.copyOfRange(tokens, c * ctx, (c + 1) * ctx);
                    if (bos >= 0 && model.tokenizer().addsBos()) {
                        chunk[0] = bos;
                    }
                    s.reset();
                    double[] acc = new double[3];
                    s.evalAll(chunk, (i, logits) -> {
                        if (i >= first && i < ctx - 1) {
                            double v = -logSoftmax(logits, vocab, chunk[i + 1]);
                            acc[0] += v;
                            acc[1] += v * v;
                            acc[2]++;
                        }
                    });
                    nll += acc[0];
                    nll2 += acc[1];
                    count += (long) acc[2];
                    progress.add(ctx);
                    running.append(String.format(Locale.ROOT, "[%d]%.4f,", c + 1, Math.exp(nll / count)));
                }
                progress.finish();
                out().println(running);
            }
            double mean = nll / count;
            double ppl = Math.exp(mean);
            double var = nll2 / count - mean * mean;
            double err = var > 0 ? Math.sqrt(var / (count - 1)) * ppl : 0;
            out().println(String.format(Locale.ROOT, "Final estimate: PPL = %.4f +/- %.5f", ppl, err));
            out().flush();
        }
        return 0;
    }

    /** log(softmax(logits)[token]) in double, max-shifted. */
    static double logSoftmax(float[] logits, int n, int token) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, logits[i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(logits[i] - max);
        }
        return logits[token] - max - Math.log(sum);
    }
}
