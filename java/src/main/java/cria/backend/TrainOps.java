// The operations of training beside Ops: forward ops that keep what backward needs, their backward ops, and the optimizer step.
package cria.backend;

/**
 * Training's own interface, beside {@link Ops} (ARCHITECTURE.md: backward ops and optimizer
 * state live beside the forward ops). Parameters, their gradients and optimizer moments are
 * {@link Buf}s of this interface's own memory (float32 on the CPU; float64 in {@code ref}, the
 * oracle), so one graph (in {@code cria.train}) runs on every implementation.
 *
 * <p>Conventions. Rows {@code [0, n)} of each buffer take part. A weight {@code w} is a buffer of
 * {@code [out, in]} (GGUF's {@code ne = [in, out]}), and a product is {@code out[i][r] = Σ_c
 * w[r][c]·x[i][c]}. Activations of a micro-batch are {@code seqs} windows of {@code len} rows
 * each, window-major (row {@code i} is position {@code i % len} of window {@code i / len}).
 * Gradient buffers named {@code d…} follow the rule each op states: weight gradients always
 * accumulate ({@code +=}), so micro-batches add up; input gradients are written ({@code =}) unless
 * the op says it accumulates. Nothing here allocates per call once a buffer of the size has been
 * seen; implementations may keep scratch between calls.
 *
 * <p>Dropout is a pure function of a seed and an element index, so every implementation drops
 * the same elements and backward needs no stored mask: element {@code idx} is kept when
 * {@link #keep(long, long, float)} says so, and kept values are scaled by {@code 1 / (1 - p)}.
 */
public interface TrainOps extends AutoCloseable {

    // ---- memory ----------------------------------------------------------------------------

    /** A zeroed buffer of {@code rows × cols} values in this implementation's memory. */
    Buf allocate(String name, int rows, int cols);

    /** Copies {@code rows × cols} values from {@code src} (row-major) into {@code dst}, starting at row 0. */
    void write(Buf dst, float[] src);

    /** Copies the first {@code dst.length / cols} rows of {@code src} into {@code dst} (row-major, rounded to float). */
    void read(Buf src, float[] dst);

    /** Sets every value of {@code b} to zero. */
    void zero(Buf b);

    /** {@code dst = src} over rows {@code [0, n)}; same shapes. */
    void copy(Buf src, int n, Buf dst);

    /**
     * A frozen weight over a model file's tensor of any type, F32 to Q2_K (fine-tuning's base):
     * read-only, its bytes left where they are (the mapped file; a quantized tensor is never
     * dequantized whole: products stream its rows). It is a {@code [rows, rowLength]} weight for
     * {@link #matmul}, {@link #matmuls}, {@link #matmulBackward} and {@link #matmulsBackward} (with
     * no weight gradient), {@link #crossEntropy} (with {@code dw} null) and {@link #embed}.
     */
    Buf frozen(cria.tensor.Tensor t);

    /**
     * Whether the forward products of {@link #frozen} quantized weights are computed exactly, on
     * the dequantized weights in float (true), or as inference computes them, which an
     * implementation may do faster (the CPU: 8-bit activations in the inference kernels; the
     * default). The backward products are exact either way. The oracle is always exact.
     */
    default void frozenForwardExact(boolean exact) {}

    /** {@code x *= s} over [n, cols]. */
    void scale(Buf x, int n, float s);

    // ---- forward ---------------------------------------------------------------------------

    /** {@code x[i] = table[tokens[i]]}. table: [vocab, dim]; x: [n, dim]. Tokens are checked by the caller. */
    void embed(Buf table, int[] tokens, int n, Buf x);

    /**
     * {@code out[i] = x[i] · rstd[i] · w} with {@code rstd[i] = 1 / sqrt(mean(x[i]²) + eps)}, which
     * is kept in {@code rstd[i][0]} for backward. x, out: [n, dim] (out may be x only when the
     * caller keeps no use for x); w: [1, dim]; rstd: [n, 1].
     */
    void rmsnorm(Buf x, Buf w, float eps, int n, Buf out, Buf rstd);

