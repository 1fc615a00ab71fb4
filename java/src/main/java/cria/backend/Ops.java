// The few whole operations the Llama forward pass needs; each backend implements them on its own memory.
package cria.backend;

/**
 * The operations of a forward pass (ARCHITECTURE.md rule 4: few and whole). Row counts are
 * explicit: an op touches rows {@code [0, n)} of its buffers. Buffers of one call never alias
 * unless the op says so. Implementations: {@code ref} (scalar, the oracle), {@code cpu},
 * {@code cuda}.
 */
public interface Ops {

    /**
     * Called once before a forward step's ops with the step's batch and cache, so a backend can
     * move the batch (tokens, positions, page tables) to its memory once, or begin recording.
     */
    default void beginStep(Batch batch, KvCache cache) {}

    /** Called once after a forward step's ops. */
    default void endStep() {}

    /** {@code x[i] = table[tokens[i]]} dequantized, for the batch's tokens. x: [n, dim]. */
    void embed(Weight table, Batch batch, Buf x);

    /** {@code out[i] = x[i] / sqrt(mean(x[i]^2) + eps) * w}; out may be x. x, out: [n, dim]. */
    void rmsnorm(Buf x, Weight w, float eps, int n, Buf out);

    /**
     * {@code out[j][i] = w[j] · x[i]} for every weight j: several products of the same input, so
     * a backend may prepare x once (quantize it, upload it). x: [n, in]; out[j]: [n, w[j].rows].
     */
    void matmul(Buf x, int n, Weight[] w, Buf[] out);

    /** Rotates q [n, heads * headDim] and k [n, kvHeads * headDim] in place at the batch's positions. */
    void rope(Buf q, Buf k, int headDim, Batch batch, Rope rope);

    /** Writes k and v [n, kvDim] into the cache at each entry's (sequence, position) for {@code layer}. */
    void storeKv(KvCache cache, int layer, Buf k, Buf v, Batch batch);

    /**
     * Causal grouped-query attention: entry i's query heads [heads * headDim] attend over
     * positions {@code 0 .. position(i)} of its sequence in the cache (which already holds this
     * batch's keys and values). Head h reads KV head {@code h / (heads / kvHeads)}. out: [n, heads * headDim].
     */
    void attention(Buf q, KvCache cache, int layer, int heads, int kvHeads, int headDim, Batch batch, Buf out);

    /** {@code a = silu(a) * b}, element-wise over [n, cols]. */
    void swiglu(Buf a, Buf b, int n);

    /** {@code x += y} over [n, cols]. */
    void add(Buf x, Buf y, int n);

    /** {@code out[j] = x[rows[j]]} for j in [0, m). */
    void gather(Buf x, int[] rows, int m, Buf out);
}
