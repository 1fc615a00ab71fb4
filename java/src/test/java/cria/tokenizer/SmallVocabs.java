// Small vocabularies built in memory for tests: a SentencePiece one with scores and byte tokens, a byte-level BPE one with merges.
package cria.tokenizer;

import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import java.util.ArrayList;
import java.util.List;

/** Builders of tiny GGUF tokenizer metadata, so that tests can state exactly which merge must win. */
final class SmallVocabs {
    private SmallVocabs() {}

    /**
     * SentencePiece: 0 &lt;unk&gt;, 1 &lt;s&gt;, 2 &lt;/s&gt;, 3..258 &lt;0x00&gt;..&lt;0xFF&gt; (when {@code bytes}),
     * then the pieces below with their scores, and a user-defined {@code <|user|>}.
     */
    static Metadata spm(boolean bytes) {
        List<String> t = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        List<Float> s = new ArrayList<>(List.of(0f, 0f, 0f));
        List<Integer> ty = new ArrayList<>(List.of(2, 3, 3));
        if (bytes) {
            for (int b = 0; b < 256; b++) {
                t.add(String.format("<0x%02X>", b));
                s.add(0f);
                ty.add(6);
            }
        }
        Object[][] pieces = {
            {"▁", -5f}, {"a", -6f}, {"b", -6f}, {"c", -6f}, {"▁a", -1f}, {"ab", -2f}, {"bc", -0.5f}, {"▁ab", -3f},
            {"▁abc", -0.1f}, {"h", -6f}, {"i", -6f}, {"hi", -1f}, {"▁hi", -0.5f}, {"▁▁", -4f},
        };
        for (Object[] p : pieces) {
            t.add((String) p[0]);
            s.add((Float) p[1]);
            ty.add(1);
        }
        t.add("<|user|>");
        s.add(0f);
        ty.add(4);
        Metadata md = new Metadata("small-spm.gguf");
        md.put("tokenizer.ggml.model", GgufValue.ofString("llama"));
        md.put("tokenizer.ggml.tokens", GgufValue.ofStrings(t.toArray(String[]::new)));
        float[] sc = new float[s.size()];
        for (int i = 0; i < sc.length; i++) {
            sc[i] = s.get(i);
        }
        md.put("tokenizer.ggml.scores", GgufValue.ofFloats(sc));
        md.put("tokenizer.ggml.token_type", GgufValue.ofInts(ty.stream().mapToInt(Integer::intValue).toArray()));
        md.put("tokenizer.ggml.bos_token_id", GgufValue.ofU32(1));
        md.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(2));
        return md;
    }

    /**
     * Byte-level BPE: ids 0..255 are the 256 byte characters in byte order, then the merged
     * pieces in merge order, then the control tokens {@code <|begin|>} and {@code <|eot_id|>}.
     */
    static Metadata bpe(String pre, String... merges) {
        List<String> t = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            t.add(String.valueOf(ByteUnicode.charOf(b)));
        }
        for (String m : merges) {
            String joined = m.replace(" ", "");
            if (!t.contains(joined)) {
                t.add(joined);
            }
        }
        int nNormal = t.size();
        t.add("<|begin|>");
        t.add("<|eot_id|>");
        int[] types = new int[t.size()];
        for (int i = 0; i < types.length; i++) {
            types[i] = i < nNormal ? 1 : 3;
        }
        Metadata md = new Metadata("small-bpe.gguf");
        md.put("tokenizer.ggml.model", GgufValue.ofString("gpt2"));
        md.put("tokenizer.ggml.pre", GgufValue.ofString(pre));
        md.put("tokenizer.ggml.tokens", GgufValue.ofStrings(t.toArray(String[]::new)));
        md.put("tokenizer.ggml.token_type", GgufValue.ofInts(types));
        md.put("tokenizer.ggml.merges", GgufValue.ofStrings(merges));
        md.put("tokenizer.ggml.bos_token_id", GgufValue.ofU32(nNormal));
        md.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(nNormal + 1));
        return md;
    }
}
