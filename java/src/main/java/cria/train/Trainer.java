// The training loop: windows, gradient accumulation, clipping, AdamW on the schedule, evaluation, early stopping, checkpoints.
package cria.train;

import cria.CriaException;
import cria.backend.TrainOps;
import java.nio.file.Path;
import java.util.List;

/**
 * Runs the recipe (README, "Training") on a model's {@link Params}: each step zeroes the
 * gradients, runs {@code accum} micro-batches of {@code batch} windows forward and backward
 * (each micro-batch's loss divided by accum), clips the gradients to a global norm, and takes one
 * AdamW step at the schedule's learning rate. Evaluates on the validation stream every
 * {@code evalEvery} steps and at the end, keeps the best weights, stops early after
 * {@code patience} evaluations without improvement, and writes checkpoints from which
 * {@link #run} resumes with exactly the losses an uninterrupted run gives (same thread count).
 */
public final class Trainer {

    /** Told what happens, as it happens (on the training thread). */
    public interface Listener {
        default void onStep(StepResult r) {}

        default void onEval(EvalResult e) {}

        default void onCheckpoint(Path file, int step) {}

        default void onResume(int step) {}
    }

    /** One optimizer step: its loss (mean cross-entropy), learning rate, gradient norm before clipping, and speed. */
    public record StepResult(int step, int steps, double loss, double lr, double gradNorm, double tokensPerSecond,
                             double elapsedSeconds) {}

    /** One evaluation after {@code step} steps: mean validation cross-entropy and its perplexity. */
    public record EvalResult(int step, double loss, double perplexity, boolean best) {}

    /** How the run ended. */
    public record Result(int steps, boolean stoppedEarly, double finalLoss, EvalResult best, List<StepResult> history,
                         List<EvalResult> evals) {}

    private final Params p;
    private final TrainOps ops;
    private final TrainOptions o;
    private final TrainGraph graph;
    private final TrainSource windows;
    private final int[] valStream;
    private final TrainSource.Validation val;
    private final int[] inputs;
    private final int[] targets;
    private final String recipe;

    /**
     * @param train  the training stream (documents with BOS, concatenated)
     * @param val    the validation stream, or an empty array for none
     * @param recipe a description of everything the losses depend on (shape, data, options), stored in
     *               checkpoints: a resume with a different recipe is refused
     */
    public Trainer(Params params, TrainOps ops, TrainOptions options, int[] train, int[] val, String recipe) {
        this(params, ops, options, streamWindows(train, options), null, val, recipe, 0f);
    }

    private static TrainSource streamWindows(int[] train, TrainOptions o) {
        if (train.length < 2) {
            throw new CriaException("the training data has " + train.length + " tokens; at least 2 are needed (more text, please)");
        }
        return new Windows(train, o.ctx(), o.shuffle(), o.seed());
    }

    /**
     * A trainer over any source of windows (fine-tuning examples with their masks): the loss of a
     * step is the mean over its scored targets, and with {@code loraDropout} the params' adapters
     * drop their inputs.
     *
     * @param val the held-out windows, or null for none
     */
    public Trainer(Params params, TrainOps ops, TrainOptions options, TrainSource train, TrainSource.Validation val, String recipe,
                   float loraDropout) {
        this(params, ops, options, train, val, null, recipe, loraDropout);
    }

    private Trainer(Params params, TrainOps ops, TrainOptions options, TrainSource train, TrainSource.Validation val, int[] valStream,
                    String recipe, float loraDropout) {
        this.p = params;
        this.ops = ops;
        this.o = options;
        this.val = val;
        this.valStream = valStream;
        this.recipe = recipe;
        this.windows = train;
        this.graph = new TrainGraph(params, ops, o.batch(), o.ctx(), o.recompute(), o.dropout(), loraDropout);
        this.inputs = new int[graph.rows()];
        this.targets = new int[graph.rows()];
    }

