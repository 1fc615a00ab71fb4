// Where a trainer's windows come from: a token stream cut into windows, or fine-tuning examples with their masks.
package cria.train;

/**
 * The training windows of a run, by index in the training order (index k of step s, micro-batch
 * a, row i is {@code (s · accum + a) · batch + i}). A window is {@code ctx} inputs and their
 * {@code ctx} targets; a negative target is not scored (a prompt, padding, the seam between two
 * packed examples). Implementations are deterministic functions of k, so a resumed run sees the
 * same windows.
 */
public interface TrainSource {
    /** Writes window k's inputs and targets at {@code offset} of the arrays. */
    void fill(long k, int[] inputs, int[] targets, int offset);

    /** The held-out windows evaluated during training. */
    interface Validation {
        /** Windows, at least one. */
        int count();

        /** Writes validation window v (0..count-1) at {@code offset}. */
        void fill(int v, int[] inputs, int[] targets, int offset);
    }
}
