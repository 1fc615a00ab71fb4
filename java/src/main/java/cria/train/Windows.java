// The training recipe's windows: which ctx+1 tokens of the token stream each batch row trains on, sequential or shuffled per epoch.
package cria.train;

import cria.CriaException;

/**
 * Cuts training windows out of a token stream by the recipe's rule, so that an independent
 * implementation (the PyTorch peer) gives the same rows for the same step.
 *
 * <p>Window {@code k} is the {@code k}-th row the run trains on: at step {@code s}, micro-batch
 * {@code a} of {@code accum} and row {@code i} of {@code batch}, {@code k = (s*accum + a)*batch + i}
 * ({@link #index}). Its {@code ctx + 1} tokens are {@code stream[(start + t) mod L]} for
 * {@code t = 0..ctx}; the inputs are {@code t = 0..ctx-1} and the targets {@code t = 1..ctx}.
 * <ul>
 *   <li>Sequential: {@code start = k*ctx mod L}.</li>
 *   <li>Shuffled: an epoch has {@code W = max(1, floor(L/ctx))} windows; window {@code k} is in epoch
 *       {@code e = floor(k/W)} and starts at {@code perm_e[k mod W] * ctx}, where {@code perm_e} is
 *       {@link #permutation(int, long) permutation(W, seed + e * 0xD1B54A32D192ED03)} (mod 2^64).</li>
 * </ul>
 * The permutation is a Fisher-Yates shuffle of {@code 0..W-1} drawn from SplitMix64:
 * <pre>
 *   mix(z): z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >>> 27)) * 0x94D049BB133111EB; return z ^ (z >>> 31)
 *   next(): state += 0x9E3779B97F4A7C15; return mix(state)          (state starts at the seed)
 *   for j = W-1 down to 1: r = (next() >>> 11) mod (j+1), unsigned; swap perm[j], perm[r]
 * </pre>
 *
 * <p>An instance keeps the current epoch's permutation, so it is not safe to share between threads;
 * the stream itself is not copied and must not change.
 */
public final class Windows implements TrainSource {
    /** The multiplier that spreads epoch numbers over seeds (the recipe's constant). */
    public static final long EPOCH_STRIDE = 0xD1B54A32D192ED03L;

    private final int[] stream;
    private final int ctx;
    private final boolean shuffle;
    private final long seed;
    private final int perEpoch;
    private long epoch = -1;
    private int[] perm;

    /**
     * Windows over a training stream.
     *
     * @param stream  the token ids, at least one
     * @param ctx     the context length, at least 1 (each window holds {@code ctx + 1} tokens)
     * @param shuffle shuffle window starts per epoch (the recipe's default) or walk the stream in order
     * @param seed    the run's seed (used when shuffled)
     * @throws CriaException when the stream is empty or ctx is not positive
     */
    public Windows(int[] stream, int ctx, boolean shuffle, long seed) {
        if (stream.length == 0) {
            throw new CriaException("the training stream is empty; give a data file with at least one non-blank document");
        }
        if (ctx < 1) {
            throw new CriaException("context length " + ctx + " must be at least 1; give a positive --ctx");
        }
        this.stream = stream;
        this.ctx = ctx;
        this.shuffle = shuffle;
        this.seed = seed;
        this.perEpoch = Math.max(1, stream.length / ctx);
    }

    /** The global window counter of row {@code row} of micro-batch {@code micro} at {@code step}: {@code (step*accum + micro)*batch + row}. */
    public static long index(long step, int accum, int micro, int batch, int row) {
        if (step < 0 || accum < 1 || batch < 1 || micro < 0 || micro >= accum || row < 0 || row >= batch) {
            throw new IllegalArgumentException("bad window position: step " + step + ", micro-batch " + micro + " of " + accum
                    + ", row " + row + " of " + batch);
        }
        return Math.addExact(Math.multiplyExact(Math.addExact(Math.multiplyExact(step, (long) accum), micro), (long) batch), row);
    }

    /** Windows per epoch when shuffled: {@code max(1, floor(L / ctx))}. */
    public int perEpoch() {
        return perEpoch;
    }

    /** The context length. */
    public int ctx() {
        return ctx;
    }

    /** The stream length L. */
    public int length() {
        return stream.length;
    }

