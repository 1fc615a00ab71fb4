// What `cria train` and `cria finetune` share: the training recipe's options, the progress line, the metrics log and the loss chart.
package cria.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.train.Checkpoint;
import cria.train.Schedule;
import cria.train.TrainOptions;
import cria.train.Trainer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import picocli.CommandLine.Option;

/**
 * The recipe (README, "Training"): schedule, AdamW, clipping, accumulation, dropout, freezing,
 * evaluation, early stopping, checkpoints and their logs, the same options with the same meaning
 * for training from scratch and for fine-tuning. Each verb adds its data, model and window
 * options ({@code --ctx}, {@code --batch}, {@code --steps}: their defaults differ).
 */
abstract class TrainingVerb extends Verb {
    @Option(order = 100, names = "--grad-accum", defaultValue = "1", paramLabel = "K", description = "micro-batches per optimizer step (default: ${DEFAULT-VALUE})")
    int accum;

    @Option(order = 100, names = "--lr", defaultValue = "1e-3", paramLabel = "LR", description = "peak learning rate (default: ${DEFAULT-VALUE})")
    double lr;

    @Option(order = 100, names = "--min-lr", paramLabel = "LR", description = "lowest learning rate of cosine, linear and cyclical (default: --lr / 10)")
    Double minLr;

