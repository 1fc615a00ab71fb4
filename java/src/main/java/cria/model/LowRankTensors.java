// The GGUF convention for low-rank factorized matrices: two factor tensors in place of one dense block matrix.
package cria.model;

import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import java.util.List;

/**
 * How a factorized matrix is stored. A block matrix {@code blk.N.<role>.weight} (ggml shape
 * {@code [n_in, n_out]}: n_out rows of n_in values, {@code y = W·x}) may be replaced by two
 * tensors whose product approximates it, {@code W ≈ B·A}:
 * <ul>
 *   <li>{@code blk.N.<role>_lr_a.weight}, ggml shape {@code [n_in, k]}: the factor applied first,
 *       {@code t = A·x} (k rows of n_in values);</li>
 *   <li>{@code blk.N.<role>_lr_b.weight}, ggml shape {@code [k, n_out]}: applied second,
 *       {@code y = B·t} (n_out rows of k values).</li>
 * </ul>
 * {@code <role>} is one of {@link #ROLES}; the rank k is at least 1 and at most
 * {@code min(n_in, n_out)}. A matrix is either dense or factorized, never both; roles and layers
 * may mix. Each factor may have any weight type Cria runs (the row length k of B must then be a
 * whole number of the type's blocks). The file also carries {@link #KEY_METHOD} and
 * {@link #KEY_KEEP} (informational: nothing reads them to run the model).
 *
 * <p>The suffix is {@code _lr_a}/{@code _lr_b} rather than {@code _a}/{@code _b} because
 * llama.cpp already names DeepSeek's attention tensors {@code attn_q_a}, {@code attn_q_b},
 * {@code attn_k_b} and {@code attn_v_b} (with a norm between the two, a different meaning). No
 * other engine reads these tensors: {@code cria lowrank --dense} writes B·A back as the dense
 * tensor for them.
 */
public final class LowRankTensors {
    private LowRankTensors() {}

    /** The block matrices that may be factorized, in the forward pass's order. */
    public static final List<String> ROLES = List.of("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down");
    /** Suffix of the first factor's role name. */
    public static final String SUFFIX_A = "_lr_a";
    /** Suffix of the second factor's role name. */
    public static final String SUFFIX_B = "_lr_b";
    /** Metadata: how the factors were made ("svd" or "svd-llm"). */
    public static final String KEY_METHOD = "cria.lowrank.method";
    /** Metadata: the fraction of the chosen matrices' parameters kept (float32). */
    public static final String KEY_KEEP = "cria.lowrank.keep";
    /** Metadata: the roles that were chosen (comma-separated). */
    public static final String KEY_TARGETS = "cria.lowrank.targets";

    /**
     * The rank {@code cria lowrank} gives an m × n matrix at a parameter budget: the largest
     * multiple of {@code step} with {@code k·(m+n) ≤ keep·m·n}; 0 when that is below {@code step}
     * or the factors would not be smaller than the matrix ({@code k·(m+n) ≥ m·n}): the matrix
     * then stays dense.
     */
    public static int rank(long m, long n, double keep, int step) {
        if (!(keep > 0 && keep < 1) || step < 1 || m < 1 || n < 1) {
            throw new IllegalArgumentException("rank(" + m + ", " + n + ", " + keep + ", " + step + ")");
        }
        long k = (long) Math.floor(keep * m * n / (m + n));
        k = k / step * step;
        if (k < step || k * (m + n) >= m * n || k > Math.min(m, n)) {
            return 0;
        }
        return (int) k;
    }

    /** {@code blk.<layer>.<role>.weight}. */
    public static String dense(int layer, String role) {
        return "blk." + layer + "." + role + ".weight";
    }

    /** {@code blk.<layer>.<role>_lr_a.weight}: the factor applied first. */
    public static String a(int layer, String role) {
        return "blk." + layer + "." + role + SUFFIX_A + ".weight";
    }

    /** {@code blk.<layer>.<role>_lr_b.weight}: the factor applied second. */
    public static String b(int layer, String role) {
        return "blk." + layer + "." + role + SUFFIX_B + ".weight";
    }

    /** The role name of a factor without its layer ({@code attn_q_lr_a.weight}), for each role and both factors. */
    static List<String> factorRoleNames() {
        List<String> names = new java.util.ArrayList<>();
        for (String r : ROLES) {
            names.add(r + SUFFIX_A + ".weight");
            names.add(r + SUFFIX_B + ".weight");
        }
        return names;
    }

    /** The dense tensor name a factor stands for ({@code blk.3.ffn_up_lr_b.weight → blk.3.ffn_up.weight}), or null. */
    public static String denseOf(String name) {
        for (String suffix : new String[] {SUFFIX_A, SUFFIX_B}) {
            String end = suffix + ".weight";
            if (name.startsWith("blk.") && name.endsWith(end)) {
                return name.substring(0, name.length() - end.length()) + ".weight";
            }
        }
        return null;
    }

    /** True when the file holds at least one factor tensor. */
    public static boolean isFactorized(GgufFile file) {
        return firstFactor(file) != null;
    }

    /** The name of the file's first factor tensor, or null. */
    public static String firstFactor(GgufFile file) {
        for (GgufTensorInfo t : file.tensors()) {
            if (denseOf(t.name()) != null) {
                return t.name();
            }
        }
        return null;
    }

    /**
     * The ggml shape {@code [n_in, n_out]} of a block matrix: the dense tensor's, or the one its
     * factor pair implies ({@code [ne0 of A, ne1 of B]}), or null when the file has neither.
     */
    public static long[] matrixShape(GgufFile file, String denseName) {
        GgufTensorInfo d = file.tensor(denseName);
        if (d != null) {
            return d.shape();
        }
        String stem = denseName.substring(0, denseName.length() - ".weight".length());
        GgufTensorInfo a = file.tensor(stem + SUFFIX_A + ".weight");
        GgufTensorInfo b = file.tensor(stem + SUFFIX_B + ".weight");
        if (a == null || b == null || a.shape().length < 2 || b.shape().length < 2) {
            return null;
        }
        return new long[] {a.shape()[0], b.shape()[1]};
    }

    /**
     * Refuses a factorized file where only dense weights will do (training): one line naming a
     * factor and saying how to get dense weights.
     */
    public static void requireDense(GgufFile file, String what) {
        String f = firstFactor(file);
        if (f != null) {
            throw new cria.CriaException(file.path() + " is a low-rank factorized model (" + f + "), which " + what
                    + " cannot use yet; multiply the factors back first (cria lowrank -m " + file.path() + " --dense -o dense.gguf)"
                    + " and train on that: a LoRA adapter trained on it runs on the factorized model too");
        }
    }
}
