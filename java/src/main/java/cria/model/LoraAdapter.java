// A LoRA adapter file (llama.cpp's GGUF format), mapped and checked against the base model it will be applied to.
package cria.model;

import cria.CriaException;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A low-rank adapter in llama.cpp's LoRA GGUF format: metadata {@code general.type = "adapter"},
 * {@code adapter.type = "lora"}, {@code adapter.lora.alpha} and the base's
 * {@code general.architecture}; for each adapted base tensor {@code W} (ggml shape
 * {@code [n_in, n_out]}) a pair {@code W.lora_a} of shape {@code [n_in, r]} and {@code W.lora_b}
 * of shape {@code [r, n_out]}, in F32, F16 or BF16. The adapted product is
 * {@code y = W·x + s·B·(A·x)} with {@code s = scale · alpha / r}, or {@code s = scale} when alpha
 * is 0 (llama.cpp's rule; r is the pair's own rank).
 *
 * <p>{@link #open} checks everything before any value is read: the type keys, the architecture
 * against the base's, that every tensor is half of a complete pair, that the adapted tensor exists
 * in the base and is a product Cria applies adapters to, the shapes against the base tensor, the
 * rank (1 to {@link #MAX_RANK}) and a finite alpha. Each failure is one line naming the adapter
 * file and the tensor. Tensors named {@code *_norm.weight} are skipped, as llama.cpp skips them
 * ({@link #ignored()}). The values themselves are checked (finite) when they are read, by
 * {@link LoraStack}.
 *
 * <p>The file stays mapped until {@link #close()}; the tensors' data are slices of it.
 */
public final class LoraAdapter implements AutoCloseable {
    /** Metadata key naming what a GGUF holds; {@value #ADAPTER} for an adapter. */
    public static final String KEY_GENERAL_TYPE = "general.type";
    /** The value of {@link #KEY_GENERAL_TYPE} for adapters. */
    public static final String ADAPTER = "adapter";
    /** Metadata key naming the kind of adapter; {@value #LORA} for LoRA. */
    public static final String KEY_ADAPTER_TYPE = "adapter.type";
    /** The value of {@link #KEY_ADAPTER_TYPE} for LoRA adapters. */
    public static final String LORA = "lora";
    /** Metadata key of the LoRA alpha (float32; 0 or absent means the scale is the user's scale alone). */
    public static final String KEY_ALPHA = "adapter.lora.alpha";
    /** Metadata key of the model architecture; must equal the base model's. */
    public static final String KEY_ARCHITECTURE = "general.architecture";
    /** Metadata key of activated LoRA's invocation tokens (adapters Cria cannot apply). */
    public static final String KEY_ALORA_INVOCATION = "adapter.alora.invocation_tokens";
    /** Suffix of the down-projection tensor A ([n_in, r]) of a base tensor. */
    public static final String SUFFIX_A = ".lora_a";
    /** Suffix of the up-projection tensor B ([r, n_out]) of a base tensor. */
    public static final String SUFFIX_B = ".lora_b";
    /** The largest rank accepted. */
    public static final int MAX_RANK = 4096;

    /** Per-layer products adapters may change ({@code blk.N.<role>}). */
    static final List<String> LAYER_ROLES = List.of("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
            "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight", "attn_qkv.weight");
    /** The one global product adapters may change (when the model has its own output matrix). */
    static final String OUTPUT = "output.weight";

    /** One adapted base tensor: its name, the A and B tensors (slices of the adapter file), and the pair's rank. */
    public record Pair(String base, Tensor a, Tensor b, int rank) {
        /** Input width of the adapted product (the base's ne[0]). */
        public int inputs() {
            return a.rowLength();
        }

        /** Output width of the adapted product (the base's ne[1]). */
        public int outputs() {
            return Math.toIntExact(b.rows());
        }
    }

    private final GgufFile file;
    private final float alpha;
    private final String architecture;
    private final Map<String, Pair> pairs;
    private final List<String> ignored;

    private LoraAdapter(GgufFile file, float alpha, String architecture, Map<String, Pair> pairs, List<String> ignored) {
        this.file = file;
        this.alpha = alpha;
        this.architecture = architecture;
        this.pairs = Collections.unmodifiableMap(pairs);
        this.ignored = List.copyOf(ignored);
    }

    /**
     * Maps an adapter file and checks it against the base model it will be applied to.
     *
     * @throws CriaException (one line naming the file and the tensor) when the file is missing,
     *                       not a LoRA adapter, made for another architecture or model, or inconsistent
     */
    public static LoraAdapter open(Path path, GgufFile base) {
        GgufFile f = GgufFile.open(path);
        try {
            return check(f, base);
        } catch (RuntimeException | Error e) {
            f.close();
            throw e;
        }
    }

    private static LoraAdapter check(GgufFile f, GgufFile base) {
        String where = f.path().toString();
        String type = f.metadata().string(KEY_GENERAL_TYPE).orElse(null);
        if (!ADAPTER.equals(type)) {
            throw new CriaException(where + ": not a LoRA adapter (" + KEY_GENERAL_TYPE + " is "
                    + (type == null ? "absent" : GgufValue.quote(type)) + ", expected \"" + ADAPTER
                    + "\"); give the base model with -m and adapters with --lora");
        }
        String kind = f.metadata().string(KEY_ADAPTER_TYPE).orElse(null);
        if (!LORA.equals(kind)) {
            throw new CriaException(where + ": " + KEY_ADAPTER_TYPE + " is " + (kind == null ? "absent" : GgufValue.quote(kind))
                    + "; Cria applies LoRA adapters (\"" + LORA + "\") only");
        }
        if (f.metadata().has(KEY_ALORA_INVOCATION)) {
            throw new CriaException(where + ": an activated LoRA (" + KEY_ALORA_INVOCATION + "), which Cria cannot apply yet");
        }
        String arch = f.metadata().string(KEY_ARCHITECTURE).orElse(null);
        String baseArch = base.metadata().string(KEY_ARCHITECTURE).orElse("");
        if (arch == null || !arch.equals(baseArch)) {
            throw new CriaException(where + ": the adapter is for architecture " + (arch == null ? "(none given)" : GgufValue.quote(arch))
                    + " but the base model " + base.path() + " is " + GgufValue.quote(baseArch) + "; use an adapter made for this model");
        }
        double a = f.metadata().number(KEY_ALPHA).orElse(0.0);
        if (!Double.isFinite(a) || Math.abs(a) > Float.MAX_VALUE) {
            throw new CriaException(where + ": " + KEY_ALPHA + " = " + a + " is not a finite number; the adapter is corrupt");
        }
        Map<String, GgufTensorInfo[]> halves = new LinkedHashMap<>();
        List<String> ignored = new ArrayList<>();
        for (GgufTensorInfo t : f.tensors()) {
            String name = t.name();
            int half = name.endsWith(SUFFIX_A) ? 0 : name.endsWith(SUFFIX_B) ? 1 : -1;
            if (half < 0) {
                if (name.endsWith("_norm.weight")) {
                    ignored.add(name); // llama.cpp skips adapted norms too; adapters work without them
                    continue;
                }
                throw new CriaException(where + ": tensor " + name + " is neither a " + SUFFIX_A + " nor a " + SUFFIX_B
                        + " tensor; the file is not a LoRA adapter Cria can read");
            }
            String baseName = name.substring(0, name.length() - SUFFIX_A.length());
            halves.computeIfAbsent(baseName, k -> new GgufTensorInfo[2])[half] = t;
        }
        Set<String> adaptable = adaptable(base);
        Map<String, Pair> pairs = new LinkedHashMap<>();
        for (Map.Entry<String, GgufTensorInfo[]> e : halves.entrySet()) {
            String name = e.getKey();
            GgufTensorInfo ta = e.getValue()[0];
            GgufTensorInfo tb = e.getValue()[1];
            if (ta == null || tb == null) {
                throw new CriaException(where + ": tensor " + name + (ta == null ? SUFFIX_B : SUFFIX_A) + " has no matching "
                        + name + (ta == null ? SUFFIX_A : SUFFIX_B) + "; the adapter is incomplete");
            }
            // a factorized base matrix (LowRankTensors) is adapted as the dense one it stands for
            long[] ws = LowRankTensors.matrixShape(base, name);
            String wShape = ws == null ? "" : java.util.Arrays.toString(ws);
            if (ws == null) {
                throw new CriaException(where + ": tensor " + ta.name() + " adapts " + name + ", which the base model " + base.path()
                        + " does not have; the adapter was made for another model");
            }
            if (!adaptable.contains(name)) {
                throw new CriaException(where + ": tensor " + ta.name() + " adapts " + name
                        + "; Cria applies adapters to attn_q/k/v/output (or a fused attn_qkv), ffn_gate/up/down and output.weight only");
            }
            long[] as = matrix(where, ta);
            long[] bs = matrix(where, tb);
            if (as[0] != ws[0]) {
                throw new CriaException(where + ": tensor " + ta.name() + " has shape " + ta.shapeText() + " but the base's " + name
                        + " has " + wShape + " (ne[0] must agree: " + ws[0] + "); the adapter was made for another model");
            }
            if (bs[1] != ws[1]) {
                throw new CriaException(where + ": tensor " + tb.name() + " has shape " + tb.shapeText() + " but the base's " + name
                        + " has " + wShape + " (ne[1] must agree: " + ws[1] + "); the adapter was made for another model");
            }
            if (as[1] != bs[0]) {
                throw new CriaException(where + ": tensors " + ta.name() + " " + ta.shapeText() + " and " + tb.name() + " "
                        + tb.shapeText() + " disagree on the rank (ne[1] of lora_a must equal ne[0] of lora_b)");
            }
            if (as[1] < 1 || as[1] > MAX_RANK) {
                throw new CriaException(where + ": tensor " + ta.name() + " has rank " + as[1] + ", outside 1.." + MAX_RANK);
            }
            pairs.put(name, new Pair(name, Tensor.of(f, ta), Tensor.of(f, tb), (int) as[1]));
        }
        return new LoraAdapter(f, (float) a, arch, pairs, ignored);
    }

    /** The shape of a 2-D adapter tensor of a readable type (trailing dimensions of 1 allowed). */
    private static long[] matrix(String where, GgufTensorInfo t) {
        long[] s = t.shape();
        for (int d = 2; d < s.length; d++) {
            if (s[d] != 1) {
                throw new CriaException(where + ": tensor " + t.name() + " has shape " + t.shapeText() + "; LoRA tensors are matrices");
            }
        }
        if (t.type() != GgmlType.F32 && t.type() != GgmlType.F16 && t.type() != GgmlType.BF16) {
            throw new CriaException(where + ": tensor " + t.name() + " has type " + t.type() + "; LoRA tensors must be F32, F16 or BF16");
        }
        return new long[] {s[0], s.length > 1 ? s[1] : 1};
    }

    /** The base tensors an adapter may change: the seven products of every layer and output.weight, when the base has them. */
    private static Set<String> adaptable(GgufFile base) {
        Set<String> s = new java.util.HashSet<>();
        for (GgufTensorInfo t : base.tensors()) {
            String n = t.name();
            String dense = LowRankTensors.denseOf(n);
            if (dense != null) {
                n = dense;
            }
            if (n.equals(OUTPUT)) {
                s.add(n);
            } else if (n.startsWith("blk.")) {
                int dot = n.indexOf('.', 4);
                if (dot > 4 && LAYER_ROLES.contains(n.substring(dot + 1)) && n.substring(4, dot).chars().allMatch(Character::isDigit)) {
                    s.add(n);
                }
            }
        }
        return s;
    }

    /** The file, as given. */
    public Path path() {
        return file.path();
    }

    /** The mapped file (its metadata: task name, prompt prefix, training notes). */
    public GgufFile file() {
        return file;
    }

    /** {@code adapter.lora.alpha}; 0 when absent. */
    public float alpha() {
        return alpha;
    }

    /** {@code general.architecture} (equal to the base's). */
    public String architecture() {
        return architecture;
    }

    /** The adapted base tensors, in file order, each with its A and B. */
    public Map<String, Pair> pairs() {
        return pairs;
    }

    /** The pair of a base tensor, or null when this adapter leaves it alone. */
    public Pair pair(String baseName) {
        return pairs.get(baseName);
    }

    /** Adapter tensors skipped as llama.cpp skips them (adapted norms), for a warning. */
    public List<String> ignored() {
        return ignored;
    }

    /**
     * The factor of {@code B·A} for one pair at a user scale: {@code scale · alpha / rank}, or
     * {@code scale} when alpha is 0 (llama.cpp's rule).
     */
    public float scale(Pair p, float userScale) {
        return alpha != 0 ? userScale * alpha / p.rank() : userScale;
    }

    /** Unmaps the file; the pairs' tensors must not be used after. */
    @Override
    public void close() {
        file.close();
    }
}