    /**
     * {@link #rmsnorm} of each head on its own (qwen3's q/k norm): row i of x holds
     * {@code x.cols() / headDim} heads of {@code headDim} values, and head h of row i becomes
     * {@code x[i,h] · rstd[i·heads + h] · w}. x, out: [n, heads · headDim] (distinct); w: [1, headDim];
     * rstd: [n · heads, 1], kept for backward.
     */
    void rmsnormHeads(Buf x, Buf w, float eps, int headDim, int n, Buf out, Buf rstd);

    /** {@code x[i] += b} for every row i of [n, cols]; b: [1, cols] (qwen2's q/k/v biases; the gradient of x passes through). */
    void addBias(Buf x, Buf b, int n);

    /** {@code out = x · wᵀ}: x [n, in], w [out, in], out [n, out]. */
    void matmul(Buf x, Buf w, int n, Buf out);

    /**
     * Several products of one input, {@code out[j] = x · w[j]ᵀ} for each j (q, k and v of one
     * normed input; gate and up): the same as {@link #matmul} on each pair, which is what this
     * default does; an implementation may read x once for all of them. w and out have the same
     * length; every w[j] has x's columns.
     */
    default void matmuls(Buf x, Buf[] w, int n, Buf[] out) {
        for (int j = 0; j < w.length; j++) {
            matmul(x, w[j], n, out[j]);
        }
    }

    /**
     * Rotates each head of x ([n, heads · headDim]) in place at position {@code i % len} (rope's
     * pairs and frequencies as {@link Ops#rope}). {@code inverse} rotates by the opposite angle:
     * that is rope's backward (the rotation is orthogonal).
     */
    void rope(Buf x, int heads, int headDim, int n, int len, Rope rope, boolean inverse);

    /**
     * Causal grouped-query attention within each window: row i (window b = i / len, position
     * t = i % len), head h attends over rows {@code b·len .. i} of k and v, head {@code h / (heads /
     * kvHeads)}, with scores scaled by {@code 1 / sqrt(headDim)}. Keeps the log-sum-exp of each
     * (row, head)'s scaled scores in {@code lse[i][h]}. With {@code dropP > 0} the softmax weight of
     * (row i, head h, key position j within the window, 0 ≤ j ≤ i % len) is dropped by
     * {@code keep(seed, (i·heads + h)·len + j, dropP)}
     * and kept weights scaled by 1/(1-p); the lse is of the weights before dropout.
     * q, out: [n, heads · headDim]; k, v: [n, kvHeads · headDim]; lse: [n, heads]; n = seqs · len.
     */
    void attention(Buf q, Buf k, Buf v, int seqs, int len, int heads, int kvHeads, int headDim, Buf out, Buf lse,
                   float dropP, long seed);

    /** {@code out = silu(gate) · up} element-wise over [n, cols]; gate and up are kept. */
    void swiglu(Buf gate, Buf up, int n, Buf out);

    /** {@code x += y} over [n, cols]. */
    void add(Buf x, Buf y, int n);

    /** In place: element {@code (i, c)} of [n, cols] becomes {@code keep(seed, i·cols + c, p) ? x/(1-p) : 0}. Its own backward. */
    void dropout(Buf x, int n, float p, long seed);

    /**
     * Softmax cross-entropy of the next-token predictions, the vocabulary product fused in and
     * computed a chunk of rows at a time (the [n × vocab] logits never exist at once):
     * {@code logits[i] = w · x[i]}, {@code loss_i = logsumexp(logits[i]) - logits[i][targets[i]]}.
     * Rows whose target is negative are skipped (no loss, zero gradient). When {@code dx} is not
     * null, also the gradient of {@code scale · Σ_i loss_i}: {@code dx} written, {@code dw}
     * accumulated (dw may be null: a frozen output). x, dx: [n, dim]; w, dw: [vocab, dim].
     *
     * @return {@code Σ_i loss_i} over the counted rows, in double
     */
    double crossEntropy(Buf x, Buf w, int[] targets, int n, float scale, Buf dx, Buf dw);

