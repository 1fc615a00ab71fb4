// The named weights of a Llama model, checked against the configuration and made resident in a backend.
package cria.model;

import cria.CriaException;
import cria.backend.Backend;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Every weight of the forward pass, by role. Shapes are checked against {@link LlamaConfig}
 * before anything is made resident, so a mismatched file fails with a message naming the tensor.
 * {@code output} is the embedding itself when the model ties them (no {@code output.weight}).
 */
public final class LlamaWeights {
    public final Weight tokenEmbedding;   // [dim, vocab]
    public final Weight outputNorm;       // [dim]
    public final Weight output;           // [dim, vocab]
    // The block matrices: an entry is null where that layer's matrix is factorized (lowRankA/B).
    public final Weight[] attnNorm;       // [dim]
    public final Weight[] wq;             // [dim, heads * headDim]
    public final Weight[] wk;             // [dim, kvHeads * headDim]
    public final Weight[] wv;             // [dim, kvHeads * headDim]
    public final Weight[] wo;             // [heads * headDim, dim]
    public final Weight[] ffnNorm;        // [dim]
    public final Weight[] gate;           // [dim, ffn]
    public final Weight[] up;             // [dim, ffn]
    public final Weight[] down;           // [ffn, dim]
    /** Per layer: the q, k and v biases ([qDim], [kvDim], [kvDim], F32), null where the file has none (qwen2 has them). */
    public final Weight[] qBias;
    public final Weight[] kBias;
    public final Weight[] vBias;
    /** Per layer: the per-head RMSNorm weights of q and k ([headDim]); null unless {@link LlamaConfig#qkNorm()} (qwen3). */
    public final Weight[] qNorm;
    public final Weight[] kNorm;
    /**
     * Per layer: the RMSNorm weights of the attention and feed-forward outputs before their residual
     * adds ({@code post_attention_norm}, {@code post_ffw_norm}, [dim]); null unless {@link LlamaConfig#isGemma()}.
     */
    public final Weight[] attnPostNorm;
    public final Weight[] ffnPostNorm;
    /**
     * Factorized block matrices ({@link LowRankTensors}), indexed [role][layer] in
     * {@link LowRankTensors#ROLES} order (q, k, v, output, gate, up, down): A {@code [n_in, k]}
     * applied first, B {@code [k, n_out]} second; null where the matrix is dense.
     */
    public final Weight[][] lowRankA;
    public final Weight[][] lowRankB;
    /** llama3 rope frequency factors ([ropeDims / 2]), or null. */
    public final float[] ropeFactors;
    /** phi3's long-rope scaling (Phi-3.5, the 128k Phi-3s), or null. */
    public final LongRope longRope;

    /**
     * Phi-3's LongRoPE: per-frequency factors for contexts up to {@code originalContext}
     * ({@code rope_factors_short}) and beyond it ({@code rope_factors_long}), chosen as llama.cpp
     * chooses them, by the context a sequence may reach; and {@code attnFactor}
     * ({@code phi3.rope.scaling.attn_factor}), which multiplies every rotated query and key value,
     * so every score by its square when the whole head rotates.
     */
    public record LongRope(float[] shortFactors, float[] longFactors, int originalContext, float attnFactor) {}
    public final boolean tied;

    /**
     * The weights of a file, found and checked against a configuration but not yet resident:
     * every check a file can fail happens here, before a backend exists (so a refused file costs
     * no device set-up and gets exactly one line).
     */
    public static final class Checked {
        private final Tensor emb;
        private final Tensor outNorm;
        private final Tensor out;
        private final float[] ropeFactors;
        private final LongRope longRope;
        private final Tensor[][] blk;
        private final Tensor[][] bias;     // [q, k, v][layer], null where absent
        private final Tensor[][] qkNorm;   // [q, k][layer], null unless the config has q/k norms
        private final Tensor[][] postNorm; // [attention, ffn][layer], null unless gemma
        private final Tensor[][] factorA;  // [blk index][layer], null where dense
        private final Tensor[][] factorB;
        private final String unused;

