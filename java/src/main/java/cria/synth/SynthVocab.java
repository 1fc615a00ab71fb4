// A SentencePiece-style vocabulary the project makes itself: specials, 256 byte tokens, then letter n-grams.
package cria.synth;

import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import cria.model.Llama;

/**
 * A deterministic vocabulary of any size (at least 260) for random-weight models: {@code <unk>},
 * {@code <s>}, {@code </s>}, the 256 byte-fallback tokens, then pieces built from common
 * letters (with and without the word-start mark U+2581), shorter pieces scoring higher. Text
 * tokenizes with it like with any Llama 2 vocabulary; it carries no meaning.
 */
final class SynthVocab {
    private static final String LETTERS = "etaoinshrdlucmfwypvbgkjqxz";
    private static final String OTHER = ".,!?'\"-:;()0123456789ETAOINSHRDLUCMFWYPVBGKJQXZ";

    private SynthVocab() {}

    static void write(Metadata md, int size) {
        String[] tokens = new String[size];
        float[] scores = new float[size];
        int[] types = new int[size];
        tokens[0] = "<unk>";
        tokens[1] = "<s>";
        tokens[2] = "</s>";
        types[0] = 2; // unknown
        types[1] = 3; // control
        types[2] = 3;
        for (int b = 0; b < 256; b++) {
            tokens[3 + b] = String.format("<0x%02X>", b);
            types[3 + b] = 6; // byte
        }
        java.util.LinkedHashSet<String> pieces = new java.util.LinkedHashSet<>();
        pieces.add("\u2581");
        for (char c : (LETTERS + OTHER).toCharArray()) {
            pieces.add(String.valueOf(c));
            pieces.add("\u2581" + c);
        }
        // n-grams of letters, breadth-first by length, until the vocabulary is full
        java.util.List<String> level = new java.util.ArrayList<>();
        for (char c : LETTERS.toCharArray()) {
            level.add(String.valueOf(c));
        }
        int need = size - 259;
        while (pieces.size() < need) {
            java.util.List<String> next = new java.util.ArrayList<>();
            outer:
            for (String p : level) {
                for (char c : LETTERS.toCharArray()) {
                    String q = p + c;
                    next.add(q);
                    pieces.add(q);
                    if (pieces.size() >= need) {
                        break outer;
                    }
                    pieces.add("\u2581" + q);
                    if (pieces.size() >= need) {
                        break outer;
                    }
                }
            }
            level = next;
        }
        int i = 259;
        for (String p : pieces) {
            if (i == size) {
                break;
            }
            tokens[i] = p;
            scores[i] = -(i - 259) / 100f - p.length();
            types[i] = 1; // normal
            i++;
        }
        md.put("tokenizer.ggml.model", GgufValue.ofString("llama"));
        md.put("tokenizer.ggml.tokens", GgufValue.ofStrings(tokens));
        md.put("tokenizer.ggml.scores", GgufValue.ofFloats(scores));
        md.put("tokenizer.ggml.token_type", GgufValue.ofInts(types));
        md.put("tokenizer.ggml.unknown_token_id", GgufValue.ofU32(0));
        md.put("tokenizer.ggml.bos_token_id", GgufValue.ofU32(1));
        md.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(2));
        md.put("tokenizer.ggml.add_bos_token", GgufValue.ofBool(true));
        md.put("tokenizer.ggml.add_eos_token", GgufValue.ofBool(false));
    }
}
