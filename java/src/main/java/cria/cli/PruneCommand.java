// `cria prune -m MODEL --method magnitude|wanda|sparsegpt --sparsity S [--pattern N:M] --calib TEXT -o OUT`: a pruned copy of a model.
package cria.cli;

import cria.CriaException;
import cria.optimize.PrunePattern;
import cria.optimize.Pruner;
import cria.optimize.SparseGpt;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Prunes the seven products of every block (attention q, k, v, output; feed-forward gate, up,
 * down) layer by layer, each layer's calibration inputs coming through the layers already
 * pruned, and writes a normal GGUF with zeros in place (those matrices in F32) that any engine
 * loads and {@code cria quantize} takes.
 */
@Command(name = "prune", mixinStandardHelpOptions = true,
        description = {"Prune a model: zero a share of every block's weights, chosen per output row, and write a normal GGUF.",
            "Methods: magnitude (smallest |W|; no calibration), wanda (smallest |W|·‖X‖, X the layer's inputs on the "
                + "calibration text), sparsegpt (chooses by the OBS error and updates the weights kept to make up for the "
                + "ones removed, from the damped Hessian X·Xᵀ).",
            "Layers are pruned in order; each one is calibrated through the layers already pruned. The pruned matrices are "
                + "written in F32 (zeros in place); embeddings, norms and the output matrix are kept as they were.",
            "Example: cria prune -m model.gguf --method wanda --calib text.txt -o wanda.gguf",
            "         cria prune -m model.gguf --method sparsegpt --pattern 2:4 \\",
            "             --calib text.txt -o 2of4.gguf",
            "         cria perplexity -m wanda.gguf -f heldout.txt -c 128"})
final class PruneCommand extends Verb {

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL", description = "the GGUF model to prune (any type Cria reads)")
    Path model;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.gguf", description = "the file to write (replaced only once complete)")
    Path output;

    @Option(names = "--method", defaultValue = "wanda", paramLabel = "M",
            description = "magnitude, wanda or sparsegpt (default: ${DEFAULT-VALUE})")
    String method;

    @Option(names = "--sparsity", paramLabel = "S",
            description = "the share of every output row's weights set to zero, above 0 and below 1 (default 0.5; implied by --pattern)")
    Double sparsity;

    @Option(names = "--pattern", paramLabel = "N:M",
            description = "semi-structured: keep the N largest of every M consecutive inputs of each row, e.g. 2:4")
    String pattern;

    @Option(names = "--calib", paramLabel = "FILE", description = "calibration text (UTF-8; required for wanda and sparsegpt)")
    Path calib;

    @Option(names = "--ctx", defaultValue = "128", paramLabel = "N", description = "tokens per calibration chunk (default: ${DEFAULT-VALUE})")
    int ctx;

    @Option(names = "--chunks", defaultValue = "128", paramLabel = "N",
            description = "calibration chunks to use, 0 = all the text gives (default: ${DEFAULT-VALUE})")
    int chunks;

    @Option(names = "--damp", defaultValue = "0.01", paramLabel = "F",
            description = "sparsegpt: dampening added to the Hessian's diagonal, as a fraction of its mean (default: ${DEFAULT-VALUE})")
    double damp;

    @Option(names = "--block", defaultValue = "128", paramLabel = "N",
            description = "sparsegpt: columns per block of lazy updates and mask choice (default: ${DEFAULT-VALUE})")
    int block;

    @Option(names = "--mask-group", defaultValue = "row", paramLabel = "G",
            description = "sparsegpt, unstructured: row (each row loses its share of every block, as wanda's rows do) or block "
                    + "(one threshold over the whole block of columns, as the authors' code; rows end unequal) (default: ${DEFAULT-VALUE})")
    String maskGroup;

