// Which type each tensor gets when a model is quantized: llama.cpp's rules (which tensors, the _M/_S/_L mixes, fallbacks, order).
package cria.quantize;

import cria.gguf.GgmlType;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The per-tensor types llama-quantize would choose, so that Cria's quantized files match
 * llama.cpp's. An importance matrix changes a few choices (as in llama.cpp: the first ffn_down
 * layers of Q4_0/Q5_0 get Q4_1/Q5_1, IQ4_NL/IQ4_XS no longer give them Q5_K) and is what Q2_K_S
 * needs (see {@link #requiresImportance}). Only 2-D and larger tensors whose names end in
 * {@code weight} are quantized, never norms and a few small special tensors; with {@code pure}
 * every such tensor gets the file type's base type, otherwise the mix rules apply (the output
 * matrix in Q6_K, some attn_v and ffn_down layers with more bits, ...). Tensors are listed in
 * llama.cpp's output order: non-layer tensors first, then by layer number, by name within each.
 */
public final class QuantPlan {

    /** One tensor's fate: {@code target} equal to the source type means a plain copy. */
    public record Item(GgufTensorInfo tensor, GgmlType target, String note) {
        /** True when the bytes change. */
        public boolean converts() {
            return target != tensor.type();
        }
    }

    private enum Category { TOKEN_EMBD, ATTENTION_Q, ATTENTION_V, ATTENTION_K, ATTENTION_QKV, ATTENTION_KV_B,
        ATTENTION_OUTPUT, FFN_UP, FFN_GATE, FFN_DOWN, OUTPUT, OTHER }

    private static final Pattern LAYER = Pattern.compile("^blk\\.([+-]?\\d{1,9})");

    private final LlamaFileType ftype;
    private final boolean pure;
    private final boolean hasImatrix;
    private final String arch;
    private final int nGqa;
    private final int nExpert;
    private final boolean is70B;
    private int nLayer;
    private int nAttentionWv;
    private int iAttentionWv;
    private int iFfnDown;
    private boolean tiedEmbeddings = true;
    private final java.util.Map<String, GgmlType> factorTypes = new java.util.HashMap<>();

    private QuantPlan(Metadata md, LlamaFileType ftype, boolean pure, boolean hasImatrix) {
        this.ftype = ftype;
        this.pure = pure;
        this.hasImatrix = hasImatrix;
        this.arch = md.string("general.architecture").orElse("");
        this.nLayer = first(md, arch + ".block_count", 0);
        int nHead = first(md, arch + ".attention.head_count", 0);
        int nHeadKv = first(md, arch + ".attention.head_count_kv", nHead);
        this.nGqa = nHeadKv > 0 ? nHead / nHeadKv : 0;
        this.nExpert = first(md, arch + ".expert_count", 0);
        // llama.cpp calls an 80-layer llama with grouped-query attention "70B" and gives its attn_v more bits
        this.is70B = arch.equals("llama") && nLayer == 80 && nHead != nHeadKv;
    }

    /** The types of every tensor of a model, in llama.cpp's order, quantized without an importance matrix. */
    public static List<Item> of(Metadata md, List<GgufTensorInfo> tensors, LlamaFileType ftype, boolean pure) {
        return of(md, tensors, ftype, pure, false);
    }

    /**
     * The types of every tensor of a model, in llama.cpp's order; {@code hasImatrix}: an
     * importance matrix will be used (which changes some of llama.cpp's choices).
     */
    public static List<Item> of(Metadata md, List<GgufTensorInfo> tensors, LlamaFileType ftype, boolean pure, boolean hasImatrix) {
        QuantPlan p = new QuantPlan(md, ftype, pure, hasImatrix);
        List<GgufTensorInfo> sorted = new ArrayList<>(tensors);
        sorted.sort(LLAMA_ORDER);
        boolean countLayers = p.nLayer == 0;
        for (GgufTensorInfo t : sorted) {
            if (countLayers) {
                p.nLayer = Math.max(p.nLayer, layerOf(t.name()) + 1);
            }
            if (secondFactor(t.name())) {
                continue; // a factorized matrix counts once, at its first factor
            }
            Category c = category(factorRole(t.name()));
            if (c == Category.ATTENTION_V || c == Category.ATTENTION_QKV || c == Category.ATTENTION_KV_B) {
                p.nAttentionWv++;
            }
            if (c == Category.OUTPUT) {
                p.tiedEmbeddings = false;
            }
        }
        List<Item> out = new ArrayList<>(sorted.size());
        for (GgufTensorInfo t : sorted) {
            out.add(p.choose(t));
        }
        return out;
    }

    /** llama.cpp's tensor order: layer number first (tensors outside layers before blk.0), then name bytes. */
    public static final Comparator<GgufTensorInfo> LLAMA_ORDER = (a, b) -> {
        int la = layerOf(a.name());
        int lb = layerOf(b.name());
        if (la != lb) {
            return Integer.compare(la, lb);
        }
        return Arrays.compareUnsigned(a.name().getBytes(StandardCharsets.UTF_8), b.name().getBytes(StandardCharsets.UTF_8));
    };

    private static int layerOf(String name) {
        Matcher m = LAYER.matcher(name);
        return m.find() ? Integer.parseInt(m.group(1)) : -1;
    }

    /**
     * Whether llama-quantize refuses to make this tensor without importance data (its
     * tensor_requires_imatrix): the Q2_K matrices of a Q2_K_S file, except token_embd and output.
     */
    public static boolean requiresImportance(Item it, LlamaFileType ftype) {
        String name = it.tensor().name();
        return quantizable(it.tensor()) && it.target() == GgmlType.Q2_K && ftype == LlamaFileType.Q2_K_S
                && !isTokenEmbedding(name) && !name.equals("output.weight");
    }

    /** llama.cpp's token-embedding names (whose importance entry may mismatch and is then ignored). */
    public static boolean isTokenEmbedding(String name) {
        return name.equals("token_embd.weight") || name.equals("per_layer_token_embd.weight");
    }

    /** Whether llama-quantize would touch this tensor at all. */
    public static boolean quantizable(GgufTensorInfo t) {
        String name = t.name();
        if (dims(t.shape()) < 2 || !name.endsWith("weight")) {
            return false;
        }
        String[] never = {"_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj",
            "ssm_conv1d", "shortconv.conv.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.",
            "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "time_mix_first.weight", "time_mix_w0.weight",
            "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
            "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
            "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight"};
        for (String s : never) {
            if (name.contains(s)) {
                return false;
            }
        }
        return !name.equals("position_embd.weight") && !name.equals("token_types.weight");
    }

    /** ggml_n_dims: trailing dimensions of size 1 do not count. */
    private static int dims(long[] shape) {
        for (int i = shape.length - 1; i >= 1; i--) {
            if (shape[i] > 1) {
                return i + 1;
            }
        }
        return 1;
    }

    private Item choose(GgufTensorInfo t) {
        if (!quantizable(t)) {
            return new Item(t, t.type(), "kept");
        }
        GgmlType type = ftype.baseType();
        if (!pure && type.isQuantized()) {
            // low-rank factors get their dense matrix's type; the second takes the first's (the mix counts each matrix once)
            String role = factorRole(t.name());
            type = secondFactor(t.name()) && factorTypes.containsKey(role) ? factorTypes.get(role) : mix(t, type, category(role));
            if (!role.equals(t.name())) {
                factorTypes.put(role, type);
            }
        }
        // llama.cpp skips this check with --pure and then fails; Cria falls back either way
        long cols = t.shape()[0];
        if (cols % type.blockSize() != 0) {
            GgmlType fb = switch (type) {
                case IQ4_XS -> GgmlType.IQ4_NL;
                case Q2_K, Q3_K -> GgmlType.Q4_0;
                case Q4_K -> GgmlType.Q5_0;
                case Q5_K -> GgmlType.Q5_1;
                case Q6_K -> GgmlType.Q8_0;
                default -> GgmlType.F16; // llama.cpp refuses here; F16 keeps every shape
            };
            if (cols % fb.blockSize() != 0) {
                fb = GgmlType.F16;
            }
            return new Item(t, fb, "rows of " + cols + " do not fit " + type + " blocks of " + type.blockSize() + ": " + fb + " instead");
        }
        return new Item(t, type, type == ftype.baseType() ? "" : "mix");
    }

    private static Category category(String name) {
        if (name.equals("output.weight")) {
            return Category.OUTPUT;
        }
        if (isTokenEmbedding(name)) {
            return Category.TOKEN_EMBD;
        }
        String[][] byPart = {{"attn_qkv.weight", "ATTENTION_QKV"}, {"attn_kv_b.weight", "ATTENTION_KV_B"},
            {"attn_v.weight", "ATTENTION_V"}, {"attn_k.weight", "ATTENTION_K"}, {"attn_q.weight", "ATTENTION_Q"},
            {"attn_output.weight", "ATTENTION_OUTPUT"}, {"ffn_up", "FFN_UP"}, {"ffn_gate", "FFN_GATE"}, {"ffn_down", "FFN_DOWN"}};
        for (String[] p : byPart) {
            if (name.contains(p[0])) {
                return Category.valueOf(p[1]);
            }
        }
        return Category.OTHER;
    }

    /**
     * The dense matrix a low-rank factor stands for ({@code blk.N.<role>_lr_a.weight} and
     * {@code _lr_b.weight} → {@code blk.N.<role>.weight}, cria.model.LowRankTensors), else the name itself.
     */
    static String factorRole(String name) {
        for (String suffix : new String[] {"_lr_a.weight", "_lr_b.weight"}) {
            if (name.startsWith("blk.") && name.endsWith(suffix)) {
                return name.substring(0, name.length() - suffix.length()) + ".weight";
            }
        }
        return name;
    }

    private static boolean secondFactor(String name) {
        return name.startsWith("blk.") && name.endsWith("_lr_b.weight");
    }

    /** llama.cpp's "use more bits" layers: the first and last eighth, and every third in between. */
    private static boolean moreBits(int i, int n) {
        return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    }

    /** The layer a per-layer tensor belongs to: counted in order, or read from the name for mixtures of experts. */
    private int layer(int counter, String name) {
        if (nExpert > 1) {
            int l = layerOf(name);
            return l < 0 ? counter : l;
        }
        return counter;
    }

    /** llama_tensor_get_type_impl for the file types Cria produces. */
    private GgmlType mix(GgufTensorInfo t, GgmlType type, Category cat) {
        LlamaFileType f = ftype;
        boolean falcon = arch.equals("falcon");
        if (cat == Category.OUTPUT || (tiedEmbeddings && cat == Category.TOKEN_EMBD)) {
            if (falcon || t.shape()[0] % type.blockSize() != 0) {
                return GgmlType.Q8_0;
            }
            return type != GgmlType.Q8_0 ? GgmlType.Q6_K : type;
        }
        switch (cat) {
            // the token_embd, attn_q, ffn_gate and ffn_up rules only concern IQ1/IQ2/IQ3/TQ file types
            case TOKEN_EMBD, ATTENTION_Q, FFN_GATE, FFN_UP, OTHER -> { }
            case ATTENTION_V, ATTENTION_QKV, ATTENTION_KV_B -> {
                // llama.cpp has a separate attn_qkv rule, but tests attn_qkv as attn_v-like first: that rule never runs
                if (f == LlamaFileType.Q2_K) {
                    type = nGqa >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K;
                } else if (f == LlamaFileType.Q2_K_S && nGqa >= 4) {
                    type = GgmlType.Q4_K;
                } else if (f == LlamaFileType.Q3_K_M) {
                    type = iAttentionWv < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
                } else if (f == LlamaFileType.Q3_K_L) {
                    type = GgmlType.Q5_K;
                } else if (isAny(f, LlamaFileType.IQ4_NL, LlamaFileType.IQ4_XS) && nGqa >= 4) {
                    type = GgmlType.Q5_K;
                } else if (isAny(f, LlamaFileType.Q4_K_M, LlamaFileType.Q5_K_M) && moreBits(iAttentionWv, nAttentionWv)) {
                    type = GgmlType.Q6_K;
                } else if (f == LlamaFileType.Q4_K_S && iAttentionWv < 4) {
                    type = GgmlType.Q5_K;
                }
                if (is70B && (type == GgmlType.Q3_K || type == GgmlType.Q4_K)) {
                    type = GgmlType.Q5_K;
                }
                if (nExpert == 8) {
                    type = GgmlType.Q8_0;
                }
                iAttentionWv++;
            }
            case ATTENTION_K -> {
                if (nExpert == 8) {
                    type = GgmlType.Q8_0;
                }
            }
            case FFN_DOWN -> {
                int i = layer(iFfnDown, t.name());
                int n = nLayer;
                if (f == LlamaFileType.Q2_K) {
                    type = GgmlType.Q3_K;
                } else if (f == LlamaFileType.Q2_K_S) {
                    if (i < n / 8) {
                        type = GgmlType.Q4_K;
                    }
                } else if (f == LlamaFileType.Q3_K_M) {
                    type = i < n / 16 ? GgmlType.Q5_K : (!falcon || moreBits(i, n)) ? GgmlType.Q4_K : GgmlType.Q3_K;
                } else if (f == LlamaFileType.Q3_K_L) {
                    type = falcon ? GgmlType.Q4_K : GgmlType.Q5_K;
                } else if (f == LlamaFileType.Q4_K_M) {
                    if (falcon) {
                        type = i < n / 16 ? GgmlType.Q6_K : moreBits(i, n) ? GgmlType.Q5_K : GgmlType.Q4_K;
                    } else if (moreBits(i, n)) {
                        type = GgmlType.Q6_K;
                    }
                } else if (i < n / 8 && isAny(f, LlamaFileType.IQ4_NL, LlamaFileType.IQ4_XS) && !hasImatrix) {
                    type = GgmlType.Q5_K;
                } else if (f == LlamaFileType.Q5_K_M && moreBits(i, n)) {
                    type = GgmlType.Q6_K;
                } else if (f == LlamaFileType.Q4_K_S && !falcon && i < n / 8) {
                    type = GgmlType.Q5_K;
                } else if (isAny(f, LlamaFileType.Q4_0, LlamaFileType.Q5_0) && hasImatrix && i < n / 8) {
                    // llama.cpp guards the first ffn_down layers with the _1 types, only when an imatrix is given
                    type = f == LlamaFileType.Q4_0 ? GgmlType.Q4_1 : GgmlType.Q5_1;
                }
                iFfnDown++;
            }
            case ATTENTION_OUTPUT -> {
                if (!falcon) {
                    if (nExpert == 8) {
                        if (isAny(f, LlamaFileType.Q2_K, LlamaFileType.Q3_K_S, LlamaFileType.Q3_K_M, LlamaFileType.IQ4_NL,
                                LlamaFileType.Q4_K_S, LlamaFileType.Q4_K_M, LlamaFileType.IQ4_XS)) {
                            type = GgmlType.Q5_K;
                        }
                    } else if (f == LlamaFileType.Q2_K) {
                        type = GgmlType.Q3_K;
                    } else if (f == LlamaFileType.Q3_K_M) {
                        type = GgmlType.Q4_K;
                    } else if (f == LlamaFileType.Q3_K_L) {
                        type = GgmlType.Q5_K;
                    }
                } else if (f == LlamaFileType.Q3_K_L) {
                    type = GgmlType.Q4_K;
                }
            }
        }
        return type;
    }

    private static boolean isAny(LlamaFileType f, LlamaFileType... options) {
        for (LlamaFileType o : options) {
            if (f == o) {
                return true;
            }
        }
        return false;
    }

    /** An integer hyper-parameter that may be stored per layer (an array): its first value. */
    private static int first(Metadata md, String key, int fallback) {
        GgufValue v = md.get(key);
        if (v == null) {
            return fallback;
        }
        if (v.isArray()) {
            int[] a = md.ints(key).orElse(new int[0]);
            return a.length > 0 ? a[0] : fallback;
        }
        Long l = v.asLong();
        return l == null ? fallback : (int) (long) l;
    }
}