        private Checked(GgufFile file, LlamaConfig c) {
            int L = c.layers();
            if (file.tensor("output.bias") != null) {
                throw new CriaException(file.path() + ": tensor output.bias: a bias on the output projection is not supported");
            }
            longRope = longRope(file, c);
            unused = checkTensorNames(file, L, c.qkNorm(), c.fusedMatrices(), c.isGemma());
            emb = need(file, "token_embd.weight", c.dim(), c.vocab());
            outNorm = need(file, "output_norm.weight", c.dim());
            out = optional(file, "output.weight", c.dim(), c.vocab());
            Tensor freqs = optional(file, "rope_freqs.weight", c.ropeDims() / 2);
            ropeFactors = freqs == null ? null : dequantizeAll(freqs);
            if (ropeFactors != null) {
                for (int i = 0; i < ropeFactors.length; i++) {
                    // angles are divided by these factors: zero, negative or non-finite ones give NaN
                    if (!(ropeFactors[i] > 0 && ropeFactors[i] < Float.POSITIVE_INFINITY)) {
                        throw new CriaException(file.path() + ": tensor rope_freqs.weight[" + i + "] = " + ropeFactors[i]
                                + " is not a usable rope frequency factor (finite and positive); the file is corrupt");
                    }
                }
            }
            blk = new Tensor[9][L];
            factorA = new Tensor[9][L];
            factorB = new Tensor[9][L];
            bias = new Tensor[3][L];
            qkNorm = new Tensor[2][L];
            postNorm = new Tensor[2][L];
            for (int l = 0; l < L; l++) {
                String p = "blk." + l + ".";
                blk[0][l] = need(file, p + "attn_norm.weight", c.dim());
                if (c.fusedMatrices()) {
                    fused(file, l, c);
                } else {
                    matrix(file, l, 1, c.dim(), c.qDim());
                    matrix(file, l, 2, c.dim(), c.kvDim());
                    matrix(file, l, 3, c.dim(), c.kvDim());
                }
                matrix(file, l, 4, c.qDim(), c.dim());
                blk[5][l] = need(file, p + "ffn_norm.weight", c.dim());
                if (!c.fusedMatrices()) {
                    matrix(file, l, 6, c.dim(), c.ffn());
                    matrix(file, l, 7, c.dim(), c.ffn());
                }
                matrix(file, l, 8, c.ffn(), c.dim());
                bias[0][l] = optionalBias(file, p + "attn_q.bias", c.qDim());
                bias[1][l] = optionalBias(file, p + "attn_k.bias", c.kvDim());
                bias[2][l] = optionalBias(file, p + "attn_v.bias", c.kvDim());
                if (c.qkNorm()) {
                    qkNorm[0][l] = finite(file, need(file, p + "attn_q_norm.weight", c.headDim()));
                    qkNorm[1][l] = finite(file, need(file, p + "attn_k_norm.weight", c.headDim()));
                }
                if (c.isGemma()) {
                    postNorm[0][l] = need(file, p + "post_attention_norm.weight", c.dim());
                    postNorm[1][l] = need(file, p + "post_ffw_norm.weight", c.dim());
                }
            }
        }

        /**
         * Block matrix {@code i} (1-4, 6-8 of blk) of layer l: the dense tensor, or the factor pair
         * of {@link LowRankTensors} with its rank read from A and bounded by the matrix's sides
         * before its shapes are checked; exactly one of the two forms.
         */
        private void matrix(GgufFile file, int l, int i, int in, int out) {
            String role = LowRankTensors.ROLES.get(i < 5 ? i - 1 : i - 2);
            String dense = LowRankTensors.dense(l, role);
            String an = LowRankTensors.a(l, role);
            String bn = LowRankTensors.b(l, role);
            GgufTensorInfo a = file.tensor(an);
            GgufTensorInfo b = file.tensor(bn);
            if (a == null && b == null) {
                blk[i][l] = need(file, dense, in, out);
                return;
            }
            if (file.tensor(dense) != null) {
                throw new CriaException(file.path() + ": " + dense + " is there both dense and factorized (" + (a != null ? an : bn)
                        + "); the file is inconsistent");
            }
            if (a == null || b == null) {
                throw new CriaException(file.path() + ": tensor " + (a == null ? bn : an) + " has no partner " + (a == null ? an : bn)
                        + "; a factorized matrix needs both factors");
            }
            long[] s = a.shape();
            long rank = s.length >= 2 ? s[1] : 1;
            long most = Math.min(in, out);
            if (rank < 1 || rank > most) {
                throw new CriaException(file.path() + ": tensor " + an + " has shape " + a.shapeText() + ": rank " + rank
                        + " outside 1.." + most + " (the sides of " + dense + ", [" + in + ", " + out + "])");
            }
            factorA[i][l] = need(file, an, in, rank);
            factorB[i][l] = need(file, bn, rank, out);
        }

