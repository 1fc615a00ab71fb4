// `cria imatrix`: the importance matrix llama-imatrix computes (mean squared input per column of every product), in its GGUF format.
package cria.cli;

import cria.CriaException;
import cria.gguf.GgufFile;
import cria.optimize.Calibration;
import cria.optimize.Importance;
import cria.quantize.ImportanceMatrix;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Runs calibration text through a model and writes, for every weight product of the blocks, the
 * sum over the text's tokens of each input column's squared activation and the number of tokens,
 * in llama.cpp's imatrix GGUF format. {@code llama-quantize --imatrix} and
 * {@code cria quantize --imatrix} read it to weight the rounding error of each column.
 */
@Command(name = "imatrix", mixinStandardHelpOptions = true,
        description = {"Compute an importance matrix (as llama-imatrix does) for importance-weighted quantization.",
            "The text is tokenized, cut into chunks of --ctx tokens starting with BOS, and run through the model; for every "
                + "product of the blocks (and output.weight with --process-output) each input column's squared activation is "
                + "summed over the tokens. The file is llama.cpp's imatrix GGUF format, which llama-quantize also reads.",
            "Example: cria imatrix -m model-f32.gguf -f calib.txt -o model.imatrix.gguf",
            "         cria quantize --imatrix model.imatrix.gguf model-f32.gguf model-Q4_K_M.gguf Q4_K_M"})
final class ImatrixCommand extends Verb {

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL", description = "the GGUF model (best its F32/F16 form)")
    Path model;

    @Option(names = {"-f", "--file"}, required = true, paramLabel = "TEXT", description = "calibration text (UTF-8)")
    Path text;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "the importance matrix to write (.gguf)")
    Path output;

    @Option(names = {"-c", "--ctx"}, defaultValue = "512", paramLabel = "N", description = "tokens per chunk (default: ${DEFAULT-VALUE}, as llama-imatrix)")
    int ctx;

    @Option(names = "--chunks", defaultValue = "0", paramLabel = "N", description = "use at most N chunks (default: all the text gives)")
    int chunks;

    @Option(names = "--process-output", description = "also collect output.weight's input (llama-imatrix leaves it out by default)")
    boolean processOutput;

    @Option(names = "--backend", defaultValue = "cpu", paramLabel = "B", description = "cpu (default) or ref (the scalar oracle, slow)")
    String backend;

    @Option(names = {"-t", "--threads"}, defaultValue = "0", paramLabel = "N", description = "CPU threads (default: one per core)")
    int threads;

    @Override
    public Integer call() {
        OutputFiles.check(output, "-o", OutputFiles.Kind.FILE);
        long t0 = System.nanoTime();
        Calibration.Options options = new Calibration.Options(backend, threads, ctx, chunks, processOutput);
        try (GgufFile file = GgufFile.open(model); Calibration cal = Calibration.open(file, options, err()::println)) {
            int[][] work = cal.chunks(text);
            Importance importance = new Importance(processOutput);
            Progress progress = new Progress(err(), "imatrix", (long) work.length * ctx, "tokens", Progress.stderrIsTerminal());
            cal.run(work, importance, progress::add);
            progress.finish();
            ImportanceMatrix matrix = importance.matrix(List.of(text.toString()), work.length, ctx);
            if (matrix.entries().isEmpty()) {
                throw new CriaException(model + ": no product saw 16 or more rows; use a larger --ctx");
            }
            matrix.write(output); // through GgufWriter: a temporary file renamed over the target once complete
            err().println(String.format(Locale.ROOT, "cria imatrix: %d entries from %d chunks of %d tokens (%s) in %.1f s -> %s",
                    matrix.entries().size(), work.length, ctx, text.getFileName(), (System.nanoTime() - t0) / 1e9, output));
        }
        return 0;
    }
}
