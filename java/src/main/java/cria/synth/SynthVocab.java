// Vocabularies the project makes itself: SentencePiece-style (specials, 256 byte tokens, letter n-grams) or byte-level BPE (qwen2-style).
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
        write(md, size, new String[0]);
    }

    /**
     * The same vocabulary ending in Phi-3's control tokens {@code <|endoftext|>} (the end of text,
     * as in Phi-3's files), {@code <|assistant|>}, {@code <|end|>} and {@code <|user|>}, in place of
     * its last pieces. llama.cpp gives these attributes by token text in files whose name says
     * phi-3, and refuses such a file without {@code <|endoftext|>}.
     */
    static void writePhi3(Metadata md, int size) {
        write(md, size, new String[] {"<|endoftext|>", "<|assistant|>", "<|end|>", "<|user|>"});
        md.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(size - 4));
        md.put("tokenizer.ggml.padding_token_id", GgufValue.ofU32(size - 4));
    }

    /**
     * A Gemma-style vocabulary: {@code <pad>}, {@code <eos>}, {@code <bos>}, {@code <unk>} first (ids 0
     * to 3, as in Gemma's files), the byte tokens and pieces, and the turn markers
     * {@code <start_of_turn>}, {@code <end_of_turn>} last; no space prefix (Gemma's converter writes
     * {@code add_space_prefix = false}), BOS added, and a Gemma-style chat template (system text
     * opens the first user turn, the assistant's role is {@code model}).
     */
    static void writeGemma(Metadata md, int size) {
        write(md, size, new String[] {"<pad>", "<eos>", "<bos>", "<unk>"}, new int[] {3, 3, 3, 2},
                new String[] {"<start_of_turn>", "<end_of_turn>"});
        md.put("tokenizer.ggml.unknown_token_id", GgufValue.ofU32(3));
        md.put("tokenizer.ggml.bos_token_id", GgufValue.ofU32(2));
        md.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(1));
        md.put("tokenizer.ggml.padding_token_id", GgufValue.ofU32(0));
        md.put("tokenizer.ggml.add_space_prefix", GgufValue.ofBool(false));
        md.put("tokenizer.chat_template", GgufValue.ofString(GEMMA_TEMPLATE));
    }

    /** Gemma's turn format, written for these files (the same prompts as the template of Gemma's releases). */
    static final String GEMMA_TEMPLATE = String.join("",
            "{{ bos_token }}",
            "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] + '\\n\\n' %}{% set turns = messages[1:] %}",
            "{% else %}{% set sys = '' %}{% set turns = messages %}{% endif %}",
            "{% for m in turns %}",
            "{% if m['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = m['role'] %}{% endif %}",
            "{{ '<start_of_turn>' + role + '\\n' + (sys if loop.first else '') + (m['content'] | trim) + '<end_of_turn>\\n' }}",
            "{% endfor %}",
            "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}");

    private static void write(Metadata md, int size, String[] specials) {
        write(md, size, new String[] {"<unk>", "<s>", "</s>"}, new int[] {2, 3, 3}, specials);
    }

    /** head (with its token types) first, then the 256 byte tokens, the pieces, and specials (control tokens) last. */
    private static void write(Metadata md, int size, String[] head, int[] headTypes, String[] specials) {
        String[] tokens = new String[size];
        float[] scores = new float[size];
        int[] types = new int[size];
        int h = head.length;
        for (int i = 0; i < h; i++) {
            tokens[i] = head[i];
            types[i] = headTypes[i];
        }
        for (int b = 0; b < 256; b++) {
            tokens[h + b] = String.format("<0x%02X>", b);
            types[h + b] = 6; // byte
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
        int need = size - (h + 256) - specials.length;
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
        int i = h + 256;
        for (String p : pieces) {
            if (i >= size - specials.length) {
                break;
            }
            tokens[i] = p;
            scores[i] = -(i - (h + 256)) / 100f - p.length();
            types[i] = 1; // normal
            i++;
        }
        for (String sp : specials) {
            tokens[i] = sp;
            scores[i] = 0;
            types[i] = 3; // control
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

    /** The bytes GPT-2's byte-level BPE spells as themselves: printable Latin-1 without the space and soft hyphen. */
    private static boolean printable(int b) {
        return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    }

    /**
     * A byte-level BPE vocabulary of {@code size} tokens (at least 260), as Qwen2's and GPT-2's are
     * laid out: the 256 byte symbols first (the printable ones, which spell themselves, in byte
     * order, then the rest spelled U+0100 up, also in byte order; a space is {@code Ġ}), then the
     * merged pieces, each with its merge rule ({@code "left right"}, rank = order): {@code Ġ} +
     * letter, then letter n-grams with and without the {@code Ġ}, breadth-first; then three control
     * tokens {@code <|endoftext|>} (end of text, as in Qwen base models), {@code <|im_start|>},
     * {@code <|im_end|>}. {@code pre} names the pre-tokenizer ({@code tokenizer.ggml.pre}).
     */
    static void writeByteLevel(Metadata md, int size, String pre) {
        String[] specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
        int normal = size - specials.length;
        java.util.List<String> tokens = new java.util.ArrayList<>(size);
        char[] spell = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            spell[b] = printable(b) ? (char) b : (char) (0x100 + extra++);
        }
        for (int b = 0; b < 256; b++) {
            if (printable(b)) {
                tokens.add(String.valueOf(spell[b]));
            }
        }
        for (int b = 0; b < 256; b++) {
            if (!printable(b)) {
                tokens.add(String.valueOf(spell[b]));
            }
        }
        String space = String.valueOf(spell[' ']);
        java.util.Set<String> known = new java.util.HashSet<>(tokens);
        java.util.List<String> merges = new java.util.ArrayList<>();
        java.util.List<String> level = new java.util.ArrayList<>();
        for (char c : LETTERS.toCharArray()) {
            level.add(String.valueOf(c));
            addMerge(tokens, known, merges, space, String.valueOf(c), normal);
        }
        // n-grams of letters, breadth-first by length, each the merge of a shorter piece and a letter
        while (tokens.size() < normal) {
            java.util.List<String> next = new java.util.ArrayList<>();
            for (String p : level) {
                for (char c : LETTERS.toCharArray()) {
                    String l = String.valueOf(c);
                    if (addMerge(tokens, known, merges, p, l, normal)) {
                        next.add(p + l);
                    }
                    addMerge(tokens, known, merges, space + p, l, normal);
                }
            }
            level = next;
        }
        int[] types = new int[size];
        java.util.Arrays.fill(types, 1); // normal
        for (int i = 0; i < specials.length; i++) {
            types[normal + i] = 3;         // control
            tokens.add(specials[i]);
        }
        md.put("tokenizer.ggml.model", GgufValue.ofString("gpt2"));
        md.put("tokenizer.ggml.pre", GgufValue.ofString(pre));
        md.put("tokenizer.ggml.tokens", GgufValue.ofStrings(tokens.toArray(new String[0])));
        md.put("tokenizer.ggml.token_type", GgufValue.ofInts(types));
        md.put("tokenizer.ggml.merges", GgufValue.ofStrings(merges.toArray(new String[0])));
        md.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(normal));
        md.put("tokenizer.ggml.bos_token_id", GgufValue.ofU32(normal));
        md.put("tokenizer.ggml.padding_token_id", GgufValue.ofU32(normal));
        md.put("tokenizer.ggml.add_bos_token", GgufValue.ofBool(false));
    }

    /** Adds the piece {@code left + right} and its merge rule while there is room and it is new; whether it did. */
    private static boolean addMerge(java.util.List<String> tokens, java.util.Set<String> known, java.util.List<String> merges,
                                    String left, String right, int limit) {
        String piece = left + right;
        if (tokens.size() >= limit || !known.contains(left) || !known.contains(right) || !known.add(piece)) {
            return false;
        }
        tokens.add(piece);
        merges.add(left + " " + right);
        return true;
    }
}