        /**
         * phi3's fused matrices of layer l as row views of the mapped tensors, so that every
         * backend sees ordinary weights: {@code attn_qkv} ([dim, qDim + 2 kvDim]: the q rows, then
         * k's, then v's) where the file has it, else separate q, k, v as llama.cpp also accepts; and
         * {@code ffn_up} ([dim, 2 ffn]: the gate rows first, then up's, as llama.cpp's SwiGLU of one
         * tensor takes them). Sizes are computed in long before the shapes are compared.
         */
        private void fused(GgufFile file, int l, LlamaConfig c) {
            String p = "blk." + l + ".";
            for (String role : new String[] {"attn_q", "attn_k", "attn_v", "ffn_gate", "ffn_up"}) {
                if (file.tensor(LowRankTensors.a(l, role)) != null || file.tensor(LowRankTensors.b(l, role)) != null) {
                    throw new CriaException(file.path() + ": " + LowRankTensors.a(l, role) + ": factorized matrices of a phi3 file are not supported");
                }
            }
            if (file.tensor(p + "ffn_gate.weight") != null) {
                throw new CriaException(file.path() + ": tensor " + p + "ffn_gate.weight: a phi3 file holds gate and up in one "
                        + p + "ffn_up.weight of 2 x " + c.ffn() + " rows; the file is inconsistent");
            }
            if (file.tensor(p + "attn_qkv.weight") != null) {
                if (file.tensor(p + "attn_q.weight") != null || file.tensor(p + "attn_k.weight") != null || file.tensor(p + "attn_v.weight") != null) {
                    throw new CriaException(file.path() + ": " + p + "attn_qkv.weight and separate attn_q/k/v are both there; the file is inconsistent");
                }
                long q = c.qDim();
                long kv = c.kvDim();
                Tensor qkv = need(file, p + "attn_qkv.weight", c.dim(), q + 2 * kv);
                blk[1][l] = rows(qkv, 0, q, "q");
                blk[2][l] = rows(qkv, q, kv, "k");
                blk[3][l] = rows(qkv, q + kv, kv, "v");
            } else {
                blk[1][l] = need(file, p + "attn_q.weight", c.dim(), c.qDim());
                blk[2][l] = need(file, p + "attn_k.weight", c.dim(), c.kvDim());
                blk[3][l] = need(file, p + "attn_v.weight", c.dim(), c.kvDim());
            }
            Tensor gu = need(file, p + "ffn_up.weight", c.dim(), 2L * c.ffn());
            blk[6][l] = rows(gu, 0, c.ffn(), "gate");
            blk[7][l] = rows(gu, c.ffn(), c.ffn(), "up");
        }

        /** Rows [first, first + n) of matrix t as a tensor of its own (a slice of the same mapping, nothing copied). */
        private static Tensor rows(Tensor t, long first, long n, String part) {
            long rb = t.rowBytes();
            return new Tensor(t.name() + "[" + part + "]", t.type(), new long[] {t.shape()[0], n}, t.data().asSlice(first * rb, n * rb));
        }

        /** The one-line warning about tensors the graph does not use, or null. */
        public String warning() {
            return unused;
        }
    }

