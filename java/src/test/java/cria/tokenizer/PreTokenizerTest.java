// The hand-written GPT-2 / Llama 3 / Qwen 2 scanners against the same patterns run by java.util.regex, on random tricky text.
package cria.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class PreTokenizerTest {
    // Letters, digits (also non-ASCII), marks, punctuation, symbols, all kinds of spaces, emoji, CJK, contractions.
    private static final String[] PIECES = {
        "a", "Z", "é", "ß", "Ж", "λ", "中", "日本", "한", "ก", "\u0301", "\u093F", "0", "7", "٣", "½", "Ⅻ",
        "'", "'s", "'S", "'ll", "'LL", "'re", "'Ve", "'d", "'m", "'t", "'x",
        " ", "  ", "\t", "\n", "\r\n", "\r", "\u00A0", "\u3000", "\u2009", "\u0085", "\u000B", "\u001C",
        ".", ",", "!", "?", "-", "_", "(", ")", "<", "|", ">", "$", "+", "~", "^", "`", "…", "«", "€", "©", "™",
        "😀", "🦙", "\u200D", "\uFE0F", "\u0000", "\u007F", "\uE000", "\uFFFD", "\uD7FF", "\u0378",
    };

    static String randomText(Random r) {
        StringBuilder sb = new StringBuilder();
        int n = 1 + r.nextInt(12);
        for (int i = 0; i < n; i++) {
            sb.append(PIECES[r.nextInt(PIECES.length)]);
        }
        return sb.toString();
    }

    static List<String> words(PreTokenizer.Step step, String s) {
        int[] cps = Unicode.codePoints(s, 0, s.length());
        IntList in = new IntList();
        in.add(cps.length);
        IntList out = new IntList();
        step.split(new PreTokenizer.Text(cps), in, out);
        List<String> w = new ArrayList<>();
        int p = 0;
        for (int i = 0; i < out.size(); i++) {
            w.add(new String(cps, p, out.get(i)));
            p += out.get(i);
        }
        assertEquals(cps.length, p, "words cover the text");
        return w;
    }

    @Test
    void scannersAgreeWithRegexes() {
        String[] regexes = {PreTokenizer.GPT2_REGEX, PreTokenizer.LLAMA3_REGEX, PreTokenizer.QWEN2_REGEX};
        Random r = new Random(42);
        for (String regex : regexes) {
            PreTokenizer.Step hand = PreTokenizer.step(regex);
            PreTokenizer.Step rx = PreTokenizer.regexStep(regex);
            for (int i = 0; i < 20000; i++) {
                String s = randomText(r);
                assertEquals(words(rx, s), words(hand, s), () -> "text " + escape(s) + " with " + regex);
            }
        }
    }

    @Test
    void llama3Words() {
        PreTokenizer.Step s = PreTokenizer.step(PreTokenizer.LLAMA3_REGEX);
        assertEquals(List.of("Hello", " world", "'S", " ", "123", "456", "7", "!!", "  ", " x", "\n\n", "   "),
                words(s, "Hello world'S 1234567!!   x\n\n   "));
        assertEquals(List.of("I", "'LL", " go", "'ll"), words(s, "I'LL go'll"));
    }

    static String escape(String s) {
        StringBuilder sb = new StringBuilder("\"");
        s.codePoints().forEach(c -> sb.append(c >= 0x20 && c < 0x7F ? String.valueOf((char) c) : String.format("\\u{%X}", c)));
        return sb.append('"').toString();
    }

    @Test
    void everyKnownPreTokenizerCompilesAndCoversTheText() {
        String[] names = {"default", "llama-bpe", "llama3", "dbrx", "smaug-bpe", "chatglm-bpe", "deepseek-llm", "deepseek-coder",
            "deepseek-v3", "falcon", "starcoder", "command-r", "gpt-2", "trillion", "stablelm2", "qwen2", "megrez", "qwen35",
            "poro-chat", "bloom", "viking", "tekken", "gpt-4o", "llama4", "bailingmoe", "seed-coder", "exaone-moe"};
        Random r = new Random(1);
        for (String name : names) {
            BpeFlavor f = BpeFlavor.of(name);
            PreTokenizer pre = PreTokenizer.of(name, f.regexes());
            for (int i = 0; i < 300; i++) {
                String s = randomText(r);
                int[] cps = Unicode.codePoints(s, 0, s.length());
                IntList words = pre.split(cps);
                int sum = 0;
                for (int k = 0; k < words.size(); k++) {
                    sum += words.get(k);
                    assertTrue(words.get(k) > 0, name);
                }
                assertEquals(cps.length, sum, name + " covers " + escape(s));
            }
        }
        assertNull(BpeFlavor.of("no-such-name"));
    }
}