    /** Where window {@code k} starts in the stream (0..L-1). */
    public long start(long k) {
        if (k < 0) {
            throw new IllegalArgumentException("window index " + k + " is negative");
        }
        long len = stream.length;
        if (!shuffle) {
            return (k % len) * ctx % len; // = k*ctx mod L without overflow: (k mod L) * ctx < 2^62
        }
        long e = k / perEpoch;
        if (e != epoch) {
            perm = permutation(perEpoch, seed + e * EPOCH_STRIDE);
            epoch = e;
        }
        return (long) perm[(int) (k % perEpoch)] * ctx;
    }

    /**
     * Writes window {@code k}: its inputs to {@code inputs[offset .. offset+ctx)} and its targets
     * (the same tokens shifted by one) to {@code targets[offset .. offset+ctx)}, wrapping at the
     * end of the stream.
     */
    @Override
    public void fill(long k, int[] inputs, int[] targets, int offset) {
        checkRoom(inputs, targets, offset, ctx);
        int len = stream.length;
        int p = (int) start(k);
        int prev = stream[p];
        for (int t = 0; t < ctx; t++) {
            p = p + 1 == len ? 0 : p + 1;
            inputs[offset + t] = prev;
            prev = stream[p];
            targets[offset + t] = prev;
        }
    }

    /**
     * The recipe's permutation: a Fisher-Yates shuffle of {@code 0..n-1} drawn from SplitMix64
     * seeded with {@code seed} (see the class comment).
     */
    public static int[] permutation(int n, long seed) {
        if (n < 1) {
            throw new IllegalArgumentException("permutation of " + n + " elements");
        }
        int[] perm = new int[n];
        for (int i = 0; i < n; i++) {
            perm[i] = i;
        }
        long state = seed;
        for (int j = n - 1; j >= 1; j--) {
            state += 0x9E3779B97F4A7C15L;
            int r = (int) Long.remainderUnsigned(mix(state) >>> 11, j + 1);
            int tmp = perm[j];
            perm[j] = perm[r];
            perm[r] = tmp;
        }
        return perm;
    }

    /** SplitMix64's finalizer. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static void checkRoom(int[] inputs, int[] targets, int offset, int ctx) {
        if (offset < 0 || (long) offset + ctx > inputs.length || (long) offset + ctx > targets.length) {
            throw new IllegalArgumentException("no room for a window of " + ctx + " at offset " + offset + " (inputs "
                    + inputs.length + ", targets " + targets.length + ")");
        }
    }

    /**
     * The validation windows: {@code V = floor((Lv - 1) / ctx)} consecutive windows of a validation
     * stream, window {@code v} starting at {@code v*ctx} with {@code ctx + 1} tokens and no wrapping,
     * at most a given number of them.
     */
    public static final class Validation implements TrainSource.Validation {
        private final int[] stream;
        private final int ctx;
        private final int count;

        /**
         * Validation windows over {@code stream}, at most {@code max} of them.
         *
         * @throws CriaException when the stream is shorter than {@code ctx + 1} tokens (no window fits)
         */
        public Validation(int[] stream, int ctx, int max) {
            if (ctx < 1) {
                throw new CriaException("context length " + ctx + " must be at least 1; give a positive --ctx");
            }
            if (max < 1) {
                throw new IllegalArgumentException("at most " + max + " validation windows");
            }
            long v = (stream.length - 1L) / ctx;
            if (stream.length == 0 || v == 0) {
                throw new CriaException("the validation text has " + stream.length + " tokens, fewer than ctx + 1 = " + (ctx + 1L)
                        + "; use a larger --val-split (or validation file) or a smaller --ctx");
            }
            this.stream = stream;
            this.ctx = ctx;
            this.count = (int) Math.min(v, max);
        }

        /** The number of windows V (capped at the maximum). */
        @Override
        public int count() {
            return count;
        }

        /** Writes validation window {@code v} (0..count-1): inputs and targets at {@code offset}. */
        @Override
        public void fill(int v, int[] inputs, int[] targets, int offset) {
            if (v < 0 || v >= count) {
                throw new IllegalArgumentException("validation window " + v + " of " + count);
            }
            checkRoom(inputs, targets, offset, ctx);
            int start = v * ctx; // < Lv, so it fits an int
            System.arraycopy(stream, start, inputs, offset, ctx);
            System.arraycopy(stream, start + 1, targets, offset, ctx);
        }
    }
}
