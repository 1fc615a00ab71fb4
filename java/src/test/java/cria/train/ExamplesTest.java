// Examples: each kind's tokens and loss mask checked by hand on stories260K's vocabulary, errors with line numbers, truncation, augmentation.
package cria.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.SharedData;
import cria.TestModels;
import cria.gguf.GgufFile;
import cria.tokenizer.ChatTemplate;
import cria.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExamplesTest {
    /** A plain template: "role: content" lines, the generation prompt "assistant:". */
    static final String LINES_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
            + "{% if add_generation_prompt %}assistant:{% endif %}";

    @TempDir
    Path dir;

    private static Tokenizer tokenizer(Path gguf) {
        try (GgufFile f = GgufFile.open(gguf)) {
            return Tokenizer.fromMetadata(f.metadata());
        }
    }

    private static Tokenizer stories() {
        return tokenizer(SharedData.require("models/stories260K.gguf"));
    }

    private Tokenizer tiny() {
        return tokenizer(TestModels.tinyLlama(dir.resolve("tiny.gguf"), 1));
    }

    private static Examples parse(String jsonl, List<String> labels) {
        return Examples.parse(jsonl.getBytes(StandardCharsets.UTF_8), "data.jsonl", labels);
    }

    /** The pieces of an encoding, a trained token marked with '*'. */
    private static List<String> pieces(Tokenizer tok, Examples.Encoded e) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < e.tokens().length; i++) {
            out.add(tok.tokenText(e.tokens()[i]) + (e.trained()[i] ? "*" : ""));
        }
        return out;
    }

    @Test
    void aTextTrainsEveryTokenAfterBosAndEos() {
        Tokenizer tok = stories();
        Examples ex = parse("{\"text\": \"Once upon a time\"}\n", null).bind(tok, null);
        Examples.Encoded e = ex.encode(ex.examples().get(0), 64, 0, 0);
        assertEquals(List.of("<s>", "▁Once*", "▁upon*", "▁a*", "▁time*", "</s>*"), pieces(tok, e));
        assertFalse(e.truncated());
        assertEquals(5, e.trainedCount());
        assertArrayEquals(Arrays.copyOf(e.tokens(), 5), e.inputs());
        assertArrayEquals(Arrays.copyOfRange(e.tokens(), 1, 6), e.targets(), "every target scored");
    }

    @Test
    void aCompletionTrainsItsTokensAndEosOnly() {
        Tokenizer tok = stories();
        Examples ex = parse("{\"prompt\": \"Q: hi\\nA:\", \"completion\": \" yes\"}\n", null).bind(tok, null);
        Example x = ex.examples().get(0);
        Examples.Encoded e = ex.encode(x, 64, 0, 0);
        assertEquals(List.of("<s>", "▁", "Q", ":", "▁h", "i", "<0x0A>", "A", ":", "▁y*", "es*", "</s>*"), pieces(tok, e));
        assertArrayEquals(new int[] {-1, -1, -1, -1, -1, -1, -1, -1, e.tokens()[9], e.tokens()[10], tok.eos()}, e.targets());
        // the scoring API gives the same two parts
        int[] prompt = ex.encodePrompt(x);
        int[] completion = ex.encodeCompletion(x, x.completion());
        assertArrayEquals(e.tokens(), concat(prompt, completion));
        // a prompt that ends with a space tokenizes as one without it: the space goes to the completion
        Examples spaced = parse("{\"prompt\": \"Q: hi\\nA: \", \"completion\": \"yes\"}\n", null).bind(tok, null);
        assertArrayEquals(e.tokens(), spaced.encode(spaced.examples().get(0), 64, 0, 0).tokens());
    }

    @Test
    void aClassificationIsTextCueAndLabel() {
        Tokenizer tok = stories();
        Examples ex = parse("{\"text\": \"the cat sat.\", \"label\": \"happy\"}\n{\"text\": \"a dog\", \"label\": \"sad\"}\n", null)
                .bind(tok, null);
        Example x = ex.examples().get(0);
        assertEquals(Example.Kind.CLASSIFICATION, x.kind());
        assertEquals("happy", x.label());
        assertEquals(List.of("<s>", "▁the", "▁c", "at", "▁s", "at", ".", "<0x0A>", "L", "a", "b", "e", "l", ":", "▁happy*", "</s>*"),
                pieces(tok, ex.encode(x, 64, 0, 0)));
        // every label of the set scores after the same prompt tokens
        int[] sad = ex.encodeCompletion(x, "sad");
        assertEquals(List.of("▁sa", "d", "</s>"), Arrays.stream(sad).mapToObj(tok::tokenText).toList());
        assertEquals(List.of("happy", "sad"), ex.labels());
        assertEquals("2 examples: 2 classification (labels happy, sad)", ex.summary());
    }

    @Test
    void aChatTrainsTheAssistantTurnsAndTheirEndOfTurn() {
        Tokenizer tok = stories();
        ChatTemplate lines = ChatTemplate.jinja(LINES_TEMPLATE, "<s>", "</s>");
        String chat = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello there\"},"
                + " {\"role\": \"user\", \"content\": \"bye\"}, {\"role\": \"assistant\", \"content\": \"see you\"}]}\n";
        Examples ex = parse(chat, null).bind(tok, lines);
        Examples.Encoded e = ex.encode(ex.examples().get(0), 128, 0, 0);
        assertEquals(List.of("<s>", "▁u", "s", "er", ":", "▁h", "i", "<0x0A>", "a", "s", "s", "is", "t", "an", "t", ":",
                "▁he*", "ll*", "o*", "▁there*", "<0x0A>*", "u", "s", "er", ":", "▁b", "y", "e", "<0x0A>", "a", "s", "s", "is", "t", "an", "t", ":",
                "▁s*", "e*", "e*", "▁you*", "<0x0A>*"), pieces(tok, e));
        // the Llama 2 format: each turn ends with its EOS, which is trained; the next BOS is not
        Examples l2 = parse(chat, null).bind(tok, ChatTemplate.named("llama2", "<s>", "</s>"));
        List<String> p = pieces(tok, l2.encode(l2.examples().get(0), 128, 0, 0));
        assertEquals(List.of("▁he*", "ll*", "o*", "▁there*", "▁*", "</s>*", "<s>"), p.subList(p.indexOf("▁he*"), p.indexOf("▁he*") + 7));
        assertEquals("</s>*", p.get(p.size() - 1));
    }

    @Test
    void aTemplateThatOpensAnAssistantTurnAlwaysStillEndsTheTurnAtItsEndToken() {
        // as Llama 3's first template: the generation prompt whatever add_generation_prompt says
        Tokenizer tok = stories();
        ChatTemplate always = ChatTemplate.jinja("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}"
                + "assistant:", "<s>", "</s>");
        Examples ex = parse("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yes\"}]}",
                null).bind(tok, always);
        List<String> p = pieces(tok, ex.encode(ex.examples().get(0), 128, 0, 0));
        int eos = p.indexOf("</s>*");
        assertTrue(eos > 0 && p.subList(eos + 1, p.size()).stream().noneMatch(s -> s.endsWith("*")), "nothing after the turn's end: " + p);
    }

    @Test
    void chatsNeedATemplateThatRendersPrefixByPrefix() {
        Tokenizer tok = tiny();
        String chat = "{\"text\": \"ab\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n";
        CriaException none = assertThrows(CriaException.class, () -> parse(chat, null).bind(tok, null));
        assertTrue(none.getMessage().startsWith("data.jsonl:2: ") && none.getMessage().contains("has none"), none.getMessage());
        ChatTemplate reversed = ChatTemplate.jinja("{% for m in messages|reverse %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}", "<s>", "</s>");
        CriaException bad = assertThrows(CriaException.class, () -> parse(chat, null).bind(tok, reversed));
        assertTrue(bad.getMessage().startsWith("data.jsonl:2: ") && bad.getMessage().contains("prefix by prefix"), bad.getMessage());
    }

    @Test
    void badLinesAreErrorsNamingFileAndLine() {
        String[][] cases = {
            {"{\"text\": \"a\"}\n\n{\"prompt\": \"a\"}\n", "data.jsonl:3: expected {\"text\"}, {\"prompt\",\"completion\"}, {\"messages\":[...]} or"
                    + " {\"text\",\"label\"}; got {\"prompt\"}"},
            {"{\"text\": \"a\", \"lable\": \"x\"}", "data.jsonl:1: expected {\"text\"}, {\"prompt\",\"completion\"}, {\"messages\":[...]} or"
                    + " {\"text\",\"label\"}; got {\"text\",\"lable\"}"},
            {"[1, 2]", "got an array"},
            {"{\"text\": \"a\"} {\"text\": \"b\"}", "data.jsonl:1: not valid JSON"},
            {"{\"text\": \"a\", \"text\": \"b\"}", "data.jsonl:1: not valid JSON"},
            {"{\"text\": 3}", "data.jsonl:1: \"text\" must be a string; got a number"},
            {"{\"text\": \"  \"}", "data.jsonl:1: \"text\" is empty"},
            {"{\"text\": \"x\", \"label\": [1]}", "\"label\" must be a string"},
            {"{\"messages\": []}", "\"messages\" must be a non-empty array"},
            {"{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}", "data.jsonl:1: no message has the role \"assistant\""},
            {"{\"messages\": [{\"role\": \"user\"}]}", "data.jsonl:1: message 1 must be {\"role\": string, \"content\": string}; got {\"role\"}"},
            {"\n  \n", "data.jsonl: no examples"},
            {"{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"x\"}", "every example has the label 'x'"},
        };
        for (String[] c : cases) {
            CriaException e = assertThrows(CriaException.class, () -> parse(c[0], null), c[0]);
            assertTrue(e.getMessage().contains(c[1]), "for " + c[0] + ":\n" + e.getMessage());
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        }
        byte[] latin1 = "{\"text\": \"ok\"}\n{\"text\": \"caf\u00e9\"}".getBytes(StandardCharsets.ISO_8859_1);
        CriaException e = assertThrows(CriaException.class, () -> Examples.parse(latin1, "data.jsonl", null));
        assertEquals("data.jsonl:2: not valid UTF-8; save the file as UTF-8", e.getMessage());
        CriaException missing = assertThrows(CriaException.class, () -> Examples.read(dir.resolve("nope.jsonl"), null));
        assertTrue(missing.getMessage().endsWith("nope.jsonl: no such file"), missing.getMessage());
    }

    @Test
    void theLabelSetIsGivenOrTheFilesSorted() {
        String data = "{\"text\": \"a\", \"label\": \"sad\"}\n{\"text\": \"b\", \"label\": \"happy\"}\n{\"text\": \"c\", \"label\": 1}\n";
        assertEquals(List.of("1", "happy", "sad"), parse(data, null).labels());
        assertEquals(List.of("sad", "happy", "1", "other"), parse(data, List.of("sad", "happy", "1", "other")).labels());
        CriaException outside = assertThrows(CriaException.class, () -> parse(data, List.of("sad", "happy")));
        assertEquals("data.jsonl:3: label '1' is not one of the labels given (sad, happy)", outside.getMessage());
        // one label in the file is fine when the set has more
        assertEquals(List.of("x", "y"), parse("{\"text\": \"a\", \"label\": \"x\"}", List.of("x", "y")).labels());
        assertThrows(CriaException.class, () -> parse(data, List.of("sad", "sad", "happy", "1")));
        // kinds mix; a file without classifications has no labels
        Examples mixed = parse("{\"text\": \"a\"}\n{\"prompt\": \"\", \"completion\": \"b\"}\n{\"text\": \"c\"}\n", null);
        assertEquals(List.of(), mixed.labels());
        assertEquals(Map.of(Example.Kind.TEXT, 2, Example.Kind.COMPLETION, 1), mixed.kinds());
        assertEquals(List.of(1, 2, 3), mixed.examples().stream().map(Example::line).toList());
    }

    @Test
    void longExamplesAreCutKeepingWhatIsTrainedAndCounted() {
        Tokenizer tok = tiny();
        Examples ex = parse("{\"text\": \"abcdefghijklmnopqrst\"}\n{\"text\": \"abcdefghijklmnopqrst\", \"label\": \"x\"}\n"
                + "{\"text\": \"ab\", \"label\": \"y\"}\n", null).bind(tok, null);
        Examples.Encoded text = ex.encode(ex.examples().get(0), 8, 0, 0);
        Examples.Encoded whole = ex.encode(ex.examples().get(0), 1000, 0, 0);
        assertTrue(text.truncated() && !whole.truncated());
        assertArrayEquals(Arrays.copyOf(whole.tokens(), 8), text.tokens(), "a text keeps its start");
        Example cls = ex.examples().get(1);
        int max = 14;
        assertTrue(ex.encode(ex.examples().get(2), 1000, 0, 0).tokens().length <= max, "the short one fits");
        Examples.Encoded cut = ex.encode(cls, max, 0, 0);
        Examples.Encoded full = ex.encode(cls, 1000, 0, 0);
        assertEquals(max, cut.tokens().length);
        assertTrue(cut.truncated());
        assertEquals(tok.bos(), cut.tokens()[0], "BOS stays");
        int[] completion = ex.encodeCompletion(cls, "x");
        assertArrayEquals(completion, Arrays.copyOfRange(cut.tokens(), max - completion.length, max), "the label survives");
        assertArrayEquals(Arrays.copyOfRange(full.tokens(), full.tokens().length - (max - 1), full.tokens().length),
                Arrays.copyOfRange(cut.tokens(), 1, max), "the prompt loses its start");
        assertEquals(completion.length, cut.trainedCount());
        long truncated = ex.examples().stream().filter(e -> ex.encode(e, max, 0, 0).truncated()).count();
        assertEquals(2, truncated, "the short classification fits");
    }

    @Test
    void augmentationIsSeededAndNeverTouchesTheLabel() {
        Tokenizer tok = tiny();
        String text = "one day the little dog ran to the park and played with a red ball until the sun went down";
        Examples ex = parse("{\"text\": \"" + text + "\", \"label\": \"happy\"}\n{\"text\": \"x\", \"label\": \"sad\"}\n", null).bind(tok, null);
        Example x = ex.examples().get(0);
        Examples.Encoded plain = ex.encode(x, 1000, 0, 0);
        int[] label = ex.encodeCompletion(x, "happy");
        int differ = 0;
        for (int epoch = 0; epoch < 20; epoch++) {
            long seed = Augment.seed(7, 0, epoch);
            Examples.Encoded a = ex.encode(x, 1000, 0.3, seed);
            assertArrayEquals(a.tokens(), ex.encode(x, 1000, 0.3, seed).tokens(), "the same seed, the same variant");
            assertArrayEquals(label, Arrays.copyOfRange(a.tokens(), a.tokens().length - label.length, a.tokens().length), "the label");
            assertEquals(label.length, a.trainedCount());
            differ += Arrays.equals(a.tokens(), plain.tokens()) ? 0 : 1;
        }
        assertTrue(differ >= 15, "most epochs see another variant: " + differ);
        assertNotEquals(Augment.seed(7, 0, 1), Augment.seed(7, 1, 0));
    }

    @Test
    void augmentDropsAndSwapsWordsButNeverAllAndKeepsLayout() {
        String text = "the cat sat on the mat\nand the dog ran";
        assertEquals(text, Augment.words(text, 0, 1, false));
        List<String> words = List.of(text.split("\\s+"));
        for (long seed = 0; seed < 200; seed++) {
            String a = Augment.words(text, 1.0, seed, true);
            assertFalse(a.isBlank());
            assertTrue(a.endsWith(" ran") || a.endsWith("\nran"), "the last word kept: " + a);
            for (String w : a.split("\\s+")) {
                assertTrue(words.contains(w), "only the text's words: " + a);
            }
            assertTrue(a.split("\\s+").length <= words.size());
            assertEquals(a.strip(), a, "no spaces added at the ends: [" + a + "]");
        }
        assertEquals("alone", Augment.words("alone", 1.0, 3, false));
        // at rate 1 roughly half of the words go
        int kept = 0;
        for (long seed = 0; seed < 200; seed++) {
            kept += Augment.words(text, 1.0, seed, false).split("\\s+").length;
        }
        assertEquals(0.5 * words.size(), kept / 200.0, 1.0);
        assertThrows(IllegalArgumentException.class, () -> Augment.words(text, 1.5, 0, false));
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void aFileOnDiskLoadsWithItsName() throws Exception {
        Path f = dir.resolve("d.jsonl");
        Files.writeString(f, "\uFEFF{\"text\": \"ab\"}\r\n\r\n{\"prompt\": \"a\", \"completion\": \"b\"}\r\n");
        Examples ex = Examples.load(f, tiny(), null, null);
        assertEquals(2, ex.examples().size());
        assertEquals(3, ex.examples().get(1).line());
        assertEquals(f.toString(), ex.source());
    }
}
