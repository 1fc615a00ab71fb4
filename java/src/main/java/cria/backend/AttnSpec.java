// How one layer's attention scores its keys: the scale of q·k, a sliding window, a logit soft-cap.
package cria.backend;

/**
 * What {@link Ops#attention} does to each score beyond the plain causal softmax. A query at
 * position p scores key position k as {@code s = scale * (q · k)}; with {@code softcap} c &gt; 0
 * that becomes {@code c * tanh(s / c)} (gemma2's attention logit soft-capping); then the softmax
 * runs over the keys the query sees: every {@code k <= p} when {@code window} is 0, only those
 * with {@code p - k < window} when it is W &gt; 0 (sliding-window attention: the last W positions,
 * the query's own included; llama.cpp's "standard" window masks {@code p - k >= W}).
 *
 * @param scale   the factor of q·k: finite and positive ({@link #plain}: 1 / sqrt(head size))
 * @param window  0 for full causal attention, W &gt; 0 for the last W positions
 * @param softcap 0 for none, c &gt; 0 to squash each score into (-c, c)
 */
public record AttnSpec(float scale, int window, float softcap) {

    /** Refuses a scale that is not finite and positive, a negative window, a soft-cap that is not finite and >= 0. */
    public AttnSpec {
        if (!(Float.isFinite(scale) && scale > 0) || window < 0 || !(Float.isFinite(softcap) && softcap >= 0)) {
            throw new IllegalArgumentException("attention spec: scale " + scale + " must be finite and > 0, window " + window
                    + " >= 0, soft-cap " + softcap + " finite and >= 0");
        }
    }

    /** Today's attention: scale 1 / sqrt(headDim), no window, no soft-cap. */
    public static AttnSpec plain(int headDim) {
        if (headDim < 1) {
            throw new IllegalArgumentException("attention spec: head size " + headDim + " must be positive");
        }
        return new AttnSpec((float) (1.0 / Math.sqrt(headDim)), 0, 0f);
    }

    /** The same spec with this window (0: none). */
    public AttnSpec withWindow(int w) {
        return new AttnSpec(scale, w, softcap);
    }

    /** The first key position a query at {@code position} sees: 0, or {@code position - window + 1} under a window. */
    public int firstKey(int position) {
        return window > 0 ? Math.max(0, position - window + 1) : 0;
    }

    /** True when this is the plain spec of {@code headDim} (the backends keep their fast paths for it). */
    public boolean isPlain(int headDim) {
        return window == 0 && softcap == 0 && scale == (float) (1.0 / Math.sqrt(headDim));
    }
}
