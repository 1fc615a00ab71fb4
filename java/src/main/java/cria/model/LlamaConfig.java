// The hyper-parameters of a Llama-family model, read from GGUF metadata with clear errors for missing or inconsistent keys.
package cria.model;

import cria.CriaException;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import java.util.Locale;
import java.util.Set;

/**
 * Everything the forward pass needs to know about a model's shape. Built from the
 * {@code <arch>.*} keys of a GGUF file; architecture differences are flags here, never copies of
 * the forward pass.
 *
 * @param arch        the architecture name in the file (e.g. "llama")
 * @param dim         embedding width
 * @param layers      transformer blocks
 * @param heads       query heads
 * @param kvHeads     key/value heads (grouped-query attention when fewer than heads)
 * @param headDim     width of one head (key_length)
 * @param ffn         feed-forward hidden width
 * @param vocab       vocabulary size (rows of the embedding)
 * @param contextLength the context the model was trained for
 * @param rmsEps      RMSNorm epsilon
 * @param ropeDims    rotated values per head
 * @param ropeBase    rope frequency base
 * @param ropeFreqScale linear rope scaling (1 / factor; 1 when none)
 * @param ropeNeox    true for NeoX-style rope (pairs i and i + dims/2); llama uses adjacent pairs
 */
public record LlamaConfig(String arch, int dim, int layers, int heads, int kvHeads, int headDim, int ffn, int vocab,
                          int contextLength, float rmsEps, int ropeDims, float ropeBase, float ropeFreqScale,
                          boolean ropeNeox) {

    /** Architectures stored with the llama graph (Mistral and most fine-tunes say "llama"). */
    static final Set<String> LLAMA_LIKE = Set.of("llama", "mistral");

    public int kvDim() {
        return kvHeads * headDim;
    }

    public int qDim() {
        return heads * headDim;
    }

    /**
     * Reads the configuration; {@code vocabFromEmbedding} is the embedding's row count, used
     * when the metadata does not say.
     *
     * @throws CriaException naming the file and the key when something is missing or inconsistent
     */
    public static LlamaConfig from(Metadata md, int vocabFromEmbedding) {
        String src = md.source();
        String arch = md.string("general.architecture").orElseThrow(
                () -> new CriaException(src + ": no general.architecture key: not a model file (a vocabulary-only GGUF?)"));
        if (!LLAMA_LIKE.contains(arch)) {
            throw new CriaException(src + ": architecture '" + arch + "' is not supported; Cria runs Llama-family models (general.architecture = llama)");
        }
        int dim = required(md, arch, "embedding_length");
        int layers = required(md, arch, "block_count");
        int ffn = perLayerConstant(md, arch, "feed_forward_length", layers);
        int heads = perLayerConstant(md, arch, "attention.head_count", layers);
        int kvHeads = md.has(arch + ".attention.head_count_kv")
                ? perLayerConstant(md, arch, "attention.head_count_kv", layers) : heads;
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) {
            throw new CriaException(src + ": " + heads + " heads cannot be grouped over " + kvHeads + " KV heads");
        }
        int headDim = md.count(arch + ".attention.key_length").orElse(dim % heads == 0 ? dim / heads : -1);
        if (headDim <= 0) {
            throw new CriaException(src + ": embedding_length " + dim + " is not a multiple of head_count " + heads + " and no attention.key_length is given");
        }
        int valueDim = md.count(arch + ".attention.value_length").orElse(headDim);
        if (valueDim != headDim) {
            throw new CriaException(src + ": attention.value_length " + valueDim + " differs from key_length " + headDim + "; not supported");
        }
        int vocab = md.count(arch + ".vocab_size").orElse(vocabFromEmbedding);
        int ctx = md.count(arch + ".context_length").orElse(2048);
        float eps = (float) (double) md.number(arch + ".attention.layer_norm_rms_epsilon").orElseThrow(
                () -> missing(src, arch + ".attention.layer_norm_rms_epsilon"));
        int ropeDims = md.count(arch + ".rope.dimension_count").orElse(headDim);
        if (ropeDims <= 0 || ropeDims > headDim || ropeDims % 2 != 0) {
            throw new CriaException(src + ": rope.dimension_count " + ropeDims + " must be even and at most the head size " + headDim);
        }
        float base = (float) (double) md.number(arch + ".rope.freq_base").orElse(10000.0);
        float freqScale = 1f;
        String scaling = md.string(arch + ".rope.scaling.type").orElse("none").toLowerCase(Locale.ROOT);
        switch (scaling) {
            case "none" -> { }
            case "linear" -> {
                double factor = md.number(arch + ".rope.scaling.factor").orElseThrow(() -> missing(src, arch + ".rope.scaling.factor"));
                if (factor <= 0) {
                    throw new CriaException(src + ": rope.scaling.factor must be positive, got " + factor);
                }
                freqScale = (float) (1.0 / factor);
            }
            default -> throw new CriaException(src + ": rope scaling '" + scaling + "' is not supported (none and linear are)");
        }
        if (scaling.equals("none") && md.has(arch + ".rope.scale_linear")) {
            double f = md.number(arch + ".rope.scale_linear").get();
            if (f > 0) {
                freqScale = (float) (1.0 / f);
            }
        }
        for (int v : new int[] {dim, layers, ffn, vocab, ctx}) {
            if (v <= 0) {
                throw new CriaException(src + ": model dimensions must be positive: dim " + dim + ", layers " + layers
                        + ", ffn " + ffn + ", vocab " + vocab + ", context " + ctx);
            }
        }
        return new LlamaConfig(arch, dim, layers, heads, kvHeads, headDim, ffn, vocab, ctx, eps, ropeDims, base,
                freqScale, false);
    }

    private static int required(Metadata md, String arch, String key) {
        return md.count(arch + "." + key).orElseThrow(() -> missing(md.source(), arch + "." + key));
    }

    /** A per-layer key given either as one number or as an array whose entries are all equal. */
    private static int perLayerConstant(Metadata md, String arch, String key, int layers) {
        String k = arch + "." + key;
        GgufValue v = md.get(k);
        if (v == null) {
            throw missing(md.source(), k);
        }
        if (!v.isArray()) {
            return md.count(k).orElseThrow();
        }
        int[] all = md.ints(k).orElseThrow();
        if (all.length != layers) {
            throw new CriaException(md.source() + ": " + k + " has " + all.length + " entries for " + layers + " layers");
        }
        for (int x : all) {
            if (x != all[0]) {
                throw new CriaException(md.source() + ": " + k + " varies by layer; such models are not supported");
            }
        }
        return all[0];
    }

    private static CriaException missing(String src, String key) {
        return new CriaException(src + ": metadata key " + key + " is missing; the file is incomplete or not a Llama model");
    }

    /** One line for logs. */
    public String summary() {
        return String.format(Locale.ROOT, "%s: dim %d, %d layers, %d/%d heads x %d, ffn %d, vocab %d, ctx %d",
                arch, dim, layers, heads, kvHeads, headDim, ffn, vocab, contextLength);
    }
}
