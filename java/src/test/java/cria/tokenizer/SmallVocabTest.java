// Tokenizer behaviour on tiny hand-made vocabularies: merge order, byte fallback, special tokens, flags, decoding, errors.
package cria.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import org.junit.jupiter.api.Test;

class SmallVocabTest {
    // Ids in SmallVocabs.spm(true): bytes at 3 + b, pieces from 259.
    static final int SP = 259, A = 260, B = 261, AB = 264, SP_A = 263, SP_ABC = 267, SP_HI = 271, SP_SP = 272, USER = 273;

    static int byteId(int b) {
        return 3 + b;
    }

    @Test
    void spmMergesBestScoreFirst() {
        Tokenizer t = Tokenizer.fromMetadata(SmallVocabs.spm(true));
        // ▁ a b c: "bc" (-0.5) beats "▁a" (-1) and "ab" (-2); then ▁a, then ▁abc (-0.1).
        assertArrayEquals(new int[] {SP_ABC}, t.encode("abc", false, false));
        assertArrayEquals(new int[] {1, SP_ABC}, t.encode("abc", true, false), "BOS by default for SentencePiece");
        // "▁a▁▁b": ▁a first, then ▁▁.
        assertArrayEquals(new int[] {SP_A, SP_SP, B}, t.encode("a  b", false, false));
        assertEquals("a  b", t.decode(new int[] {SP_A, SP_SP, B}, false));
        assertArrayEquals(new int[0], t.encode("", false, false));
        assertArrayEquals(new int[] {1}, t.encode("", true, false));
    }

    @Test
    void spmFallsBackToBytes() {
        Tokenizer t = Tokenizer.fromMetadata(SmallVocabs.spm(true));
        assertArrayEquals(new int[] {SP, byteId('z')}, t.encode("z", false, false));
        int[] e = t.encode("é", false, false);
        assertArrayEquals(new int[] {SP, byteId(0xC3), byteId(0xA9)}, e);
        assertEquals("é", t.decode(e, false));
        int[] emoji = t.encode("a🦙", false, false);
        assertEquals(1 + 4, emoji.length);
        assertEquals("a🦙", t.decode(emoji, false));
    }

    @Test
    void spmWithoutByteTokensUsesUnknown() {
        Tokenizer t = Tokenizer.fromMetadata(SmallVocabs.spm(false));
        int sp = t.tokenId("▁");
        assertArrayEquals(new int[] {sp, 0}, t.encode("é", false, false));
        assertEquals("", t.decode(new int[] {0}, false), "unknown renders only as special");
        assertEquals("<unk>", t.decode(new int[] {0}, true));
    }

    @Test
    void spmSpecialTokens() {
        Tokenizer t = Tokenizer.fromMetadata(SmallVocabs.spm(true));
        // A user-defined token is always cut out; the text after it gets the space prefix again.
        assertArrayEquals(new int[] {SP_HI, USER, SP_ABC}, t.encode("hi<|user|>abc", false, false));
        // A control token is plain text unless special parsing is on.
        assertArrayEquals(new int[] {SP, byteId('<'), byteId('s'), byteId('>')}, t.encode("<s>", false, false));
        assertArrayEquals(new int[] {1}, t.encode("<s>", false, true));
        assertArrayEquals(new int[] {1, SP_HI}, t.encode("<s>hi", false, true));
        // Decoding: control tokens only when asked; decode() undoes every prefix space encode() added,
        // llama.cpp's detokenize only the first token's.
        assertEquals("abc", t.decode(new int[] {1, SP_ABC}, false));
        assertEquals("<s>abc", t.decode(new int[] {1, SP_ABC}, true));
        assertEquals("hi<|user|>abc", t.decode(new int[] {SP_HI, USER, SP_ABC}, false));
        assertEquals(" abc", t.detokenize(new int[] {1, SP_ABC}, false));
        assertEquals("<s> abc", t.detokenize(new int[] {1, SP_ABC}, true));
        assertEquals("hi<|user|> abc", t.detokenize(new int[] {SP_HI, USER, SP_ABC}, false));
        assertTrue(t.isEndOfGeneration(2));
        assertFalse(t.isEndOfGeneration(1));
    }

    @Test
    void spmFlagsFromMetadata() {
        Metadata md = SmallVocabs.spm(true);
        md.put("tokenizer.ggml.add_bos_token", GgufValue.ofBool(false));
        md.put("tokenizer.ggml.add_eos_token", GgufValue.ofBool(true));
        md.put("tokenizer.ggml.add_space_prefix", GgufValue.ofBool(false));
        Tokenizer t = Tokenizer.fromMetadata(md);
        int bc = t.tokenId("bc");
        assertArrayEquals(new int[] {A, bc, 2}, t.encode("abc", true, false), "no space prefix, no BOS, EOS");
        assertEquals("abc", t.decode(new int[] {A, bc}, false));
    }

    // Ids in SmallVocabs.bpe(..., MERGES): bytes are their own ids, merged pieces from 256.
    static final String[] MERGES = {"Ġ t", "h e", "t he", "Ġt he", "i n", "x yz"};
    static final int THE = 258, SP_THE = 259, IN = 260, XYZ = 261, BEGIN = 262, EOT = 263;

