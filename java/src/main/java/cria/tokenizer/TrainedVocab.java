// A vocabulary VocabTrainer learned: token texts, scores and types, written as a GGUF file's tokenizer.* metadata.
package cria.tokenizer;

import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import java.util.List;

/**
 * The result of {@link VocabTrainer#train}: {@code <unk>}, {@code <s>}, {@code </s>}, the 256 byte
 * tokens, the characters, then the merged pieces in the order they were learned. The piece learned
 * at step {@code r} scores {@code -r}; characters score below every merge; the fixed tokens score 0.
 * Token types are GGUF's: 2 unknown, 3 control, 6 byte, 1 normal.
 */
public final class TrainedVocab {
    /** GGUF token types ({@code tokenizer.ggml.token_type}). */
    static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, BYTE = 6;

    private final String[] tokens;
    private final float[] scores;
    private final int[] types;
    private final int characters;

    private TrainedVocab(String[] tokens, float[] scores, int[] types, int characters) {
        this.tokens = tokens;
        this.scores = scores;
        this.types = types;
        this.characters = characters;
    }

    static TrainedVocab of(List<String> pieces, int characters) {
        int n = pieces.size();
        int firstMerge = VocabTrainer.FIXED_TOKENS + characters;
        int merges = n - firstMerge;
        String[] tokens = pieces.toArray(new String[0]);
        float[] scores = new float[n];
        int[] types = new int[n];
        types[0] = UNKNOWN;
        types[1] = CONTROL;
        types[2] = CONTROL;
        for (int i = 3; i < VocabTrainer.FIXED_TOKENS; i++) {
            types[i] = BYTE;
        }
        for (int i = VocabTrainer.FIXED_TOKENS; i < n; i++) {
            types[i] = NORMAL;
            // merges: minus the step; characters: below the last merge, most frequent highest
            scores[i] = i >= firstMerge ? -(i - firstMerge) : -(merges + (i - VocabTrainer.FIXED_TOKENS));
        }
        return new TrainedVocab(tokens, scores, types, characters);
    }

    /** The number of tokens. */
    public int size() {
        return tokens.length;
    }

    /** The token texts, by id (spaces written as U+2581). */
    public String[] tokens() {
        return tokens.clone();
    }

    /** The token scores, by id. */
    public float[] scores() {
        return scores.clone();
    }

    /** The GGUF token types, by id: 2 unknown, 3 control, 6 byte, 1 normal. */
    public int[] tokenTypes() {
        return types.clone();
    }

    /** How many single characters have tokens (they follow the 259 fixed tokens). */
    public int characterCount() {
        return characters;
    }

    /** The id of the first merged piece; pieces from here on are in the order they were learned. */
    public int firstMerge() {
        return VocabTrainer.FIXED_TOKENS + characters;
    }

    /**
     * Writes the vocabulary as the {@code tokenizer.*} keys llama.cpp and {@link Tokenizer} read for
     * the {@code llama} model: tokens, scores, token types, BOS 1, EOS 2, unknown 0, BOS added,
     * EOS not, a space put before the text. Other keys of {@code md} are left alone.
     */
    public void writeTo(Metadata md) {
        md.put("tokenizer.ggml.model", GgufValue.ofString("llama"));
        md.put("tokenizer.ggml.tokens", GgufValue.ofStrings(tokens.clone()));
        md.put("tokenizer.ggml.scores", GgufValue.ofFloats(scores.clone()));
        md.put("tokenizer.ggml.token_type", GgufValue.ofInts(types.clone()));
        md.put("tokenizer.ggml.unknown_token_id", GgufValue.ofU32(0));
        md.put("tokenizer.ggml.bos_token_id", GgufValue.ofU32(1));
        md.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(2));
        md.put("tokenizer.ggml.add_bos_token", GgufValue.ofBool(true));
        md.put("tokenizer.ggml.add_eos_token", GgufValue.ofBool(false));
        md.put("tokenizer.ggml.add_space_prefix", GgufValue.ofBool(true));
    }
}
