// The shapes of real Llama-family models, for random-weight test and benchmark files.
package cria.synth;

import cria.CriaException;
import cria.model.Llama;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A model's shape without its weights. Presets follow the published configurations; every field
 * can be overridden. {@code llama3Rope} gives llama3-style rope frequency factors (a
 * {@code rope_freqs.weight} tensor) with that scaling factor, 0 for none.
 */
public record SynthShape(String name, int dim, int layers, int heads, int kvHeads, int ffn, int vocab, int context,
                         float ropeBase, boolean tied, float llama3Rope, float rmsEps) {

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
        return dim / heads;
    }

    /** Number of weights. */
    public long parameters() {
        long perLayer = 2L * dim + (long) dim * dim * 2 + 2L * dim * (kvHeads * headDim()) + 3L * dim * ffn;
        return (long) vocab * dim * (tied ? 1 : 2) + dim + layers * perLayer;
    }

    /** Checks the shape is one the forward pass can run. */
    public SynthShape validate() {
        if (dim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || ffn <= 0 || vocab <= 0 || context <= 0) {
            throw new CriaException("model shape " + this + ": every size must be positive");
        }
        if (dim % heads != 0 || heads % kvHeads != 0) {
            throw new CriaException("model shape: dim " + dim + " must divide by heads " + heads + ", and heads by kv-heads " + kvHeads);
        }
        if (headDim() % 2 != 0) {
            throw new CriaException("model shape: the head size " + headDim() + " must be even (rope rotates pairs)");
        }
        if (vocab < 260) {
            throw new CriaException("model shape: a vocabulary needs at least 260 tokens (3 special + 256 bytes + 1), got " + vocab);
        }
        return this;
    }

    public SynthShape with(Integer dim, Integer layers, Integer heads, Integer kvHeads, Integer ffn, Integer vocab, Integer context) {
        return new SynthShape(name, dim != null ? dim : this.dim, layers != null ? layers : this.layers,
                heads != null ? heads : this.heads, kvHeads != null ? kvHeads : (heads != null && this.kvHeads == this.heads ? heads : this.kvHeads),
                ffn != null ? ffn : this.ffn, vocab != null ? vocab : this.vocab, context != null ? context : this.context,
                ropeBase, tied, llama3Rope, rmsEps);
    }
}