    @Option(order = 100, names = "--warmup", defaultValue = "0", paramLabel = "N", description = "steps of linear warmup (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(order = 100, names = "--schedule", defaultValue = "cosine", paramLabel = "S", description = "after warmup: cosine, linear, step, constant or cyclical (default: ${DEFAULT-VALUE})")
    String schedule;

    @Option(order = 100, names = "--gamma", defaultValue = "0.5", paramLabel = "G", description = "factor of each --schedule step (default: ${DEFAULT-VALUE})")
    double gamma;

    @Option(order = 100, names = "--step-size", defaultValue = "100", paramLabel = "N", description = "steps between --schedule step's drops (default: ${DEFAULT-VALUE})")
    int stepSize;

    @Option(order = 100, names = "--cycle", defaultValue = "200", paramLabel = "N", description = "steps per cycle of --schedule cyclical (default: ${DEFAULT-VALUE})")
    int cycle;

    @Option(order = 100, names = "--weight-decay", defaultValue = "0.1", paramLabel = "W", description = "AdamW weight decay on matrices (default: ${DEFAULT-VALUE})")
    double weightDecay;

    @Option(order = 100, names = "--clip", defaultValue = "1.0", paramLabel = "NORM", description = "global gradient-norm clip, 0 for none (default: ${DEFAULT-VALUE})")
    double clip;

    @Option(order = 100, names = "--shuffle", defaultValue = "true", arity = "1", paramLabel = "BOOL", description = "windows in a seeded random order (default: ${DEFAULT-VALUE})")
    boolean shuffle;

    @Option(order = 100, names = {"-s", "--seed"}, defaultValue = "1", paramLabel = "S", description = "seed of the initialization, window order and dropout (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(order = 100, names = "--dropout", defaultValue = "0", paramLabel = "P", description = "dropout on attention weights and residual branches (default: ${DEFAULT-VALUE})")
    float dropout;

    @Option(order = 100, names = "--freeze", paramLabel = "SPEC", description = "keep weights fixed: layers (0-3, 5) or a tensor-name pattern (regex, e.g. 'token_embd|output.*')")
    String freeze;

    @Option(order = 100, names = "--recompute", negatable = true,
            description = "recompute each layer's activations in backward: less memory, slower (finetune decides by itself unless told)")
    Boolean recomputeOption;

    /** Whether --recompute was given (not --no-recompute, not left out). */
    boolean recompute() {
        return Boolean.TRUE.equals(recomputeOption);
    }

    @Option(order = 100, names = "--eval-every", defaultValue = "100", paramLabel = "N", description = "steps between evaluations, 0 for only the end (default: ${DEFAULT-VALUE})")
    int evalEvery;

    @Option(order = 100, names = "--eval-windows", defaultValue = "64", paramLabel = "N", description = "validation windows per evaluation, at most (default: ${DEFAULT-VALUE})")
    int evalWindows;

    @Option(order = 100, names = "--patience", defaultValue = "0", paramLabel = "N", description = "stop after N evaluations without improvement (default: never)")
    int patience;

    @Option(order = 100, names = "--checkpoint", paramLabel = "DIR", description = "save checkpoints into DIR")
    Path checkpoint;

    @Option(order = 100, names = "--save-every", defaultValue = "100", paramLabel = "N", description = "steps between checkpoints (default: ${DEFAULT-VALUE})")
    int saveEvery;

    @Option(order = 100, names = "--resume", description = "continue from --checkpoint DIR's checkpoint (same data and options)")
    boolean resume;

    @Option(order = 100, names = "--log", paramLabel = "FILE.jsonl", description = "metrics, one JSON object per step and evaluation")
    Path log;

    @Option(order = 100, names = "--png", paramLabel = "FILE.png", description = "chart of the training and validation loss")
    Path png;

    @Option(order = 100, names = "--print-every", defaultValue = "10", paramLabel = "N", description = "steps between progress lines when stderr is not a terminal (default: ${DEFAULT-VALUE})")
    int printEvery;

    @Option(order = 100, names = {"-t", "--threads"}, defaultValue = "0", paramLabel = "N", description = "threads (default: all cores)")
    int threads;

    @Option(order = 100, names = "--backend", defaultValue = "cpu", paramLabel = "NAME", description = "cpu, or ref (float64, slow: the oracle) (default: ${DEFAULT-VALUE})")
    String backendName;

    /** The verb's name for messages ("cria train"). */
    abstract String verb();

    /** The schedule and options of a run of {@code steps} steps of {@code batch} windows of {@code ctx}. */
    TrainOptions options(int batch, int ctx, int steps, boolean recomputeNow) {
        Schedule sched = new Schedule(Schedule.Kind.parse(schedule), lr, minLr != null ? minLr : lr / 10, warmup, steps, gamma, stepSize, cycle);
        return new TrainOptions(batch, ctx, accum, sched, weightDecay, clip, shuffle, seed, dropout, recomputeNow, evalEvery, evalWindows,
                patience, checkpoint, saveEvery);
    }

    /** The options every run checks before it starts (output files, resume, print interval). */
    void checkCommon() {
        if (log != null) {
            OutputFiles.check(log, "--log", OutputFiles.Kind.FILE);
        }
        if (png != null) {
            OutputFiles.check(png, "--png", OutputFiles.Kind.STREAM);
        }
        if (resume && checkpoint == null) {
            throw new CriaException("--resume needs --checkpoint DIR (the directory the interrupted run saved into)");
        }
        if (printEvery < 1) {
            throw new CriaException("--print-every " + printEvery + ": at least 1");
        }
    }

    /** The recipe options as text, for the checkpoint's recipe (a resume with other options is refused). */
    String recipeOptions(TrainOptions o) {
        return String.format(Locale.ROOT, "batch %d ctx %d accum %d steps %d lr %s min %s warmup %d %s gamma %s size %d cycle %d wd %s clip %s"
                        + " shuffle %b seed %d dropout %s freeze %s threads %d backend %s",
                o.batch(), o.ctx(), o.accum(), o.schedule().steps(), o.schedule().lr(), o.schedule().minLr(), o.schedule().warmup(),
                o.schedule().kind(), o.schedule().gamma(), o.schedule().stepSize(), o.schedule().cycle(), o.weightDecay(), o.clip(),
                o.shuffle(), o.seed(), o.dropout(), freeze, cria.engine.Backends.cpuThreadCount(threads), backendName);
    }

    static long physicalMemory() {
        if (java.lang.management.ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getTotalMemorySize();
        }
        return Long.MAX_VALUE / 4;
    }

    /** Layers ("0-3", "0,2,5-7") or a regular expression over tensor names. */
    static Predicate<String> freezeSpec(String spec, int layers) {
        if (spec.matches("[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*")) {
            boolean[] frozen = new boolean[layers];
            for (String part : spec.split(",")) {
                String[] ab = part.split("-");
                long a = Long.parseLong(ab[0]);
                long b = ab.length > 1 ? Long.parseLong(ab[1]) : a;
                if (a > b || b >= layers) {
                    throw new CriaException("--freeze " + spec + ": layers run from 0 to " + (layers - 1));
                }
                for (long l = a; l <= b; l++) {
                    frozen[(int) l] = true;
                }
            }
            return name -> {
                if (!name.startsWith("blk.")) {
                    return false;
                }
                int dot = name.indexOf('.', 4);
                return frozen[Integer.parseInt(name.substring(4, dot))];
            };
        }
        try {
            Pattern p = Pattern.compile(spec);
            return name -> p.matcher(name).matches();
        } catch (java.util.regex.PatternSyntaxException e) {
            throw new CriaException("--freeze " + spec + ": neither layers (0-3) nor a valid pattern: " + e.getDescription());
        }
    }

    static void chart(Trainer.Result r, Path png, String title) {
        XYChart chart = new XYChartBuilder().width(900).height(500).title(title).xAxisTitle("step").yAxisTitle("cross-entropy").build();
        List<Integer> xs = new ArrayList<>();
        List<Double> ys = new ArrayList<>();
        for (Trainer.StepResult s : r.history()) {
            xs.add(s.step());
            ys.add(s.loss());
        }
        chart.addSeries("training", xs, ys).setMarker(org.knowm.xchart.style.markers.SeriesMarkers.NONE);
        if (!r.evals().isEmpty()) {
            List<Integer> ex = new ArrayList<>();
            List<Double> ey = new ArrayList<>();
            for (Trainer.EvalResult e : r.evals()) {
                ex.add(e.step());
                ey.add(e.loss());
            }
            chart.addSeries("validation", ex, ey);
        }
        OutputFiles.write(png, "--png", OutputFiles.Kind.STREAM, o -> BitmapEncoder.saveBitmap(chart, o, BitmapEncoder.BitmapFormat.PNG));
    }

    /** The progress line on stderr and the JSONL metrics. */
    final class Metrics implements Trainer.Listener, AutoCloseable {
        private final PrintWriter err;
        private final boolean tty = Progress.stderrIsTerminal();
        private final int steps;
        private final ObjectMapper json = new ObjectMapper();
        private OutputStream logOut;

        Metrics(PrintWriter err, Path logFile, boolean resuming, int steps) throws IOException {
            this.err = err;
            this.steps = steps;
            if (logFile != null) {
                logOut = resuming && Files.exists(logFile)
                        ? Files.newOutputStream(logFile, StandardOpenOption.WRITE, StandardOpenOption.APPEND)
                        : Files.newOutputStream(logFile, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
            }
        }

        @Override
        public void onResume(int step) {
            err.println(verb() + ": resuming after step " + step + " from " + Checkpoint.file(checkpoint));
            if (log != null) {
                trimLog(step);
            }
        }

        private void trimLog(int step) {
            try {
                logOut.close();
                List<String> keep = new ArrayList<>();
                for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
                    var node = line.isBlank() ? null : json.readTree(line);
                    if (node != null && node.path("step").asInt(Integer.MAX_VALUE) <= step) {
                        keep.add(line);
                    }
                }
                Files.write(log, keep, StandardCharsets.UTF_8);
                logOut = Files.newOutputStream(log, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
            } catch (IOException e) {
                throw OutputFiles.failed(log, e);
            }
        }

        @Override
        public void onStep(Trainer.StepResult r) {
            double eta = r.tokensPerSecond() > 0 ? (double) (steps - r.step()) * (r.elapsedSeconds() / Math.max(1, r.step())) : 0;
            String line = String.format(Locale.ROOT, "step %d/%d  loss %.6f  lr %.3e  %s tok/s  ETA %s", r.step(), steps, r.loss(), r.lr(),
                    Units.count((long) r.tokensPerSecond()), Progress.clock(eta));
            if (tty) {
                err.print("\r" + line + "   ");
                if (r.step() == steps) {
                    err.println();
                }
            } else if (r.step() % printEvery == 0 || r.step() == steps || r.step() == 1) {
                err.println(line);
            }
            err.flush();
            ObjectNode o = json.createObjectNode();
            o.put("step", r.step()).put("loss", r.loss()).put("lr", r.lr()).put("grad_norm", r.gradNorm())
                    .put("tokens_per_s", r.tokensPerSecond()).put("seconds", r.elapsedSeconds());
            write(o);
        }

        @Override
        public void onEval(Trainer.EvalResult e) {
            if (tty) {
                err.println();
            }
            err.printf(Locale.ROOT, "eval after step %d: validation loss %.6f, perplexity %.4f%s%n", e.step(), e.loss(), e.perplexity(),
                    e.best() ? " (best)" : "");
            err.flush();
            ObjectNode o = json.createObjectNode();
            o.put("step", e.step()).put("val_loss", e.loss()).put("val_ppl", e.perplexity()).put("best", e.best());
            write(o);
        }

        @Override
        public void onCheckpoint(Path file, int step) {
            if (!tty) {
                err.println("checkpoint after step " + step + ": " + file);
            }
        }

        private void write(ObjectNode o) {
            if (logOut == null) {
                return;
            }
            try {
                logOut.write(json.writeValueAsBytes(o));
                logOut.write('\n');
                logOut.flush();
            } catch (IOException ex) {
                throw OutputFiles.failed(log, ex);
            }
        }

        @Override
        public void close() throws IOException {
            if (logOut != null) {
                logOut.close();
            }
        }
    }
}
