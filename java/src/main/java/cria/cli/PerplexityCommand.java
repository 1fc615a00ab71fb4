// `cria perplexity`: llama.cpp's perplexity over a text file (chunks from BOS, the second half of each scored).
package cria.cli;

import cria.engine.Model;
import cria.engine.Session;
import cria.optimize.CompareStats;
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
        String text = TextChunks.read(file);
        int ctx = modelArgs.ctx > 0 ? modelArgs.ctx : 512;
        TextChunks.checkCtx(ctx);
        try (Model model = Model.load(modelArgs.model, modelArgs.modelOptions(), err()::println)) {
            TextChunks chunks = TextChunks.of(model.tokenizer(), text, file, ctx, maxChunks);
            int batch = Math.min(modelArgs.batchSize, ctx);
            int vocab = model.config().vocab();
            double nll = 0;
            double nll2 = 0;
            long count = 0;
            Progress progress = new Progress(err(), "perplexity", (long) chunks.count() * ctx, "tokens", Progress.stderrIsTerminal());
            try (Session s = model.newSession(modelArgs.sessionOptions().withContextLength(ctx).withBatchSize(batch).withAllLogits(true))) {
                StringBuilder running = new StringBuilder();
                for (int c = 0; c < chunks.count(); c++) {
                    double[] acc = new double[3];
                    chunks.eval(s, c, (k, logits, target) -> {
                        double v = -logSoftmax(logits, vocab, target);
                        acc[0] += v;
                        acc[1] += v * v;
                        acc[2]++;
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
        return CompareStats.logProb(logits, n, token);
    }
}