    /** phi3's long-rope factors and attention factor, checked, or null when the file has neither. */
    private static LongRope longRope(GgufFile file, LlamaConfig c) {
        String arch = c.arch();
        Tensor shortF = file.tensor("rope_factors_short.weight") == null ? null : Tensor.of(file, file.tensor("rope_factors_short.weight"));
        Tensor longF = file.tensor("rope_factors_long.weight") == null ? null : Tensor.of(file, file.tensor("rope_factors_long.weight"));
        String fk = arch + ".rope.scaling.attn_factor";
        var md = file.metadata();
        if (shortF == null && longF == null && !md.has(fk)) {
            return null;
        }
        if (!arch.equals("phi3")) {
            throw new CriaException(file.path() + ": long-rope scaling (rope_factors_long/short, " + fk + ") is read for phi3 files only; this one is '"
                    + arch + "'");
        }
        if ((shortF == null) != (longF == null)) {
            throw new CriaException(file.path() + ": tensor " + (shortF == null ? "rope_factors_short" : "rope_factors_long")
                    + ".weight is missing beside the other; the file is corrupt");
        }
        if (shortF != null && file.tensor("rope_freqs.weight") != null) {
            throw new CriaException(file.path() + ": both rope_freqs.weight and rope_factors_long/short; the file is inconsistent");
        }
        double factor = md.has(fk) ? md.number(fk).orElseThrow(() -> new CriaException(file.path() + ": " + fk + " is not a number; the file is corrupt"))
                .doubleValue() : 1.0;
        if (!(factor > 0 && factor < 100)) {
            throw new CriaException(file.path() + ": " + fk + " = " + factor + " is not a usable attention factor (0 < f < 100); the file is corrupt");
        }
        if (factor != 1.0 && c.ropeDims() != c.headDim()) {
            throw new CriaException(file.path() + ": " + fk + " with partial rotary (" + c.ropeDims() + " of " + c.headDim()
                    + " dims per head rotate) is not supported yet (Phi-4-mini's kind of file)");
        }
        String ok = arch + ".rope.scaling.original_context_length";
        int original = c.trainedContextLength();
        if (md.has(ok)) {
            long v = md.count(ok).orElseThrow(() -> new CriaException(file.path() + ": " + ok + " is not a count; the file is corrupt"));
            if (v < 1 || v > c.trainedContextLength()) {
                throw new CriaException(file.path() + ": " + ok + " = " + v + " is outside 1.." + c.trainedContextLength() + " (the trained context); the file is corrupt");
            }
            original = (int) v;
        }
        float[] s = shortF == null ? null : factors(file, shortF, c);
        float[] l = longF == null ? null : factors(file, longF, c);
        return new LongRope(s, l, original, (float) factor);
    }

    private static float[] factors(GgufFile file, Tensor t, LlamaConfig c) {
        if (t.rows() != 1 || t.rowLength() != c.ropeDims() / 2) {
            throw new CriaException(file.path() + ": tensor " + t.name() + " has " + t.rows() + " x " + t.rowLength() + " values, expected "
                    + c.ropeDims() / 2 + " (half the rotated dims); the file is corrupt");
        }
        float[] f = t.dequantizeRow(0);
        for (int i = 0; i < f.length; i++) {
            if (!(f[i] > 0 && f[i] < Float.POSITIVE_INFINITY)) {
                throw new CriaException(file.path() + ": tensor " + t.name() + "[" + i + "] = " + f[i]
                        + " is not a usable rope frequency factor (finite and positive); the file is corrupt");
            }
        }
        return f;
    }

    private LlamaWeights(Checked w, Backend backend, Consumer<String> warn) {
        tied = w.out == null;
        ropeFactors = w.ropeFactors;
        longRope = w.longRope;
        tokenEmbedding = backend.weight(w.emb);
        outputNorm = backend.weight(w.outNorm);
        output = tied ? tokenEmbedding : backend.weight(w.out);
        attnNorm = resident(backend, w.blk[0]);
        wq = resident(backend, w.blk[1]);
        wk = resident(backend, w.blk[2]);
        wv = resident(backend, w.blk[3]);
        wo = resident(backend, w.blk[4]);
        ffnNorm = resident(backend, w.blk[5]);
        gate = resident(backend, w.blk[6]);
        up = resident(backend, w.blk[7]);
        down = resident(backend, w.blk[8]);
        qBias = resident(backend, w.bias[0]);
        kBias = resident(backend, w.bias[1]);
        vBias = resident(backend, w.bias[2]);
        qNorm = resident(backend, w.qkNorm[0]);
        kNorm = resident(backend, w.qkNorm[1]);
        attnPostNorm = resident(backend, w.postNorm[0]);
        ffnPostNorm = resident(backend, w.postNorm[1]);
        int[] matrices = {1, 2, 3, 4, 6, 7, 8};
        lowRankA = new Weight[matrices.length][];
        lowRankB = new Weight[matrices.length][];
        for (int r = 0; r < matrices.length; r++) {
            lowRankA[r] = resident(backend, w.factorA[matrices[r]]);
            lowRankB[r] = resident(backend, w.factorB[matrices[r]]);
        }
        if (w.unused != null) {
            warn.accept(w.unused); // only once the model is known to load: a refused file gets one line
        }
    }