    public TrainGraph graph() {
        return graph;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The dropout seed of micro-batch {@code a} of step {@code s}: a function of the run's seed, so a resumed run drops the same. */
    private long dropoutSeed(int s, int a) {
        return mix(o.seed() ^ mix(0x2545F4914F6CDD1DL + (long) s * o.accum() + a));
    }

    /** Trains to the last step (or an early stop) from the start, or from the checkpoint when {@code resume}. */
    public Result run(boolean resume, Listener listener) {
        int steps = o.schedule().steps();
        Checkpoint.State st = new Checkpoint.State();
        if (resume) {
            st = Checkpoint.load(o.checkpoint(), p, ops, recipe);
            listener.onResume(st.step);
        }
        int n = graph.rows();
        long t0 = System.nanoTime();
        int first = st.step;
        boolean stopped = false;
        double loss = st.history.isEmpty() ? Double.NaN : st.history.get(st.history.size() - 1).loss();
        for (int s = st.step; s < steps; s++) {
            p.zeroGrads(ops);
            loss = 0;
            long scored = 0; // the step's loss is the mean over its scored targets: count them first
            for (int a = 0; a < o.accum(); a++) {
                scored += fillMicroBatch(s, a);
            }
            if (scored == 0) {
                throw new CriaException("step " + (s + 1) + " has no token to learn (every target is masked); check the data");
            }
            float scale = (float) (1.0 / scored);
            for (int a = 0; a < o.accum(); a++) {
                fillMicroBatch(s, a);
                double sum = graph.trainStep(inputs, targets, scale, dropoutSeed(s, a));
                loss += sum / scored;
            }
            if (!Double.isFinite(loss)) {
                throw new CriaException("the loss became " + loss + " at step " + (s + 1) + "; lower --lr (now " + o.schedule().lr()
                        + ") or raise --warmup");
            }
            double norm = Math.sqrt(p.gradientSumOfSquares(ops));
            float coef = 1f;
            if (o.clip() > 0) {
                double c = o.clip() / (norm + 1e-6);
                if (c < 1) {
                    coef = (float) c;
                }
            }
            double lr = o.schedule().at(s);
            p.adamw(ops, coef, (float) lr, (float) o.weightDecay(), s + 1);
            double elapsed = (System.nanoTime() - t0) / 1e9;
            StepResult r = new StepResult(s + 1, steps, loss, lr, norm, o.tokensPerStep() * (s + 1 - first) / Math.max(elapsed, 1e-9),
                    elapsed);
            st.history.add(r);
            listener.onStep(r);
            boolean last = s == steps - 1;
            if (hasValidation() && ((o.evalEvery() > 0 && (s + 1) % o.evalEvery() == 0) || last)) {
                double vl = validationLoss();
                boolean best = st.best == null || vl < st.best.loss();
                EvalResult e = new EvalResult(s + 1, vl, Math.exp(vl), best);
                st.evals.add(e);
                if (best) {
                    st.best = e;
                    st.badEvals = 0;
                    st.bestWeights = snapshot(st.bestWeights);
                } else {
                    st.badEvals++;
                }
                listener.onEval(e);
                if (o.patience() > 0 && st.badEvals >= o.patience() && !last) {
                    stopped = true;
                }
            }
            st.step = s + 1;
            if (o.checkpoint() != null && ((s + 1) % o.saveEvery() == 0 || last || stopped)) {
                Path f = Checkpoint.save(o.checkpoint(), p, ops, st, recipe);
                listener.onCheckpoint(f, s + 1);
            }
            if (stopped) {
                break;
            }
        }
        if (st.bestWeights != null && st.best != null && st.best.step() != st.step) {
            restore(st.bestWeights); // the best evaluated weights are the ones a caller writes out
        }
        return new Result(st.step, stopped, loss, st.best, st.history, st.evals);
    }

    /** Fills micro-batch a of step s into inputs and targets; returns its scored targets. */
    private long fillMicroBatch(int s, int a) {
        long k0 = ((long) s * o.accum() + a) * o.batch();
        for (int i = 0; i < o.batch(); i++) {
            windows.fill(k0 + i, inputs, targets, i * o.ctx());
        }
        long count = 0;
        for (int t : targets) {
            count += t >= 0 ? 1 : 0;
        }
        return count;
    }

    private float[][] snapshot(float[][] into) {
        List<Params.Param> all = p.stateful();
        float[][] w = into != null ? into : new float[all.size()][];
        for (int i = 0; i < all.size(); i++) {
            if (w[i] == null) {
                w[i] = new float[Math.toIntExact(all.get(i).size())];
            }
            ops.read(all.get(i).value, w[i]);
        }
        return w;
    }

    private void restore(float[][] w) {
        List<Params.Param> all = p.stateful();
        for (int i = 0; i < all.size(); i++) {
            ops.write(all.get(i).value, w[i]);
        }
    }

    private boolean hasValidation() {
        return val != null || (valStream != null && valStream.length > 0);
    }

    /** Validation windows: consecutive, ctx + 1 tokens each, at most evalWindows (or the validation source's). */
    public int validationWindows() {
        if (val != null) {
            return Math.min(o.evalWindows(), val.count());
        }
        return (int) Math.min(o.evalWindows(), valStream == null || valStream.length < 1 ? 0 : (valStream.length - 1L) / o.ctx());
    }

    /** Mean cross-entropy over the validation windows' scored targets (no dropout). */
    public double validationLoss() {
        int v = validationWindows();
        if (v < 1) {
            int len = valStream == null ? 0 : valStream.length;
            throw new CriaException("the validation text has " + len + " tokens, fewer than one window of --ctx " + o.ctx()
                    + " + 1; use a larger --val-split, a longer --val file or a smaller --ctx");
        }
        TrainSource.Validation source = val != null ? val : new Windows.Validation(valStream, o.ctx(), v);
        double sum = 0;
        long scored = 0;
        for (int w0 = 0; w0 < v; w0 += o.batch()) {
            int w = Math.min(o.batch(), v - w0);
            for (int j = 0; j < w; j++) {
                source.fill(w0 + j, inputs, targets, j * o.ctx());
            }
            for (int i = 0; i < w * o.ctx(); i++) {
                scored += targets[i] >= 0 ? 1 : 0;
            }
            sum += graph.loss(inputs, targets, w);
        }
        return scored == 0 ? Double.NaN : sum / scored;
    }

    /**
     * Perplexity as llama.cpp's {@code llama-perplexity} (and {@code cria perplexity}) measures it
     * with a context of ctx: the tokens are cut into chunks of ctx, each chunk's first token
     * replaced by {@code bos} (when ≥ 0), and the predictions of each chunk's second half averaged.
     *
     * @param tokens the text tokenized as a whole (with BOS first when the model adds one)
     */
    public double perplexityLikeLlamaCpp(int[] tokens, int bos) {
        int ctx = o.ctx();
        int chunks = tokens.length / ctx;
        if (chunks < 1 || ctx < 3) {
            throw new CriaException("perplexity needs at least one chunk of --ctx " + ctx + " tokens (of at least 3); the text has " + tokens.length);
        }
        int firstScored = ctx / 2;
        double sum = 0;
        long count = 0;
        for (int c0 = 0; c0 < chunks; c0 += o.batch()) {
            int w = Math.min(o.batch(), chunks - c0);
            for (int j = 0; j < w; j++) {
                int start = (c0 + j) * ctx;
                for (int t = 0; t < ctx; t++) {
                    inputs[j * ctx + t] = t == 0 && bos >= 0 ? bos : tokens[start + t];
                    boolean scored = t >= firstScored && t < ctx - 1;
                    targets[j * ctx + t] = scored ? tokens[start + t + 1] : -1;
                    count += scored ? 1 : 0;
                }
            }
            sum += graph.loss(inputs, targets, w);
        }
        return Math.exp(sum / count);
    }
}
