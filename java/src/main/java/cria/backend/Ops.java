// The few whole operations the Llama forward pass needs; each backend implements them on its own memory.
package cria.backend;

/**
 * The operations of a forward pass (ARCHITECTURE.md rule 4: few and whole). Row counts are
 * explicit: an op touches rows {@code [0, n)} of its buffers. Buffers of one call never alias
 * unless the op says so. Implementations: {@code ref} (scalar, the oracle), {@code cpu},
 * {@code cuda}.
 * <p>The plain ops come first. The fused ops after them ({@link #rmsnormMatmul},
 * {@link #rmsnormGateUpSwiglu}, {@link #matmulAdd}, {@link #ropeStoreKv}) are steps of the
 * forward pass that a backend may run as one kernel; their default bodies are the plain ops one
 * after another, and a backend overrides only what it fuses. A fused op leaves every buffer it
 * is given holding what its default body leaves there (intermediate results included), within
 * float rounding, so callers see no difference but speed.
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
     * positions {@code spec.firstKey(position(i)) .. position(i)} of its sequence in the cache
     * (which already holds this batch's keys and values), each score {@code spec.scale() * q·k},
     * soft-capped when {@code spec.softcap() > 0} (see {@link AttnSpec}). Head h reads KV head
     * {@code h / (heads / kvHeads)}. out: [n, heads * headDim].
     */
    void attention(Buf q, KvCache cache, int layer, int heads, int kvHeads, int headDim, AttnSpec spec, Batch batch, Buf out);

    /** {@code a = silu(a) * b}, element-wise over [n, cols]. */
    void swiglu(Buf a, Buf b, int n);

    /** {@code x += y} over [n, cols]. */
    void add(Buf x, Buf y, int n);

    /** {@code out[j] = x[rows[j]]} for j in [0, m). */
    void gather(Buf x, int[] rows, int m, Buf out);

    /**
     * {@code x[i] += bias} for i in [0, n): one vector added to every row (the q, k, v biases of
     * qwen2). bias: a vector of x.cols() values (F32); x: [n, cols].
     */
    void addBias(Buf x, Weight bias, int n);

    /**
     * RMSNorm of every head on its own, in place: each run of {@code headDim} values of x's rows
     * (row i's head h is {@code x[i, h * headDim .. (h + 1) * headDim)}) becomes
     * {@code v / sqrt(mean(v^2) + eps) * w} (qwen3's q and k norms). w: a vector of headDim values;
     * x: [n, heads * headDim] with x.cols() a multiple of headDim.
     */
    void rmsnormHeads(Buf x, Weight w, float eps, int headDim, int n);

    /**
     * {@code a = gelu(a) * b}, element-wise over [n, cols], GELU in its tanh form
     * {@code 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))} (Gemma's gated feed-forward; llama.cpp's
     * {@code ggml_geglu}).
     */
    void geglu(Buf a, Buf b, int n);

    /** {@code x *= s}, element-wise over [n, cols] (Gemma's embedding scale). */
    void scale(Buf x, float s, int n);

    /** {@code x = cap * tanh(x / cap)}, element-wise over [n, cols] (Gemma's final logit soft-capping); cap &gt; 0. */
    void softcap(Buf x, float cap, int n);

    // ---- fused ops: default bodies are the plain ops; a backend overrides what it fuses ---------

    /**
     * A block's input products: {@code xb = rmsnorm(x) * norm}, then {@code out[j] = w[j] · xb}
     * for every weight j ({@link #rmsnorm} then {@link #matmul}). Afterwards xb holds the
     * normalized rows and out[j] the products. xb may be x (normalized in place); no out[j] is x or
     * xb. x, xb: [n, dim]; out[j]: [n, w[j].rows]. A backend may compute the norm on the way into
     * the product rather than as a pass of its own (it still writes xb).
     */
    default void rmsnormMatmul(Buf x, Weight norm, float eps, int n, Buf xb, Weight[] w, Buf[] out) {
        rmsnorm(x, norm, eps, n, xb);
        matmul(xb, n, w, out);
    }

    /**
     * The feed-forward input: {@code xb = rmsnorm(x) * norm}, {@code hb2 = up · xb},
     * {@code hb = silu(gate · xb) * hb2} ({@link #rmsnorm}, {@link #matmul} of gate and up,
     * {@link #swiglu}). Afterwards xb holds the normalized rows, hb the gated product, hb2 the up
     * product. xb may be x (normalized in place). x, xb: [n, dim]; hb, hb2: [n, ffn], distinct
     * from each other and from x and xb.
     */
    default void rmsnormGateUpSwiglu(Buf x, Weight norm, float eps, int n, Buf xb, Weight gate, Weight up, Buf hb, Buf hb2) {
        rmsnorm(x, norm, eps, n, xb);
        matmul(xb, n, new Weight[] {gate, up}, new Buf[] {hb, hb2});
        swiglu(hb, hb2, n);
    }

    /**
     * A block's output into the residual stream: {@code out = w · x}, then {@code residual += out}
     * ({@link #matmul} then {@link #add}). Afterwards out holds the product and residual the sum.
     * x: [n, in]; out, residual: [n, w.rows], neither of them x nor each other.
     */
    default void matmulAdd(Buf x, int n, Weight w, Buf out, Buf residual) {
        matmul(x, n, new Weight[] {w}, new Buf[] {out});
        add(residual, out, n);
    }

    /**
     * Rotates q and k in place at the batch's positions, then writes the rotated k and v into the
     * cache at each entry's (sequence, position) for {@code layer} ({@link #rope} then
     * {@link #storeKv}). Afterwards q and k hold the rotated rows, v is unchanged.
     * q: [n, heads * headDim]; k, v: [n, kvDim].
     */
    default void ropeStoreKv(Buf q, Buf k, Buf v, int headDim, Batch batch, Rope rope, KvCache cache, int layer) {
        rope(q, k, headDim, batch, rope);
        storeKv(cache, layer, k, v, batch);
    }
}
