// Fine-tuning's windows: one example per window padded after its end, or examples packed whole into windows; targets masked to what is learned.
package cria.train;

import cria.CriaException;
import java.util.ArrayList;
import java.util.List;

/**
 * Windows of fine-tuning examples, in a seeded order per epoch (the permutation of
 * {@link Windows#permutation}, seeded with {@code seed + epoch · EPOCH_STRIDE}) or in file order.
 *
 * <p>Padded (the default): window k holds one example from its start; inputs past its end are the
 * pad token and their targets are -1. Causal attention means padding never changes what comes
 * before it, so each example is trained exactly as if it were alone. Packed: as many whole
 * examples as fit in {@code ctx} tokens follow one another in a window (an example longer than
 * the window gets one of its own); no target crosses from one example into the next, but later
 * examples attend to earlier ones in the same window (the usual price of packing, for speed).
 *
 * <p>A target is scored when the example marks its token as trained (the completion, the
 * assistant's turns, the label, or every token of plain text). An example longer than
 * {@code ctx + 1} tokens is cut there (its encoder has already counted it).
 */
public final class ExampleWindows implements TrainSource {

    /** Example i as it is trained in an epoch (augmentation may differ per epoch; without it, the same every time). */
    public interface Encoder {
        Examples.Encoded encode(int example, long epoch);
    }

    private final int count;
    private final Encoder encoder;
    private final int ctx;
    private final boolean shuffle;
    private final long seed;
    private final boolean pack;
    private final int pad;
    private final int[] lengths;                                 // tokens of each example as first encoded (for packing)
    private final List<long[]> epochStarts = new ArrayList<>();  // packed: first window index of each epoch, [epoch] = {start}
    private final List<int[][]> epochWindows = new ArrayList<>();
    private long permEpoch = -1;
    private int[] perm;

    /**
     * @param count   examples (at least one)
     * @param encoder each example's tokens and mask
     * @param ctx     inputs per window
     * @param shuffle a seeded order per epoch, or file order
     * @param seed    the run's seed
     * @param pack    pack whole examples into windows instead of one per window
     * @param pad     the input token after an example's end (any valid id: it is never scored, and nothing before it sees it)
     */
    public ExampleWindows(int count, Encoder encoder, int ctx, boolean shuffle, long seed, boolean pack, int pad) {
        if (count < 1) {
            throw new CriaException("no training examples; give a data file with at least one example");
        }
        if (ctx < 1) {
            throw new CriaException("--ctx " + ctx + " must be at least 1");
        }
        this.count = count;
        this.encoder = encoder;
        this.ctx = ctx;
        this.shuffle = shuffle;
        this.seed = seed;
        this.pack = pack;
        this.pad = pad;
        this.lengths = new int[pack ? count : 0];
        for (int i = 0; i < lengths.length; i++) {
            lengths[i] = encoder.encode(i, 0).tokens().length;
        }
    }

    /** Windows in epoch 0 (every epoch has this many when not packed). */
    public int perEpoch() {
        return pack ? windowsOf(0).length : count;
    }

    private int[] order(long epoch) {
        if (!shuffle) {
            int[] o = new int[count];
            for (int i = 0; i < count; i++) {
                o[i] = i;
            }
            return o;
        }
        if (epoch != permEpoch) {
            perm = Windows.permutation(count, seed + epoch * Windows.EPOCH_STRIDE);
            permEpoch = epoch;
        }
        return perm;
    }

    /** The packed windows of an epoch: each a list of example indices in order. */
    private int[][] windowsOf(int epoch) {
        while (epochWindows.size() <= epoch) {
            int e = epochWindows.size();
            int[] o = order(e).clone();
            List<int[]> windows = new ArrayList<>();
            List<Integer> cur = new ArrayList<>();
            int used = 0;
            for (int idx : o) {
                int len = Math.min(lengths[idx], ctx + 1);
                if (!cur.isEmpty() && used + len > ctx) {
                    windows.add(cur.stream().mapToInt(Integer::intValue).toArray());
                    cur.clear();
                    used = 0;
                }
                cur.add(idx);
                used += len;
            }
            if (!cur.isEmpty()) {
                windows.add(cur.stream().mapToInt(Integer::intValue).toArray());
            }
            long start = e == 0 ? 0 : epochStarts.get(e - 1)[0] + epochWindows.get(e - 1).length;
            epochWindows.add(windows.toArray(new int[0][]));
            epochStarts.add(new long[] {start});
        }
        return epochWindows.get(epoch);
    }

    @Override
    public void fill(long k, int[] inputs, int[] targets, int offset) {
        if (k < 0) {
            throw new IllegalArgumentException("window " + k);
        }
        if (!pack) {
            long epoch = k / count;
            int idx = order(epoch)[(int) (k % count)];
            put(encoder.encode(idx, epoch), inputs, targets, offset, 0, true);
            return;
        }
        int epoch = 0;
        while (true) {
            int[][] w = windowsOf(epoch);
            long start = epochStarts.get(epoch)[0];
            if (k < start + w.length) {
                int at = 0;
                boolean first = true;
                for (int idx : w[(int) (k - start)]) {
                    at = put(encoder.encode(idx, epoch), inputs, targets, offset, at, first);
                    first = false;
                }
                return;
            }
            epoch++;
        }
    }

    /**
     * Writes an example into the window from position {@code at} on (padding the rest when it is the
     * window's first), returns the position after it. The example's last token is an input only when
     * another example can follow; its first token is never a target.
     */
    private int put(Examples.Encoded e, int[] inputs, int[] targets, int offset, int at, boolean first) {
        if (first) {
            for (int t = 0; t < ctx; t++) {
                inputs[offset + t] = pad;
                targets[offset + t] = -1;
            }
        }
        int[] tok = e.tokens();
        boolean[] trained = e.trained();
        int m = tok.length;
        int t = 0;
        for (; t < m && at + t < ctx; t++) {
            inputs[offset + at + t] = tok[t];
            targets[offset + at + t] = t + 1 < m && trained[t + 1] ? tok[t + 1] : -1;
        }
        return at + t;
    }

    /** Held-out examples, one per window, padded; at most {@code max}. */
    public static TrainSource.Validation validation(List<Examples.Encoded> examples, int ctx, int max, int pad) {
        if (examples.isEmpty()) {
            throw new CriaException("the validation data has no examples");
        }
        int n = Math.min(examples.size(), max);
        ExampleWindows w = new ExampleWindows(examples.size(), (i, epoch) -> examples.get(i), ctx, false, 0, false, pad);
        return new TrainSource.Validation() {
            @Override
            public int count() {
                return n;
            }

            @Override
            public void fill(int v, int[] inputs, int[] targets, int offset) {
                w.fill(v, inputs, targets, offset);
            }
        };
    }
}