    @Test
    void bpeAppliesMergesByRank() {
        Tokenizer t = Tokenizer.fromMetadata(SmallVocabs.bpe("gpt-2", MERGES));
        // "Ġ t" (rank 0) comes before "t he" (rank 2), so " the" is Ġt + he -> Ġthe.
        assertArrayEquals(new int[] {SP_THE}, t.encode(" the", false, false));
        assertArrayEquals(new int[] {THE}, t.encode("the", false, false));
        assertArrayEquals(new int[] {'t', 'h', IN}, t.encode("thin", false, false));
        assertArrayEquals(new int[] {THE, SP_THE}, t.encode("the the", false, false));
        // "xyz" is a token but no merge sequence reaches it.
        assertArrayEquals(new int[] {'x', 'y', 'z'}, t.encode("xyz", false, false));
        assertArrayEquals(new int[] {THE}, t.encode("the", true, false), "GPT-2 adds no BOS by default");
    }

    @Test
    void bpeLlama3TakesWholeWordsAndAddsBos() {
        Tokenizer t = Tokenizer.fromMetadata(SmallVocabs.bpe("llama-bpe", MERGES));
        assertArrayEquals(new int[] {XYZ}, t.encode("xyz", false, false), "ignore_merges: a word that is a token");
        assertArrayEquals(new int[] {BEGIN, THE}, t.encode("the", true, false));
        assertTrue(t.addsBos());
    }

    @Test
    void bpeBytesAndDecoding() {
        Tokenizer t = Tokenizer.fromMetadata(SmallVocabs.bpe("gpt-2", MERGES));
        int[] e = t.encode("é\n", false, false);
        assertArrayEquals(new int[] {0xC3, 0xA9, '\n'}, e);
        assertEquals("é\n", t.decode(e, false));
        StreamDecoder sd = t.streamDecoder(false);
        assertEquals("", sd.feed(0xC3));
        assertTrue(sd.hasPending());
        assertEquals("é", sd.feed(0xA9));
        assertEquals("", sd.feed(0xF0));
        assertEquals("\uFFFD", sd.flush(), "an unfinished character comes out as U+FFFD");
        assertEquals("\uFFFDa", t.streamDecoder(false).feed(0x80) + "a", "a stray continuation byte is not held");
    }

    @Test
    void bpeSpecialTokensAndCleanup() {
        Tokenizer t = Tokenizer.fromMetadata(SmallVocabs.bpe("gpt-2", MERGES));
        assertArrayEquals(new int[] {EOT}, t.encode("<|eot_id|>", false, true));
        assertEquals(10, t.encode("<|eot_id|>", false, false).length, "plain text without --special");
        assertArrayEquals(new int[] {THE, EOT, SP_THE}, t.encode("the<|eot_id|> the", false, true));
        assertEquals("the the", t.decode(new int[] {THE, EOT, SP_THE}, false));
        assertEquals("the<|eot_id|> the", t.decode(new int[] {THE, EOT, SP_THE}, true));
        assertTrue(t.isEndOfGeneration(EOT));
        int[] e = t.encode("Hello , world . I 'm", false, false);
        assertEquals("Hello , world . I 'm", t.decode(e, false));
        assertEquals("Hello, world. I'm", t.detokenize(e, false), "GPT-2 cleans up spaces in llama_detokenize");
    }

    @Test
    void errorsAreOneLineCriaExceptions() {
        Metadata bert = new Metadata("bert.gguf");
        bert.put("tokenizer.ggml.model", GgufValue.ofString("bert"));
        bert.put("tokenizer.ggml.tokens", GgufValue.ofStrings(new String[] {"a"}));
        CriaException e = assertThrows(CriaException.class, () -> Tokenizer.fromMetadata(bert));
        assertTrue(e.getMessage().contains("bert.gguf") && e.getMessage().contains("'bert'"), e.getMessage());

        Metadata none = new Metadata("empty.gguf");
        e = assertThrows(CriaException.class, () -> Tokenizer.fromMetadata(none));
        assertTrue(e.getMessage().startsWith("empty.gguf: no tokenizer"), e.getMessage());

        Metadata noTokens = new Metadata("x.gguf");
        noTokens.put("tokenizer.ggml.model", GgufValue.ofString("llama"));
        e = assertThrows(CriaException.class, () -> Tokenizer.fromMetadata(noTokens));
        assertTrue(e.getMessage().contains("tokenizer.ggml.tokens"), e.getMessage());

        Metadata noMerges = SmallVocabs.bpe("gpt-2", MERGES);
        noMerges.remove("tokenizer.ggml.merges");
        e = assertThrows(CriaException.class, () -> Tokenizer.fromMetadata(noMerges));
        assertTrue(e.getMessage().contains("tokenizer.ggml.merges"), e.getMessage());

        Metadata badPre = SmallVocabs.bpe("no-such-pre", MERGES);
        e = assertThrows(CriaException.class, () -> Tokenizer.fromMetadata(badPre));
        assertTrue(e.getMessage().contains("'no-such-pre'"), e.getMessage());

        Tokenizer t = Tokenizer.fromMetadata(SmallVocabs.spm(true));
        assertThrows(CriaException.class, () -> t.decode(new int[] {99999}, false));
        for (CriaException x : new CriaException[] {e}) {
            assertFalse(x.getMessage().contains("\n"));
        }
    }
}