    // ---- backward --------------------------------------------------------------------------

    /** {@code dTable[tokens[i]] += dx[i]}. */
    void embedBackward(Buf dx, int[] tokens, int n, Buf dTable);

    /**
     * Backward of {@link #rmsnorm} given its input x, weight w and kept rstd: {@code dx += ∂/∂x},
     * {@code dw += ∂/∂w} (both accumulate: dx is the residual stream's gradient).
     */
    void rmsnormBackward(Buf dout, Buf x, Buf w, Buf rstd, int n, Buf dx, Buf dw);

    /** Backward of {@link #rmsnormHeads}, head by head as {@link #rmsnormBackward}: dx and dw accumulate. */
    void rmsnormHeadsBackward(Buf dout, Buf x, Buf w, Buf rstd, int headDim, int n, Buf dx, Buf dw);

    /**
     * Backward of {@link #matmul}: {@code dx = dout · w} (or {@code dx += } when
     * {@code accumulateDx}; dx may be null when no one needs it) and {@code dw += doutᵀ · x}
     * (dw may be null for a frozen weight).
     */
    void matmulBackward(Buf dout, Buf x, Buf w, int n, Buf dx, boolean accumulateDx, Buf dw);

    /**
     * Backward of {@link #matmuls}: {@code dx = Σ_j dout[j] · w[j]} (or {@code dx += } when
     * {@code accumulateDx}; the products added in j order, exactly as {@link #matmulBackward} once
     * per j, accumulating after the first, which is what this default does; dx may be null) and
     * {@code dw[j] += dout[j]ᵀ · x} (dw, or any entry of it, null for a frozen weight).
     */
    default void matmulsBackward(Buf[] dout, Buf x, Buf[] w, int n, Buf dx, boolean accumulateDx, Buf[] dw) {
        for (int j = 0; j < w.length; j++) {
            matmulBackward(dout[j], x, w[j], n, dx, accumulateDx || j > 0, dw == null ? null : dw[j]);
        }
    }

    /**
     * Backward of {@link #attention} with the same arguments, from its inputs, output and lse:
     * writes dq, dk and dv ([n, …] as q, k, v).
     */
    void attentionBackward(Buf dout, Buf q, Buf k, Buf v, Buf out, Buf lse, int seqs, int len, int heads, int kvHeads,
                           int headDim, float dropP, long seed, Buf dq, Buf dk, Buf dv);

    /** Backward of {@link #swiglu}: {@code dgate = dout · up · silu'(gate)}, {@code dup = dout · silu(gate)}. */
    void swigluBackward(Buf dout, Buf gate, Buf up, int n, Buf dgate, Buf dup);

    // ---- optimizer -------------------------------------------------------------------------

    /** {@code Σ g²} over all of g's rows, in double. */
    double sumSquares(Buf g);

    /**
     * One AdamW step over all of p's rows, as PyTorch's {@code torch.optim.AdamW} (not fused, not
     * foreach) takes it, on the gradient {@code gradScale · g}:
     * {@code p -= lr·wd·p; m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²;
     * p -= (lr / (1 - b1^step)) · m / (sqrt(v) / sqrt(1 - b2^step) + eps)}. step counts from 1.
     */
    void adamw(Buf p, Buf g, Buf m, Buf v, float gradScale, float lr, float beta1, float beta2, float eps,
               float weightDecay, int step);

    /** Releases this implementation's memory. */
    @Override
    void close();

    // ---- dropout's mask ----------------------------------------------------------------------

    /** Whether element {@code index} survives dropout with probability {@code p} under {@code seed} (always, when p is 0). */
    static boolean keep(long seed, long index, float p) {
        if (p <= 0f) {
            return true;
        }
        long z = seed + (index + 1) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z = z ^ (z >>> 31);
        return (z >>> 40) >= (long) (p * (1 << 24));
    }
}
