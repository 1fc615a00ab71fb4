// The training recipe's settings: batch, context, accumulation, schedule, AdamW, clipping, dropout, evaluation and checkpoints.
package cria.train;

import cria.CriaException;
import java.nio.file.Path;

/**
 * Everything that decides a training run's losses, and how it is watched and saved. The recipe
 * is README's "Training" section; {@link Trainer} follows it exactly.
 *
 * @param batch        windows per micro-batch
 * @param ctx          tokens per window (each window trains on ctx next-token predictions)
 * @param accum        micro-batches per optimizer step (gradient accumulation)
 * @param schedule     the learning rate of each step (its step count is the run's)
 * @param weightDecay  AdamW's decoupled weight decay, on matrices only
 * @param clip         global gradient-norm limit (0: no clipping)
 * @param shuffle      windows in a seeded permuted order (false: in stream order)
 * @param seed         the seed of the window order, the initialization and dropout
 * @param dropout      dropout probability on attention weights and residual branches
 * @param recompute    recompute each layer's activations in backward instead of keeping them
 * @param evalEvery    steps between evaluations (0: only at the end)
 * @param evalWindows  validation windows per evaluation, at most
 * @param patience     evaluations without improvement before stopping (0: never stop early)
 * @param checkpoint   directory for checkpoints, or null
 * @param saveEvery    steps between checkpoints
 */
public record TrainOptions(int batch, int ctx, int accum, Schedule schedule, double weightDecay, double clip, boolean shuffle,
                           long seed, float dropout, boolean recompute, int evalEvery, int evalWindows, int patience,
                           Path checkpoint, int saveEvery) {

    /** The AdamW constants of the recipe. */
    public static final float BETA1 = 0.9f;
    public static final float BETA2 = 0.95f;
    public static final float ADAM_EPS = 1e-8f;

    public TrainOptions {
        if (batch < 1 || batch > 1 << 16) {
            throw new CriaException("--batch " + batch + ": between 1 and 65536 windows");
        }
        if (ctx < 1 || ctx > 1 << 20) {
            throw new CriaException("--ctx " + ctx + ": between 1 and 1048576 tokens");
        }
        if ((long) batch * ctx > Integer.MAX_VALUE / 64) {
            throw new CriaException("--batch " + batch + " x --ctx " + ctx + " tokens per micro-batch is too many; use --grad-accum to"
                    + " train on large batches");
        }
        if (accum < 1 || accum > 1 << 16) {
            throw new CriaException("--grad-accum " + accum + ": between 1 and 65536");
        }
        if (!(weightDecay >= 0 && weightDecay < 10)) {
            throw new CriaException("--weight-decay " + weightDecay + ": between 0 and 10 (e.g. 0.1)");
        }
        if (!(clip >= 0 && clip < Float.MAX_VALUE)) {
            throw new CriaException("--clip " + clip + ": a norm of 0 (off) or more (e.g. 1.0)");
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new CriaException("--dropout " + dropout + ": a probability from 0 up to (not including) 1");
        }
        if (evalEvery < 0 || evalWindows < 1 || patience < 0 || saveEvery < 1) {
            throw new CriaException("--eval-every " + evalEvery + ", --eval-windows " + evalWindows + ", --patience " + patience
                    + ", --save-every " + saveEvery + ": none may be negative; eval-windows and save-every at least 1");
        }
    }

    /** Tokens trained on per optimizer step. */
    public long tokensPerStep() {
        return (long) batch * ctx * accum;
    }
}
