// The byte-level BPE flavours llama.cpp knows by tokenizer.ggml.pre: split regexes and decoding flags.
package cria.tokenizer;

import java.util.List;

/**
 * What {@code tokenizer.ggml.pre} selects for a byte-level BPE vocabulary: the pre-tokenizer regexes
 * (applied in order; they are the models' own tokenizer.json patterns in the forms llama.cpp runs,
 * e.g. case-insensitive groups spelled out) and the flags llama.cpp sets for that name.
 *
 * @param cleanSpaces  decoding removes spaces before punctuation and contractions (clean_up_tokenization_spaces)
 * @param ignoreMerges a word that is itself a token is taken whole, without merging
 * @param addBos       the default for adding BOS when the file does not say (tokenizer.ggml.add_bos_token)
 */
record BpeFlavor(String name, List<String> regexes, boolean cleanSpaces, boolean ignoreMerges, boolean addBos) {

    private static final String CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
    private static final String GPT2 = PreTokenizer.GPT2_REGEX;
    private static final String LLAMA3 = PreTokenizer.LLAMA3_REGEX;
    private static final String QWEN2 = PreTokenizer.QWEN2_REGEX;
    private static final String DEEPSEEK_LETTERS = "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
    private static final String DEEPSEEK_CJK = "[一-龥ࠀ-一가-\uD7FF]+";
    private static final String PORO = " ?[^(\\s|.,!?…。，、।۔،)]+";
    private static final String CASED_WORDS = "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+%1$s"
            + "|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*%1$s";

    /** The flavour for a pre-tokenizer name; null when Cria does not know the name. */
    static BpeFlavor of(String pre) {
        String p = pre == null || pre.isEmpty() ? "default" : pre;
        return switch (p) {
            case "default" -> flavor(p, true, false, false,
                    "[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]");
            case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano" ->
                    flavor(p, true, true, true, LLAMA3);
            case "dbrx", "smaug-bpe" -> flavor(p, true, false, false, LLAMA3);
            case "chatglm-bpe", "glm4" -> flavor(p, true, false, false, LLAMA3);
            case "deepseek-llm" -> flavor(p, false, false, false,
                    "[\r\n]", DEEPSEEK_LETTERS, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", DEEPSEEK_CJK, "\\p{N}+");
            case "deepseek-coder" -> flavor(p, false, false, false,
                    "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", DEEPSEEK_CJK, "\\p{N}");
            case "deepseek-v3", "hunyuan-dense", "joyai-llm" -> flavor(p, false, false, false,
                    "\\p{N}{1,3}", "[一-龥\u3040-ゟ゠-ヿ]+",
                    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
                            + "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+");
            case "falcon" -> flavor(p, true, false, false, "[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]");
            case "starcoder", "refact", "codeshell", "exaone", "minerva-7b" -> flavor(p, true, false, false, "\\p{N}", GPT2);
            case "command-r", "smollm" -> flavor(p, false, false, false, "\\p{N}", GPT2);
            case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
                 "modern-bert", "mpt", "olmo", "jais", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe" ->
                    flavor(p, true, false, false, GPT2);
            case "trillion", "granite-docling" -> flavor(p, false, false, false, GPT2);
            case "stablelm2" -> flavor(p, true, false, false, QWEN2);
            case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2" ->
                    flavor(p, false, false, false, QWEN2);
            case "megrez" -> flavor(p, true, false, false, QWEN2);
            case "qwen35" -> flavor(p, false, false, false, CONTRACTIONS
                    + "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
            case "poro-chat" -> flavor(p, false, false, false, PORO);
            case "bloom", "gpt3-finnish" -> flavor(p, true, false, false, PORO);
            case "viking" -> flavor(p, false, false, false, PORO, "\\p{N}");
            case "tekken" -> flavor(p, false, true, true, String.format(CASED_WORDS, "")
                    + "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
            case "gpt-4o", "llama4", "kanana2", "minimax-m2" -> flavor(p, false, false, false,
                    String.format(CASED_WORDS, CONTRACTIONS + "?")
                    + "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
            case "bailingmoe", "bailingmoe2", "llada-moe" -> flavor(p, false, false, false,
                    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                            + "|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+");
            case "seed-coder" -> flavor(p, false, false, false, CONTRACTIONS
                    + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
            case "exaone-moe" -> flavor(p, true, false, false, CONTRACTIONS
                    + "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?"
                            + "|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+");
            default -> null;
        };
    }

    private static BpeFlavor flavor(String name, boolean cleanSpaces, boolean ignoreMerges, boolean addBos, String... regexes) {
        return new BpeFlavor(name, List.of(regexes), cleanSpaces, ignoreMerges, addBos);
    }
}