    @Option(names = "--backend", defaultValue = "cpu", paramLabel = "B", description = "cpu or ref (scalar reference): where calibration runs (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = {"-t", "--threads"}, defaultValue = "0", paramLabel = "N", description = "CPU threads (default: one per core)")
    int threads;

    @Override
    public Integer call() {
        Pruner.Method m = Pruner.Method.parse(method);
        PrunePattern p = pattern(pattern, sparsity);
        if (!m.calibrated() && calib != null) {
            err().println("cria: warning: magnitude pruning uses no calibration text; --calib is ignored");
        }
        if (threads < 0) {
            throw new CriaException("--threads must be 0 (one per core) or positive, got " + threads);
        }
        if (ctx < 2 || ctx > 1 << 16) {
            throw new CriaException("--ctx " + ctx + ": calibration chunks take 2 to 65536 tokens (e.g. --ctx 128)");
        }
        if (!"cpu".equals(backend) && !"ref".equals(backend)) {
            throw new CriaException("--backend must be cpu or ref (calibration runs on the host), got '" + backend + "'");
        }
        SparseGpt.MaskGroup group = switch (maskGroup.strip().toLowerCase(Locale.ROOT)) {
            case "row" -> SparseGpt.MaskGroup.ROW;
            case "block" -> SparseGpt.MaskGroup.BLOCK;
            default -> throw new CriaException("--mask-group must be row or block, got '" + maskGroup + "'");
        };
        Pruner.Options o = new Pruner.Options(m, p, m.calibrated() ? calib : null, backend, threads, ctx, chunks, damp, block, group);
        OutputFiles.check(output, "-o", OutputFiles.Kind.FILE); // before any work: the result is renamed over it
        long t0 = System.nanoTime();
        ProgressListener listener = new ProgressListener();
        Pruner.Result r;
        try {
            r = Pruner.prune(model, output, o, listener);
        } finally {
            listener.finish();
        }
        for (Map.Entry<String, long[]> e : r.byKind().entrySet()) {
            long[] zv = e.getValue();
            err().printf(Locale.ROOT, "  %-12s %6.2f%% zeros (%d of %d)%n", e.getKey(), zv[1] == 0 ? 0 : 100.0 * zv[0] / zv[1], zv[0], zv[1]);
        }
        String calibration = m.calibrated() ? String.format(Locale.ROOT, ", calibrated on %d chunks of %d tokens", r.chunks(), r.ctx()) : "";
        out().printf(Locale.ROOT, "%s: %s %s, %d matrices, %.2f%% of their weights zero%s, %.1f s%n", output, m.id(),
                p.structured() ? p + " pattern" : p + " unstructured", r.matrices().size(), 100 * r.sparsity(), calibration,
                (System.nanoTime() - t0) / 1e9);
        return 0;
    }

    /** The pattern from --pattern and --sparsity (which --pattern implies; both only when they agree). */
    static PrunePattern pattern(String pattern, Double sparsity) {
        if (sparsity != null && !(sparsity > 0 && sparsity < 1)) {
            throw new CriaException("--sparsity must be above 0 and below 1 (e.g. 0.5 for half the weights), got " + sparsity);
        }
        if (pattern == null) {
            return PrunePattern.unstructured(sparsity == null ? 0.5 : sparsity);
        }
        PrunePattern p = PrunePattern.parse(pattern);
        if (sparsity != null && Math.abs(sparsity - p.sparsity()) > 1e-9) {
            throw new CriaException("--pattern " + p + " sets the sparsity to " + p.sparsity() + ", but --sparsity says " + sparsity
                    + "; give one of them");
        }
        return p;
    }

    /** Progress on stderr: calibration tokens over all layers (layers for magnitude). */
    private final class ProgressListener implements Pruner.Listener {
        private Progress progress;
        private boolean tokens;

        @Override
        public void start(int layers, long tokensPerLayer) {
            tokens = tokensPerLayer > 0;
            progress = new Progress(err(), "prune", tokens ? layers * tokensPerLayer : layers, tokens ? "tokens" : "layers",
                    Progress.stderrIsTerminal());
        }

        @Override
        public void layer(int layer, int layers) {
            progress.status("layer " + (layer + 1) + "/" + layers);
            if (!tokens && layer > 0) {
                progress.add(1);
            }
        }

        @Override
        public void tokens(long n) {
            progress.add(n);
        }

        @Override
        public void log(String line) {
            err().println("cria: " + line);
        }

        void finish() {
            if (progress != null) {
                if (!tokens) {
                    progress.add(1);
                }
                progress.finish();
            }
        }
    }
}