    /**
     * Finds and checks every weight the configuration needs: names, shapes, types, the layer
     * count against the tensor table, rope factors.
     *
     * @throws CriaException when a tensor is missing, has the wrong shape or type, or the file
     *                       holds layers the metadata does not count
     */
    public static Checked check(GgufFile file, LlamaConfig config) {
        return new Checked(file, config);
    }

    /** Finds, checks and makes resident every weight of the model. */
    public static LlamaWeights load(GgufFile file, LlamaConfig config, Backend backend) {
        return load(check(file, config), backend, w -> { });
    }

    /**
     * Makes checked weights resident; {@code warn} receives one line about tensors the model does
     * not use (harmless, but worth knowing).
     */
    public static LlamaWeights load(Checked weights, Backend backend, Consumer<String> warn) {
        return new LlamaWeights(weights, backend, warn);
    }

    /** Tensors a llama graph knows besides the per-layer ones. */
    private static final Set<String> GLOBAL = Set.of("token_embd.weight", "output_norm.weight", "output.weight", "rope_freqs.weight");
    /** Per-layer tensors ({@code blk.N.<name>}) the llama graph uses. */
    private static final Set<String> PER_LAYER = Set.of("attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
            "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight");
    /** Per-layer tensors the graph uses where a file has them (qwen2's q, k, v biases; llama.cpp reads them for llama too). */
    private static final Set<String> PER_LAYER_BIASES = Set.of("attn_q.bias", "attn_k.bias", "attn_v.bias");
    /** Per-layer tensors of the architectures with per-head q/k norms (qwen3). */
    private static final Set<String> PER_LAYER_QK_NORM = Set.of("attn_q_norm.weight", "attn_k_norm.weight");
    /** Per-layer tensors of Gemma files: the norms of the attention and feed-forward outputs. */
    private static final Set<String> PER_LAYER_POST_NORM = Set.of("post_attention_norm.weight", "post_ffw_norm.weight");
    /** The fewest per-layer tensors of a file with fused matrices (phi3: norms, attn_qkv, attn_output, ffn_up, ffn_down). */
    private static final int PER_LAYER_FUSED_MIN = 6;
    /** Per-layer factor tensors of factorized block matrices ({@link LowRankTensors}). */
    private static final Set<String> FACTORS = Set.copyOf(LowRankTensors.factorRoleNames());
    /** Per-layer tensors llama.cpp's converters may write that the graph does not need (rope caches of old conversions). */
    private static final Set<String> PER_LAYER_IGNORED = Set.of("attn_rot_embd");

    /**
     * Checked before anything is allocated per layer: the layer count against the tensor table
     * (every layer needs at least nine tensors, so a huge block_count is refused at once), tensors of
     * layers beyond block_count (the metadata and the tensors disagree: refused), and tensors the
     * graph does not know (the one-line warning returned, or null).
     */
    private static String checkTensorNames(GgufFile file, int layers, boolean qkNorm, boolean fused, boolean gemma) {
        long needed = (long) (fused ? PER_LAYER_FUSED_MIN : PER_LAYER.size()) * layers + 2;
        if (needed > file.tensors().size()) {
            throw new CriaException(file.path() + ": block_count says " + layers + " layers, which need at least " + needed
                    + " tensors, but the file has " + file.tensors().size() + "; the metadata and the tensors disagree");
        }
        List<String> unknown = new ArrayList<>();
        for (GgufTensorInfo t : file.tensors()) {
            String name = t.name();
            if (GLOBAL.contains(name)) {
                continue;
            }
            if (name.startsWith("blk.")) {
                int dot = name.indexOf('.', 4);
                String num = dot < 0 ? "" : name.substring(4, dot);
                if (!num.isEmpty() && num.length() <= 9 && num.chars().allMatch(ch -> ch >= '0' && ch <= '9')) {
                    int layer = Integer.parseInt(num);
                    String role = name.substring(dot + 1);
                    boolean known = PER_LAYER.contains(role) || FACTORS.contains(role) || PER_LAYER_BIASES.contains(role)
                            || (qkNorm && PER_LAYER_QK_NORM.contains(role)) || (fused && role.equals("attn_qkv.weight"))
                            || (gemma && PER_LAYER_POST_NORM.contains(role))
                            || PER_LAYER_IGNORED.contains(role.replaceFirst("\\.weight$", ""));
                    if (layer >= layers && known) {
                        throw new CriaException(file.path() + ": tensor " + name + " belongs to layer " + layer + " but block_count says "
                                + layers + " layers; the metadata and the tensors disagree");
                    }
                    if (layer < layers && known) {
                        continue;
                    }
                }
            }
            unknown.add(name);
        }
        if (unknown.isEmpty()) {
            return null;
        }
        return ("cria: warning: " + file.path() + ": " + unknown.size() + " tensor" + (unknown.size() == 1 ? "" : "s")
                    + " not used by the llama graph, ignored (" + String.join(", ", unknown.subList(0, Math.min(3, unknown.size())))
                    + (unknown.size() > 3 ? ", ..." : "") + ")");
    }

