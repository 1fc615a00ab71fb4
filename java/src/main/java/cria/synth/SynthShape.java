// The shapes of real Llama-family models, for random-weight test and benchmark files.
package cria.synth;

import cria.CriaException;
import cria.model.Llama;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A model's shape without its weights. Presets follow the published configurations; every field
 * can be overridden. {@code llama3Rope} gives llama3-style rope frequency factors (a
 * {@code rope_freqs.weight} tensor) with that scaling factor, 0 for none. {@code arch} is the
 * architecture written ({@code llama}, {@code qwen2}: q, k, v biases, {@code qwen3}: per-head q/k
 * norms, {@code phi3}: fused q/k/v and gate/up matrices, a SentencePiece vocabulary); {@code keyLength}
 * the width of a head when it is not {@code dim / heads} (0: it is); {@code ropeDims} the rotated
 * values of a head when not all of them rotate (0: all). {@code gemma2} and {@code gemma3} (post-norms,
 * GELU, a SentencePiece vocabulary without a space prefix, always tied; gemma3 with q/k norms) add
 * {@code window} (their sliding window), {@code swaPattern} (layer l is windowed when
 * {@code l % swaPattern < swaPattern - 1}), {@code ropeBaseSwa} (the windowed layers' rope base),
 * {@code attnSoftcap} and {@code finalSoftcap} (gemma2's 50 and 30 by default; gemma3 none); the other
 * architectures leave them 0.
 */
public record SynthShape(String name, int dim, int layers, int heads, int kvHeads, int ffn, int vocab, int context,
                         float ropeBase, boolean tied, float llama3Rope, float rmsEps, String arch, int keyLength, int ropeDims,
                         int window, int swaPattern, float ropeBaseSwa, float attnSoftcap, float finalSoftcap) {

    /** The architectures synth writes. */
    public static final java.util.List<String> ARCHITECTURES = java.util.List.of("llama", "qwen2", "qwen3", "phi3", "gemma2", "gemma3");

    /** A shape without Gemma's sliding-window keys. */
    public SynthShape(String name, int dim, int layers, int heads, int kvHeads, int ffn, int vocab, int context,
                      float ropeBase, boolean tied, float llama3Rope, float rmsEps, String arch, int keyLength, int ropeDims) {
        this(name, dim, layers, heads, kvHeads, ffn, vocab, context, ropeBase, tied, llama3Rope, rmsEps, arch, keyLength, ropeDims, 0, 0, 0f, 0f, 0f);
    }

    /** A shape whose every head value rotates. */
    public SynthShape(String name, int dim, int layers, int heads, int kvHeads, int ffn, int vocab, int context,
                      float ropeBase, boolean tied, float llama3Rope, float rmsEps, String arch, int keyLength) {
        this(name, dim, layers, heads, kvHeads, ffn, vocab, context, ropeBase, tied, llama3Rope, rmsEps, arch, keyLength, 0);
    }

    /** True for gemma2 and gemma3. */
    public boolean gemma() {
        return arch.startsWith("gemma");
    }

    /** A llama shape whose heads are {@code dim / heads} wide. */
    public SynthShape(String name, int dim, int layers, int heads, int kvHeads, int ffn, int vocab, int context,
                      float ropeBase, boolean tied, float llama3Rope, float rmsEps) {
        this(name, dim, layers, heads, kvHeads, ffn, vocab, context, ropeBase, tied, llama3Rope, rmsEps, "llama", 0);
    }

    private static final Map<String, SynthShape> PRESETS = new LinkedHashMap<>();

    static {
        add(new SynthShape("tiny", 128, 4, 4, 2, 384, 4096, 512, 10000f, false, 0f, 1e-5f));
        add(new SynthShape("stories15m", 288, 6, 6, 6, 768, 32000, 256, 10000f, false, 0f, 1e-5f));
        add(new SynthShape("llama3.2-1b", 2048, 16, 32, 8, 8192, 128256, 131072, 500000f, true, 32f, 1e-5f));
        add(new SynthShape("llama3.2-3b", 3072, 28, 24, 8, 8192, 128256, 131072, 500000f, true, 32f, 1e-5f));
        add(new SynthShape("llama3-8b", 4096, 32, 32, 8, 14336, 128256, 8192, 500000f, false, 0f, 1e-5f));
        add(new SynthShape("llama3.1-8b", 4096, 32, 32, 8, 14336, 128256, 131072, 500000f, false, 8f, 1e-5f));
        add(new SynthShape("llama2-7b", 4096, 32, 32, 32, 11008, 32000, 4096, 10000f, false, 0f, 1e-5f));
        add(new SynthShape("llama2-13b", 5120, 40, 40, 40, 13824, 32000, 4096, 10000f, false, 0f, 1e-5f));
        add(new SynthShape("mistral-7b", 4096, 32, 32, 8, 14336, 32000, 32768, 1000000f, false, 0f, 1e-5f));
        // Qwen/Qwen2.5-0.5B and Qwen/Qwen3-0.6B (config.json); both tie the output to the embedding
        add(new SynthShape("qwen2.5-0.5b", 896, 24, 14, 2, 4864, 151936, 32768, 1000000f, true, 0f, 1e-6f, "qwen2", 0));
        add(new SynthShape("qwen3-0.6b", 1024, 28, 16, 8, 3072, 151936, 40960, 1000000f, true, 0f, 1e-6f, "qwen3", 128));
        // microsoft/Phi-3-mini-4k-instruct (config.json): rope over the whole head of 96, as its GGUFs say
        add(new SynthShape("phi-3-mini", 3072, 32, 32, 32, 8192, 32064, 4096, 10000f, false, 0f, 1e-5f, "phi3", 0, 0));
        // google/gemma-2-2b and google/gemma-3-1b-pt (config.json): heads of 256, tied, windows 4096 and 512
        add(new SynthShape("gemma-2-2b", 2304, 26, 8, 4, 9216, 256000, 8192, 10000f, true, 0f, 1e-6f, "gemma2", 256, 0, 4096, 2, 10000f,
                50f, 30f));
        add(new SynthShape("gemma-3-1b", 1152, 26, 4, 1, 6912, 262144, 32768, 1000000f, true, 0f, 1e-6f, "gemma3", 256, 0, 512, 6, 10000f,
                0f, 0f));
    }

    private static void add(SynthShape s) {
        PRESETS.put(s.name, s);
    }

    /** The preset called {@code name}. */
    public static SynthShape preset(String name) {
        SynthShape s = PRESETS.get(name.toLowerCase(java.util.Locale.ROOT));
        if (s == null) {
            throw new CriaException("unknown model shape '" + name + "'; choose one of " + String.join(", ", PRESETS.keySet())
                    + " or give --dim/--layers/--heads/--kv-heads/--ffn/--vocab-size");
        }
        return s;
    }

    /** The preset names. */
    public static Iterable<String> presets() {
        return PRESETS.keySet();
    }

    public int headDim() {
        return keyLength > 0 ? keyLength : dim / heads;
    }

    /** Values of a head that rope rotates. */
    public int rotaryDims() {
        return ropeDims > 0 ? ropeDims : headDim();
    }

    /** Number of weights. */
    public long parameters() {
        long qDim = (long) heads * headDim();
        long kvDim = (long) kvHeads * headDim();
        long perLayer = 2L * dim + (long) dim * qDim * 2 + 2L * dim * kvDim + 3L * dim * ffn;
        if (arch.equals("qwen2")) {
            perLayer += qDim + 2 * kvDim;  // q, k, v biases
        } else if (arch.equals("qwen3")) {
            perLayer += 2L * headDim();    // q and k norms
        } else if (gemma()) {
            perLayer += 2L * dim + (arch.equals("gemma3") ? 2L * headDim() : 0);  // post-norms (and gemma3's q/k norms)
        }
        return (long) vocab * dim * (tied ? 1 : 2) + dim + layers * perLayer;
    }

    /** This shape written as architecture {@code arch} (one of {@link #ARCHITECTURES}). */
    public SynthShape withArch(String arch) {
        if (!ARCHITECTURES.contains(arch)) {
            throw new CriaException("unknown architecture '" + arch + "'; synth writes " + String.join(", ", ARCHITECTURES));
        }
        if (arch.startsWith("gemma") && !gemma()) {  // Gemma's defaults: gemma2 4096 every other layer, gemma3 512 five layers in six
            boolean g2 = arch.equals("gemma2");
            return new SynthShape(name, dim, layers, heads, kvHeads, ffn, vocab, context, ropeBase, true, llama3Rope, rmsEps, arch, keyLength,
                    ropeDims, g2 ? 4096 : 512, g2 ? 2 : 6, g2 ? ropeBase : 10000f, g2 ? 50f : 0f, g2 ? 30f : 0f);
        }
        return new SynthShape(name, dim, layers, heads, kvHeads, ffn, vocab, context, ropeBase, tied, llama3Rope, rmsEps, arch, keyLength, ropeDims,
                window, swaPattern, ropeBaseSwa, attnSoftcap, finalSoftcap);
    }

    /** This shape with rope base {@code base} (gemma2's windowed layers follow it, as they share the base unless a file says otherwise). */
    public SynthShape withRopeBase(float base) {
        float swa = arch.equals("gemma2") && ropeBaseSwa == ropeBase ? base : ropeBaseSwa;
        return new SynthShape(name, dim, layers, heads, kvHeads, ffn, vocab, context, base, tied, llama3Rope, rmsEps, arch, keyLength, ropeDims,
                window, swaPattern, swa, attnSoftcap, finalSoftcap);
    }

    /**
     * This shape with Gemma's soft caps (null: unchanged; 0: none): attention's (gemma2 only, as
     * llama.cpp reads it for gemma2 alone) and the final logits'.
     */
    public SynthShape withSoftcaps(Float attn, Float fin) {
        return new SynthShape(name, dim, layers, heads, kvHeads, ffn, vocab, context, ropeBase, tied, llama3Rope, rmsEps, arch, keyLength, ropeDims,
                window, swaPattern, ropeBaseSwa, attn != null ? attn : attnSoftcap, fin != null ? fin : finalSoftcap);
    }

    /** This shape with Gemma's sliding window {@code window} on layers l with {@code l % pattern < pattern - 1} (null: unchanged). */
    public SynthShape withWindow(Integer window, Integer pattern) {
        return new SynthShape(name, dim, layers, heads, kvHeads, ffn, vocab, context, ropeBase, tied, llama3Rope, rmsEps, arch, keyLength, ropeDims,
                window != null ? window : this.window, pattern != null ? pattern : swaPattern, ropeBaseSwa, attnSoftcap, finalSoftcap);
    }

    /** This shape with {@code dims} values of each head rotated (0: all of them). */
    public SynthShape withRopeDims(int dims) {
        return new SynthShape(name, dim, layers, heads, kvHeads, ffn, vocab, context, ropeBase, tied, llama3Rope, rmsEps, arch, keyLength, dims,
                window, swaPattern, ropeBaseSwa, attnSoftcap, finalSoftcap);
    }

    /** This shape with heads {@code headDim} wide (qwen3's key_length; 0: {@code dim / heads}). */
    public SynthShape withHeadDim(int headDim) {
        return new SynthShape(name, dim, layers, heads, kvHeads, ffn, vocab, context, ropeBase, tied, llama3Rope, rmsEps, arch, headDim, ropeDims,
                window, swaPattern, ropeBaseSwa, attnSoftcap, finalSoftcap);
    }

    /** Checks the shape is one the forward pass can run. */
    public SynthShape validate() {
        if (dim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || ffn <= 0 || vocab <= 0 || context <= 0) {
            throw new CriaException("model shape " + this + ": every size must be positive");
        }
        if (!ARCHITECTURES.contains(arch)) {
            throw new CriaException("model shape: unknown architecture '" + arch + "'; synth writes " + String.join(", ", ARCHITECTURES));
        }
        if (keyLength < 0 || keyLength > cria.model.LlamaConfig.MAX_HEAD_DIM) {
            throw new CriaException("model shape: head size " + keyLength + " out of range (1 to " + cria.model.LlamaConfig.MAX_HEAD_DIM + ")");
        }
        if ((keyLength == 0 && dim % heads != 0) || heads % kvHeads != 0) {
            throw new CriaException("model shape: dim " + dim + " must divide by heads " + heads + " (or give the head size), and heads by kv-heads "
                    + kvHeads);
        }
        if ((long) heads * headDim() > cria.model.LlamaConfig.MAX_WIDTH) {
            throw new CriaException("model shape: " + heads + " heads of " + headDim() + " values are wider than Cria's limit of "
                    + cria.model.LlamaConfig.MAX_WIDTH);
        }
        if (arch.equals("phi3") && (long) heads * headDim() != dim) {
            throw new CriaException("model shape: phi3's " + heads + " heads of " + headDim() + " must make up dim " + dim + " (llama.cpp reads its attn_output as [dim, dim])");
        }
        if (ropeDims < 0 || ropeDims > headDim() || ropeDims % 2 != 0) {
            throw new CriaException("model shape: rope dims " + ropeDims + " must be even and at most the head size " + headDim());
        }
        if (llama3Rope > 0 && ropeDims > 0 && ropeDims != headDim()) {
            throw new CriaException("model shape: llama3 rope factors with partial rope dims are not written");
        }
        if (headDim() % 2 != 0) {
            throw new CriaException("model shape: the head size " + headDim() + " must be even (rope rotates pairs)");
        }
        if (vocab < 260) {
            throw new CriaException("model shape: a vocabulary needs at least 260 tokens (3 special + 256 bytes + 1), got " + vocab);
        }
        if (gemma() && (window < 0 || swaPattern < 0 || (window > 0 && swaPattern < 1) || !(ropeBaseSwa >= 1 || window == 0))) {
            throw new CriaException("model shape: Gemma's sliding window " + window + " needs a pattern of at least 1 (got " + swaPattern
                    + ") and a windowed rope base of at least 1");
        }
        if (!(attnSoftcap >= 0 && finalSoftcap >= 0 && attnSoftcap <= 1e6f && finalSoftcap <= 1e6f)
                || ((attnSoftcap > 0 || finalSoftcap > 0) && !gemma()) || (attnSoftcap > 0 && !arch.equals("gemma2"))) {
            throw new CriaException("model shape: soft caps " + attnSoftcap + " (attention) and " + finalSoftcap
                    + " (final) must be 0 to 1e6, the attention one for gemma2 only, the final one for gemma2 and gemma3");
        }
        if (gemma() && !tied) {
            throw new CriaException("model shape: Gemma files tie the output to the embedding (llama.cpp reads no output.weight for gemma2)");
        }
        if (gemma() && llama3Rope > 0) {
            throw new CriaException("model shape: llama3 rope factors are not written for Gemma");
        }
        if (gemma() && vocab < 262) {
            throw new CriaException("model shape: a Gemma vocabulary needs at least 262 tokens (4 special + 256 bytes + 2 turn markers), got " + vocab);
        }
        if (arch.equals("phi3") && vocab < 264) {
            throw new CriaException("model shape: a phi3 vocabulary needs at least 264 tokens (with Phi-3's 4 control tokens), got " + vocab);
        }
        return this;
    }

    public SynthShape with(Integer dim, Integer layers, Integer heads, Integer kvHeads, Integer ffn, Integer vocab, Integer context) {
        return new SynthShape(name, dim != null ? dim : this.dim, layers != null ? layers : this.layers,
                heads != null ? heads : this.heads, kvHeads != null ? kvHeads : (heads != null && this.kvHeads == this.heads ? heads : this.kvHeads),
                ffn != null ? ffn : this.ffn, vocab != null ? vocab : this.vocab, context != null ? context : this.context,
                ropeBase, tied, llama3Rope, rmsEps, arch, keyLength, ropeDims, window, swaPattern, ropeBaseSwa, attnSoftcap, finalSoftcap);
    }
}
