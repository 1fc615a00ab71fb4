// A GGUF vocabulary as llama.cpp loads it: token texts, scores, attributes, special ids and flags, the end-of-generation set.
package cria.tokenizer;

import cria.CriaException;
import cria.gguf.Metadata;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.TreeSet;

/**
 * Everything the tokenizers share, read from {@code tokenizer.*} metadata with llama.cpp's defaults
 * for each model type, and the same text-based fix-ups llama.cpp applies (end-of-turn tokens marked
 * as control, the end-of-generation set, Phi-3's right-stripping special tokens).
 */
final class Vocab {
    enum Type { SPM, BPE }

    static final int NONE = -1;

    final String source;
    final Type type;
    final BpeFlavor flavor; // BPE only
    final String[] texts;
    final float[] scores;
    final int[] attrs;
    final TextIndex index;
    final int bos, eos, eot, eom, unk, pad;
    final boolean addBos, addEos, addSpacePrefix, cleanSpaces;
    final int[] eog;           // sorted
    final int[] specialTokens; // control, user-defined and unknown tokens, longest text first

    private Vocab(Metadata md) {
        this.source = md.source();
        String model = md.string("tokenizer.ggml.model").orElseThrow(() -> new CriaException(source
                + ": no tokenizer in this file (tokenizer.ggml.model is missing); use a GGUF file that includes its vocabulary"));
        String pre = md.string("tokenizer.ggml.pre").orElse("");
        int defBos, defEos, defUnk;
        boolean defAddBos;
        boolean spacePrefix;
        switch (model) {
            case "llama" -> {
                type = Type.SPM;
                flavor = null;
                defBos = 1;
                defEos = 2;
                defUnk = 0;
                defAddBos = true;
                spacePrefix = true;
                cleanSpaces = false;
            }
            case "gpt2" -> {
                type = Type.BPE;
                flavor = BpeFlavor.of(pre);
                if (flavor == null) {
                    throw new CriaException(source + ": unknown pre-tokenizer '" + pre
                            + "' (tokenizer.ggml.pre); Cria knows llama-bpe, gpt-2, default, falcon, starcoder, deepseek-llm, qwen2 and others: convert the model with a known one");
                }
                defBos = 11;
                defEos = 11;
                defUnk = NONE;
                defAddBos = flavor.addBos();
                spacePrefix = false;
                cleanSpaces = flavor.cleanSpaces();
            }
            default -> throw new CriaException(source + ": tokenizer model '" + model
                    + "' is not supported (Cria reads 'llama' SentencePiece and 'gpt2' byte-level BPE vocabularies); use a LLaMA-family model");
        }
        addSpacePrefix = md.bool("tokenizer.ggml.add_space_prefix").orElse(spacePrefix);

        String[] toks = md.strings("tokenizer.ggml.tokens").orElseThrow(() -> new CriaException(source
                + ": the vocabulary is missing (tokenizer.ggml.tokens); use a GGUF file that includes its vocabulary"));
        int n = toks.length;
        if (n == 0) {
            throw new CriaException(source + ": the vocabulary is empty (tokenizer.ggml.tokens); use a GGUF file that includes its vocabulary");
        }
        float[] sc = md.has("tokenizer.ggml.scores") ? md.floats("tokenizer.ggml.scores").get() : null;
        int[] tt = md.has("tokenizer.ggml.token_type") ? md.ints("tokenizer.ggml.token_type").get() : null;
        if (sc != null && sc.length < n) {
            throw new CriaException(source + ": tokenizer.ggml.scores has " + sc.length + " entries for " + n + " tokens; the file is damaged");
        }
        if (tt != null && tt.length < n) {
            throw new CriaException(source + ": tokenizer.ggml.token_type has " + tt.length + " entries for " + n + " tokens; the file is damaged");
        }
        texts = new String[n];
        scores = new float[n];
        attrs = new int[n];
        for (int i = 0; i < n; i++) {
            String t = toks[i].isEmpty() ? "[EMPTY_" + i + "]" : toks[i];
            texts[i] = t;
            scores[i] = sc != null ? sc[i] : 0f;
            if (Float.isNaN(scores[i])) {
                // merge order compares scores: NaN makes it undefined (infinities still order)
                throw new CriaException(source + ": tokenizer.ggml.scores[" + i + "] is NaN; the file is damaged");
            }
            attrs[i] = tt != null ? TokenAttr.fromType(tt[i]) : TokenAttr.NORMAL;
        }
        index = new TextIndex(texts);

        int[] special = {defBos, defEos, NONE, NONE, defUnk, NONE, NONE, NONE, NONE, NONE};
        String[] keys = {"bos", "eos", "eot", "eom", "unknown", "padding", "fim_pad", "fim_rep", "fim_sep", "fim_pre"};
        for (int k = 0; k < keys.length; k++) {
            Optional<Long> v = md.integer("tokenizer.ggml." + keys[k] + "_token_id");
            if (v.isPresent() && v.get() >= 0 && v.get() < n) {
                special[k] = v.get().intValue(); // out-of-range ids (often 2^32-1 for "none") keep the default
            }
        }
        for (int k = 0; k < special.length; k++) {
            if (special[k] >= n) {
                special[k] = NONE; // a default id (e.g. BOS = 1) that a tiny vocabulary does not have
            }
        }
        addBos = md.bool("tokenizer.ggml.add_bos_token").orElse(defAddBos);
        addEos = md.bool("tokenizer.ggml.add_eos_token").orElse(false);

        // Text-based detection of end-of-turn and fill-in-the-middle tokens, as llama.cpp does it
        // (looked up by text rather than by scanning the vocabulary, which keeps loading fast).
        int eotId = special[2] != NONE ? special[2] : markControl(firstOf(EOT_TEXTS));
        int eomId = special[3] != NONE ? special[3] : markControl(firstOf("<|eom_id|>"));
        int fimPad = special[6] != NONE ? special[6] : markControl(firstOf("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"));
        int fimRep = special[7] != NONE ? special[7]
                : markControl(firstOf("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"));
        int fimSep = special[8] != NONE ? special[8] : markControl(firstOf("<|file_sep|>"));
        for (int i = 0; i < n; i++) {
            if ((attrs[i] & TokenAttr.CONTROL) != 0 && (attrs[i] & TokenAttr.UNUSED) == 0 && texts[i].contains("unused")) {
                attrs[i] |= TokenAttr.UNUSED;
            }
        }
        TreeSet<Integer> eogSet = new TreeSet<>();
        for (int id : new int[] {fimPad, fimRep, fimSep}) {
            if (id != NONE) {
                eogSet.add(id);
            }
        }
        for (String t : EOG_TEXTS) {
            int id = index.get(t);
            if (id >= 0) {
                eogSet.add(id);
                attrs[id] |= TokenAttr.CONTROL;
            }
        }
        for (String t : new String[] {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
            int id = index.get(t);
            if (id >= 0) {
                attrs[id] = TokenAttr.USER_DEFINED; // gpt-oss: these always render
            }
        }
        for (int id : new int[] {special[1], eotId, eomId}) {
            if (id != NONE) {
                eogSet.add(id);
            }
        }
        // When <|return|> and <|call|> (or <|calls|> and <|flush|>) exist, <|end|> separates turns but does not end generation.
        boolean hasReturn = false, hasCall = false, hasFlush = false;
        int endId = NONE;
        for (int id : eogSet) {
            switch (texts[id]) {
                case "<|return|>" -> hasReturn = true;
                case "<|call|>", "<|calls|>" -> hasCall = true;
                case "<|flush|>" -> hasFlush = true;
                case "<|end|>" -> endId = id;
                default -> { }
            }
        }
        if (endId != NONE && ((hasReturn && hasCall) || (hasCall && hasFlush))) {
            eogSet.remove(endId);
            attrs[endId] = TokenAttr.USER_DEFINED;
        }
        Integer sId = null;
        boolean toolResponse = false;
        for (int id : eogSet) {
            if (texts[id].equals("<|tool_response>")) {
                toolResponse = true;
            } else if (texts[id].equals("</s>")) {
                sId = id;
            }
        }
        if (toolResponse && sId != null) {
            eogSet.remove(sId);
            attrs[sId] = TokenAttr.NORMAL;
        }

        bos = special[0];
        eos = special[1];
        eot = eotId;
        eom = eomId;
        unk = special[4];
        pad = special[5];
        eog = eogSet.stream().mapToInt(Integer::intValue).toArray();

        List<Integer> sp = new ArrayList<>();
        int[] byteLen = new int[n];
        for (int i = 0; i < n; i++) {
            if ((attrs[i] & (TokenAttr.CONTROL | TokenAttr.USER_DEFINED | TokenAttr.UNKNOWN)) != 0) {
                sp.add(i);
                byteLen[i] = texts[i].getBytes(StandardCharsets.UTF_8).length;
            }
        }
        sp.sort(Comparator.<Integer>comparingInt(i -> -byteLen[i]).thenComparingInt(i -> i));
        specialTokens = sp.stream().mapToInt(Integer::intValue).toArray();

        applyNamedAttributes(md, pre);
    }

    /** Loads the vocabulary from GGUF metadata. */
    static Vocab load(Metadata md) {
        return new Vocab(md);
    }

    // Per-model strip attributes that GGUF files do not carry; llama.cpp sets them by name.
    private void applyNamedAttributes(Metadata md, String pre) {
        String name = md.string("general.name").orElse("").toLowerCase(Locale.ROOT);
        String arch = md.string("general.architecture").orElse("");
        if (pre.contains("jina-v2-de") || pre.contains("jina-v2-es") || pre.contains("jina-v2-code")
                || arch.contains("nomic-bert-moe") || arch.contains("jina-bert-v3")) {
            setAttr("<mask>", TokenAttr.LSTRIP, true);
        } else if (name.contains("phi-3") || name.contains("phi3")) {
            for (int id : specialTokens) {
                attrs[id] |= TokenAttr.RSTRIP;
            }
            setAttr("</s>", TokenAttr.RSTRIP, true);
            for (String t : new String[] {"<unk>", "<s>", "<|endoftext|>"}) {
                setAttr(t, TokenAttr.RSTRIP, false);
            }
        } else if (name.contains("modern-bert")) {
            setAttr("[MASK]", TokenAttr.LSTRIP, true);
        }
    }

    private void setAttr(String text, int attr, boolean on) {
        int id = index.get(text);
        if (id >= 0) {
            attrs[id] = on ? attrs[id] | attr : attrs[id] & ~attr;
        }
    }

    private static final String[] EOT_TEXTS = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
        "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"};

    private static final String[] EOG_TEXTS = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
        "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>"};

    /** The id of the first of these texts that is a token, or NONE. */
    private int firstOf(String... candidates) {
        for (String t : candidates) {
            int id = index.get(t);
            if (id >= 0) {
                return id;
            }
        }
        return NONE;
    }

    // A token found by its end-of-turn-like text is treated as a control token even if the file says otherwise.
    private int markControl(int id) {
        if (id != NONE) {
            attrs[id] |= TokenAttr.CONTROL;
        }
        return id;
    }

    int size() {
        return texts.length;
    }

    /** The id of a token text, or {@link #NONE}. */
    int id(String text) {
        return index.get(text);
    }
}