    /** The tensors made resident (null stays null: a matrix in the other form). */
    private static Weight[] resident(Backend b, Tensor[] ts) {
        Weight[] w = new Weight[ts.length];
        for (int i = 0; i < ts.length; i++) {
            w[i] = ts[i] == null ? null : b.weight(ts[i]);
        }
        return w;
    }

    /** True when at least one block matrix is factorized. */
    public boolean factorized() {
        for (Weight[] a : lowRankA) {
            for (Weight x : a) {
                if (x != null) {
                    return true;
                }
            }
        }
        return false;
    }

    private static Tensor need(GgufFile f, String name, long... shape) {
        Tensor t = optional(f, name, shape);
        if (t == null) {
            throw new CriaException(f.path() + ": tensor " + name + " is missing; the file is incomplete or not a Llama model");
        }
        return t;
    }

    /**
     * A bias vector, if the file has one: F32 only (what llama.cpp's converters write for vectors;
     * the bias kernels add floats as they are).
     */
    private static Tensor optionalBias(GgufFile f, String name, int width) {
        Tensor t = optional(f, name, width);
        if (t != null && t.type() != GgmlType.F32) {
            throw new CriaException(f.path() + ": tensor " + name + " is a bias of type " + t.type() + "; Cria runs F32 biases");
        }
        return t == null ? null : finite(f, t);
    }

    /** A small vector (a bias, a per-head norm) whose every value is finite: NaN or infinity there would reach every logit. */
    private static Tensor finite(GgufFile f, Tensor t) {
        float[] v = dequantizeAll(t);
        for (int i = 0; i < v.length; i++) {
            if (!Float.isFinite(v[i])) {
                throw new CriaException(f.path() + ": tensor " + t.name() + "[" + i + "] = " + v[i] + " is not finite; the file is corrupt");
            }
        }
        return t;
    }

    private static Tensor optional(GgufFile f, String name, long... shape) {
        GgufTensorInfo info = f.tensor(name);
        if (info == null) {
            return null;
        }
        long[] s = info.shape();
        long[] trimmed = s;
        // ggml may store trailing dimensions of 1; compare without them.
        int len = s.length;
        while (len > shape.length && s[len - 1] == 1) {
            len--;
        }
        trimmed = Arrays.copyOf(s, len);
        if (!Arrays.equals(trimmed, shape)) {
            throw new CriaException(f.path() + ": tensor " + name + " has shape " + Arrays.toString(s)
                    + " but the model's metadata implies " + Arrays.toString(shape));
        }
        if (!Codecs.supports(info.type())) {
            throw new CriaException(f.path() + ": tensor " + name + " has type " + info.type()
                    + ", which Cria cannot run yet; re-quantize the model to one of " + Codecs.supportedList());
        }
        if (shape.length == 1 && info.type() != GgmlType.F32 && info.type() != GgmlType.F16 && info.type() != GgmlType.BF16) {
            throw new CriaException(f.path() + ": tensor " + name + " is a vector of type " + info.type() + "; expected F32");
        }
        return Tensor.of(f, info);
    }

    private static float[] dequantizeAll(Tensor t) {
        float[] out = new float[Math.toIntExact(t.rows() * t.rowLength())];
        for (long r = 0; r < t.rows(); r++) {
            t.dequantizeRow(r, out, (int) (r * t.rowLength()));
        }
        return out;
    }
}
