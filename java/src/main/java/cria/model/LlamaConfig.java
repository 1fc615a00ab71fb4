// The hyper-parameters of a Llama-family model, read from GGUF metadata with clear errors for missing or inconsistent keys.
package cria.model;

import cria.CriaException;
import cria.backend.AttnSpec;
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
 * @param trainedContextLength the context the model was trained for
 * @param rmsEps      RMSNorm epsilon
 * @param ropeDims    rotated values per head
 * @param ropeBase    rope frequency base
 * @param ropeFreqScale linear rope scaling (1 / factor; 1 when none)
 * @param ropeNeox    true for NeoX-style rope (pairs i and i + dims/2); llama uses adjacent pairs
 * @param qkNorm      true when q and k are RMS-normalized per head before rope (qwen3's
 *                    {@code attn_q_norm} / {@code attn_k_norm}, one [headDim] weight each per layer)
 * @param slidingWindow the positions a query attends to when the model was trained with
 *                    sliding-window attention (Mistral's {@code llama.attention.sliding_window},
 *                    Gemma's windowed layers), 0 for none; {@link #attnSpec} hands it to attention
 * @param gemma       Gemma's differences from the llama graph ({@code gemma2}, {@code gemma3}), or
 *                    null for every other architecture
 */
public record LlamaConfig(String arch, int dim, int layers, int heads, int kvHeads, int headDim, int ffn, int vocab,
                          int trainedContextLength, float rmsEps, int ropeDims, float ropeBase, float ropeFreqScale,
                          boolean ropeNeox, boolean qkNorm, int slidingWindow, Gemma gemma) {

    /**
     * What a Gemma 2 or 3 file changes in the graph. Always: the embedding rows are scaled by
     * sqrt(dim) after the lookup; each block's attention and feed-forward outputs are RMS-normalized
     * ({@code post_attention_norm}, {@code post_ffw_norm}) before their residual add; the feed-forward
     * gate is GELU (tanh form) rather than SiLU; NeoX rope. The norms are plain RMSNorms here:
     * Gemma's own norm multiplies by (1 + w), and llama.cpp's converter stores 1 + w in the file.
     *
     * @param swaPattern   layer l attends through the sliding window when {@code l % swaPattern <
     *                     swaPattern - 1} ({@code <arch>.attention.sliding_window_pattern}; gemma2 2,
     *                     gemma3 6 when absent); 0 when no layer does (a gemma3 file without
     *                     {@code attention.sliding_window})
     * @param ropeBaseSwa  the rope base of windowed layers ({@code <arch>.rope.freq_base_swa}; when
     *                     absent gemma2's global base, gemma3's 10000)
     * @param ropeScaleSwa the linear rope frequency scale of windowed layers (gemma2: the file's,
     *                     gemma3: 1, as llama.cpp)
     * @param attnSoftcap  attention scores become {@code c * tanh(s / c)} (gemma2's
     *                     {@code attn_logit_softcapping}, 50 when absent; 0: none, gemma3)
     * @param finalSoftcap logits become {@code c * tanh(l / c)} ({@code final_logit_softcapping};
     *                     gemma2 30 when absent, gemma3 only when given; 0: none)
     * @param attnScale    the factor of q·k (1/sqrt(headDim); the 27B shapes use 1/sqrt(dim / heads))
     */
    public record Gemma(int swaPattern, float ropeBaseSwa, float ropeScaleSwa, float attnSoftcap, float finalSoftcap, float attnScale) {}

    /** A shape without Gemma's differences. */
    public LlamaConfig(String arch, int dim, int layers, int heads, int kvHeads, int headDim, int ffn, int vocab,
                       int trainedContextLength, float rmsEps, int ropeDims, float ropeBase, float ropeFreqScale, boolean ropeNeox,
                       boolean qkNorm, int slidingWindow) {
        this(arch, dim, layers, heads, kvHeads, headDim, ffn, vocab, trainedContextLength, rmsEps, ropeDims, ropeBase, ropeFreqScale,
                ropeNeox, qkNorm, slidingWindow, null);
    }

    /** True for gemma2 and gemma3 files (see {@link Gemma}). */
    public boolean isGemma() {
        return gemma != null;
    }

    /**
     * Whether layer {@code layer} attends through the sliding window: every layer of a file with
     * a window (Mistral), Gemma's by its pattern.
     */
    public boolean windowed(int layer) {
        if (slidingWindow <= 0) {
            return false;
        }
        if (gemma == null) {
            return true;
        }
        int p = gemma.swaPattern();
        return p > 0 && layer % p < p - 1;
    }

    /** The rope base of layer {@code layer} (Gemma's windowed layers have their own). */
    public float ropeBase(int layer) {
        return gemma != null && windowed(layer) ? gemma.ropeBaseSwa() : ropeBase;
    }

    /** The linear rope frequency scale of layer {@code layer}. */
    public float ropeFreqScale(int layer) {
        return gemma != null && windowed(layer) ? gemma.ropeScaleSwa() : ropeFreqScale;
    }

    /** A shape without sliding-window attention. */
    public LlamaConfig(String arch, int dim, int layers, int heads, int kvHeads, int headDim, int ffn, int vocab,
                       int trainedContextLength, float rmsEps, int ropeDims, float ropeBase, float ropeFreqScale, boolean ropeNeox,
                       boolean qkNorm) {
        this(arch, dim, layers, heads, kvHeads, headDim, ffn, vocab, trainedContextLength, rmsEps, ropeDims, ropeBase, ropeFreqScale,
                ropeNeox, qkNorm, 0);
    }

    /**
     * How layer {@code layer} attends: scale 1 / sqrt(headDim), and the sliding window when the
     * file sets one (every layer alike for the llama architecture). Gemma: its scale (the 27B
     * shapes' differs), its attention soft-cap (gemma2), the window on its windowed layers only.
     */
    public AttnSpec attnSpec(int layer) {
        if (gemma != null) {
            return new AttnSpec(gemma.attnScale(), windowed(layer) ? slidingWindow : 0, gemma.attnSoftcap());
        }
        return AttnSpec.plain(headDim).withWindow(slidingWindow);
    }

    /** Refuses shapes whose derived sizes would not fit the int widths the buffers use (a backstop: {@link #from} says why in words). */
    public LlamaConfig {
        if (dim < 1 || layers < 1 || heads < 1 || kvHeads < 1 || headDim < 1 || ffn < 1 || vocab < 1 || trainedContextLength < 1
                || (long) heads * headDim > MAX_WIDTH || heads % kvHeads != 0 || ropeDims < 1 || ropeDims > headDim) {
            throw new IllegalArgumentException("inconsistent model shape: dim " + dim + ", " + layers + " layers, " + heads + "/" + kvHeads
                    + " heads x " + headDim + ", ffn " + ffn + ", vocab " + vocab + ", ctx " + trainedContextLength + ", rope dims " + ropeDims);
        }
    }

    /** A shape of the llama architecture without per-head q/k norms (the form before qwen3 existed). */
    public LlamaConfig(String arch, int dim, int layers, int heads, int kvHeads, int headDim, int ffn, int vocab,
                       int trainedContextLength, float rmsEps, int ropeDims, float ropeBase, float ropeFreqScale, boolean ropeNeox) {
        this(arch, dim, layers, heads, kvHeads, headDim, ffn, vocab, trainedContextLength, rmsEps, ropeDims, ropeBase, ropeFreqScale,
                ropeNeox, false);
    }

    /**
     * Writes this shape as the {@code <arch>.*} keys llama.cpp reads (and {@link #from} reads back),
     * with {@code general.architecture = arch}. Rope scaling is not written: shapes written this
     * way have none. The rope style and q/k norms are not keys: they follow from the architecture.
     */
    public void putKeys(Metadata md) {
        md.put("general.architecture", GgufValue.ofString(arch));
        md.put(arch + ".context_length", GgufValue.ofU32(trainedContextLength));
        md.put(arch + ".embedding_length", GgufValue.ofU32(dim));
        md.put(arch + ".block_count", GgufValue.ofU32(layers));
        md.put(arch + ".feed_forward_length", GgufValue.ofU32(ffn));
        md.put(arch + ".rope.dimension_count", GgufValue.ofU32(ropeDims));
        md.put(arch + ".attention.head_count", GgufValue.ofU32(heads));
        md.put(arch + ".attention.head_count_kv", GgufValue.ofU32(kvHeads));
        md.put(arch + ".attention.layer_norm_rms_epsilon", GgufValue.ofF32(rmsEps));
        md.put(arch + ".rope.freq_base", GgufValue.ofF32(ropeBase));
        md.put(arch + ".vocab_size", GgufValue.ofU32(vocab));
        if (headDim * heads != dim) {
            md.put(arch + ".attention.key_length", GgufValue.ofU32(headDim));
            md.put(arch + ".attention.value_length", GgufValue.ofU32(headDim));
        }
        if (gemma != null) {  // keys with their architecture's default value are left out, as real files do
            boolean g2 = arch.equals("gemma2");
            if (slidingWindow > 0) {
                md.put(arch + ".attention.sliding_window", GgufValue.ofU32(slidingWindow));
                if (gemma.swaPattern() != (g2 ? 2 : 6)) {
                    md.put(arch + ".attention.sliding_window_pattern", GgufValue.ofU32(gemma.swaPattern()));
                }
                if (gemma.ropeBaseSwa() != (g2 ? ropeBase : 10000f)) {
                    md.put(arch + ".rope.freq_base_swa", GgufValue.ofF32(gemma.ropeBaseSwa()));
                }
            }
            if (g2 || gemma.attnSoftcap() > 0) {
                md.put(arch + ".attn_logit_softcapping", GgufValue.ofF32(gemma.attnSoftcap()));
            }
            if (g2 || gemma.finalSoftcap() > 0) {
                md.put(arch + ".final_logit_softcapping", GgufValue.ofF32(gemma.finalSoftcap()));
            }
        }
    }

    /**
     * Every architecture the forward pass runs: {@code llama} and {@code mistral} (the llama graph;
     * most fine-tunes say "llama"), {@code qwen2} (NeoX rope; its
     * q, k, v biases are tensors, loaded where present), {@code qwen3} (NeoX rope, per-head q/k norms)
     * and {@code phi3} (NeoX rope, often over part of each head; fused q/k/v and gate/up matrices,
     * which {@link LlamaWeights} splits into row views), {@code gemma2} and {@code gemma3} (see
     * {@link Gemma}; gemma3 adds qwen3's per-head q/k norms).
     */
    public static final Set<String> ARCHITECTURES = Set.of("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3");

    /** True for architectures whose files hold q, k, v in one {@code attn_qkv} matrix and gate, up in one {@code ffn_up} (phi3). */
    public boolean fusedMatrices() {
        return arch.equals("phi3");
    }

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
        if (!ARCHITECTURES.contains(arch)) {
            throw new CriaException(src + ": architecture '" + arch + "' is not supported; Cria runs " + String.join(", ",
                    new java.util.TreeSet<>(ARCHITECTURES)) + " (general.architecture)");
        }
        // Every count is bounded where it is read, and every size made of two counts is computed in
        // long and bounded before it exists as an int: the tensor shape checks that follow compare
        // against these sizes, so a product that wrapped around would let a lying file through.
        int dim = bounded(md, arch, "embedding_length", required(md, arch, "embedding_length"), MAX_WIDTH);
        int layers = bounded(md, arch, "block_count", required(md, arch, "block_count"), MAX_LAYERS);
        int ffn = bounded(md, arch, "feed_forward_length", perLayerConstant(md, arch, "feed_forward_length", layers), MAX_WIDTH);
        int heads = bounded(md, arch, "attention.head_count", perLayerConstant(md, arch, "attention.head_count", layers), MAX_HEADS);
        int kvHeads = md.has(arch + ".attention.head_count_kv")
                ? bounded(md, arch, "attention.head_count_kv", perLayerConstant(md, arch, "attention.head_count_kv", layers), MAX_HEADS)
                : heads;
        if (heads % kvHeads != 0) {
            throw new CriaException(src + ": " + heads + " heads cannot be grouped over " + kvHeads + " KV heads");
        }
        int headDim;
        if (md.has(arch + ".attention.key_length")) {
            headDim = bounded(md, arch, "attention.key_length", md.count(arch + ".attention.key_length").get(), MAX_HEAD_DIM);
        } else if (dim % heads == 0) {
            headDim = dim / heads;
        } else {
            throw new CriaException(src + ": embedding_length " + dim + " is not a multiple of head_count " + heads + " and no attention.key_length is given");
        }
        int valueDim = md.count(arch + ".attention.value_length").orElse(headDim);
        if (valueDim != headDim) {
            throw new CriaException(src + ": attention.value_length " + valueDim + " differs from key_length " + headDim + "; not supported");
        }
        long qDim = (long) heads * headDim;
        long kvDim = (long) kvHeads * headDim;
        if (qDim > MAX_WIDTH) {
            throw new CriaException(src + ": " + heads + " heads of " + headDim + " values make query rows of " + qDim
                    + " values, more than Cria's limit of " + MAX_WIDTH + "; the file is corrupt");
        }
        int vocab = bounded(md, arch, "vocab_size", md.count(arch + ".vocab_size").orElse(vocabFromEmbedding), MAX_WIDTH);
        int ctx = bounded(md, arch, "context_length", md.count(arch + ".context_length").orElse(2048), Integer.MAX_VALUE);
        String epsKey = arch + ".attention.layer_norm_rms_epsilon";
        double eps = md.number(epsKey).orElseThrow(() -> missing(src, epsKey));
        // RMSNorm divides by sqrt(mean(x^2) + eps): zero, negative or non-finite values give NaN or
        // infinities for some rows, and values far above the 1e-6..1e-5 of real models flatten
        // every activation. Both are refused rather than run into garbage.
        if (!(eps > 0 && (float) eps > 0 && eps <= MAX_RMS_EPS)) {
            throw new CriaException(src + ": " + epsKey + " = " + eps + " is not a usable epsilon (expected a small positive number, at most "
                    + MAX_RMS_EPS + ", e.g. 1e-5); the file is corrupt");
        }
        int ropeDims = md.count(arch + ".rope.dimension_count").orElse(headDim);
        if (ropeDims <= 0 || ropeDims > headDim || ropeDims % 2 != 0) {
            throw new CriaException(src + ": rope.dimension_count " + ropeDims + " must be even and at most the head size " + headDim);
        }
        String baseKey = arch + ".rope.freq_base";
        double base = md.number(baseKey).orElse(10000.0);
        // Angles are pos * base^(-2i/dims): a base below 1 makes them grow with i (infinite for a
        // tiny base), zero, negative and NaN bases give NaN. Real models use 1e4 to 1e8.
        if (!(base >= 1 && base <= Float.MAX_VALUE)) {
            throw new CriaException(src + ": " + baseKey + " = " + base + " is not a usable rope base (expected a finite number of at least 1, e.g. 10000)");
        }
        float freqScale = 1f;
        String scaling = md.string(arch + ".rope.scaling.type").orElse("none").toLowerCase(Locale.ROOT);
        switch (scaling) {
            case "none" -> { }
            case "linear" -> {
                String k = arch + ".rope.scaling.factor";
                freqScale = (float) (1.0 / scaleFactor(src, k, md.number(k).orElseThrow(() -> missing(src, k)), false));
            }
            default -> throw new CriaException(src + ": rope scaling '" + scaling + "' is not supported (none and linear are)");
        }
        if (scaling.equals("none") && md.has(arch + ".rope.scale_linear")) {
            String k = arch + ".rope.scale_linear";
            double f = scaleFactor(src, k, md.number(k).get(), true);
            if (f > 0) {
                freqScale = (float) (1.0 / f);
            }
        }
        int window = 0;
        String swKey = arch + ".attention.sliding_window";
        if ((arch.equals("llama") || arch.equals("mistral")) && md.has(swKey)) {
            int w = md.count(swKey).orElseThrow(() -> new CriaException(src + ": " + swKey + " is not a count; the file is corrupt"));
            window = w == 0 ? 0 : bounded(md, arch, "attention.sliding_window", w, Integer.MAX_VALUE);
        }
        Gemma gemma = null;
        if (arch.equals("gemma2") || arch.equals("gemma3")) {
            gemma = gemma(md, arch, layers, (float) base, freqScale, dim, heads, headDim);
            window = gemma.swaPattern() <= 1 ? 0 : gemmaWindow(md, arch);  // pattern 1: every layer global
        }
        boolean neox = !arch.equals("llama") && !arch.equals("mistral");  // llama.cpp rotates the others NeoX-style
        return new LlamaConfig(arch, dim, layers, heads, kvHeads, headDim, ffn, vocab, ctx, (float) eps, ropeDims, (float) base,
                freqScale, neox, arch.equals("qwen3") || arch.equals("gemma3"), window, gemma);
    }

    /** Gemma's keys, with llama.cpp's defaults where a key is absent (see {@link Gemma}). */
    private static Gemma gemma(Metadata md, String arch, int layers, float base, float freqScale, int dim, int heads, int headDim) {
        String src = md.source();
        boolean g2 = arch.equals("gemma2");
        String swKey = arch + ".attention.sliding_window";
        int pattern = 0;
        if (g2 || (md.has(swKey) && md.count(swKey).orElse(0) > 0)) {
            String pKey = arch + ".attention.sliding_window_pattern";
            GgufValue pv = md.get(pKey);
            if (pv != null && pv.isArray()) {
                throw new CriaException(src + ": " + pKey + " is a per-layer array; Cria reads it as one period (gemma2, gemma3 files)");
            }
            pattern = pv == null ? (g2 ? 2 : 6) : md.count(pKey).orElseThrow(() -> new CriaException(src + ": " + pKey + " is not a count"));
            if (pattern < 1 || pattern > layers + 1) {
                // 1 makes every layer global; llama.cpp also takes 0 to mean every layer windowed, which no Gemma file has
                throw new CriaException(src + ": " + pKey + " = " + pattern + " is out of range (1 to " + (layers + 1) + ")");
            }
        }
        String bKey = arch + ".rope.freq_base_swa";
        double baseSwa = md.number(bKey).orElse(g2 ? base : 10000.0);
        if (!(baseSwa >= 1 && baseSwa <= Float.MAX_VALUE)) {
            throw new CriaException(src + ": " + bKey + " = " + baseSwa + " is not a usable rope base (expected a finite number of at least 1, e.g. 10000)");
        }
        float attnCap = g2 ? softcap(md, arch + ".attn_logit_softcapping", 50) : 0;  // gemma3 has none (llama.cpp reads no key)
        float finalCap = softcap(md, arch + ".final_logit_softcapping", g2 ? 30 : 0);
        boolean big = layers == (g2 ? 46 : 62);  // the 27B shapes scale q by 1/sqrt(dim / heads) (llama.cpp, gemma_pytorch)
        float scale = (float) (1.0 / Math.sqrt(big ? (double) (dim / heads) : headDim));
        return new Gemma(pattern, (float) baseSwa, g2 ? freqScale : 1f, attnCap, finalCap, scale);
    }

    /** Gemma's sliding window: the key, gemma2's 4096 when absent. */
    private static int gemmaWindow(Metadata md, String arch) {
        String k = arch + ".attention.sliding_window";
        int w = md.has(k) ? md.count(k).orElseThrow(() -> new CriaException(md.source() + ": " + k + " is not a count; the file is corrupt")) : 4096;
        return bounded(md, arch, "attention.sliding_window", w, Integer.MAX_VALUE);
    }

    /** A soft-capping value: absent gives {@code absent}; 0 means none; otherwise finite and positive. */
    private static float softcap(Metadata md, String key, float absent) {
        if (!md.has(key)) {
            return absent;
        }
        double v = md.number(key).orElseThrow(() -> new CriaException(md.source() + ": " + key + " is not a number; the file is corrupt"));
        if (!(v == 0 || (v >= 1e-3 && v <= 1e6))) {
            throw new CriaException(md.source() + ": " + key + " = " + v + " is not a usable soft cap (0 for none, or a positive number such as 30 or 50)");
        }
        return (float) v;
    }

    /** The largest row width (embedding, query, feed-forward, vocabulary) accepted: far above any real model. */
    public static final int MAX_WIDTH = 1 << 24;
    /** The most layers accepted (real models have up to ~130). */
    public static final int MAX_LAYERS = 1 << 16;
    /** The most query or KV heads accepted (real models have up to 128). */
    public static final int MAX_HEADS = 1 << 12;
    /** The widest attention head accepted (real models use 64 to 256). */
    public static final int MAX_HEAD_DIM = 1 << 13;
    /** The largest RMSNorm epsilon accepted (real models use 1e-6 to 1e-5). */
    public static final double MAX_RMS_EPS = 0.1;

    /** A count that must lie in [1, max]. */
    private static int bounded(Metadata md, String arch, String key, int v, int max) {
        if (v < 1 || v > max) {
            throw new CriaException(md.source() + ": " + arch + "." + key + " = " + v + " is out of range (1 to " + max
                    + "); the file is corrupt or not a Llama model");
        }
        return v;
    }

    /** A rope scaling factor: finite and positive (zero allowed where it means "none"). */
    private static double scaleFactor(String src, String key, double f, boolean zeroIsNone) {
        // positions are multiplied by 1 / f: outside this range the angles are zero or overflow
        if ((zeroIsNone && f == 0) || (f >= 1e-3 && f <= 1e6)) {
            return f;
        }
        throw new CriaException(src + ": " + key + " = " + f + " is not a usable rope scaling factor (expected 0.001 to 1e6, e.g. 2 or 4)");
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
                arch, dim, layers, heads, kvHeads, headDim, ffn, vocab, trainedContextLength);
    }
}
