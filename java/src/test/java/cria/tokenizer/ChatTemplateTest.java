// Chat templates: every conversation in ../shared/chat rendered byte for byte, the built-in formats, Jinja settings, errors, hostile templates.
package cria.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import cria.CriaException;
import cria.SharedData;
import cria.gguf.GgufFile;
import cria.gguf.Metadata;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

class ChatTemplateTest {
    record Case(List<ChatTemplate.Message> messages, String rendered) {}

    static List<Case> cases(Path chatJson) throws IOException {
        JsonNode root = new ObjectMapper().readTree(Files.readString(chatJson));
        List<Case> out = new ArrayList<>();
        for (int i = 0; i < root.get("conversations").size(); i++) {
            List<ChatTemplate.Message> msgs = new ArrayList<>();
            for (JsonNode m : root.get("conversations").get(i)) {
                msgs.add(new ChatTemplate.Message(m.get("role").asText(), m.get("content").asText()));
            }
            out.add(new Case(msgs, root.get("rendered").get(i).asText()));
        }
        return out;
    }

    static Path vocabFor(Path chatJson) {
        String name = chatJson.getFileName().toString().replace(".chat.json", "");
        return chatJson.getParent().resolveSibling("vocab").resolve("ggml-vocab-" + name + ".gguf");
    }

    @TestFactory
    Stream<DynamicTest> rendersSharedConversations() throws IOException {
        Path dir = SharedData.require("chat");
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = cria.Cases.require(s.filter(p -> p.toString().endsWith(".chat.json")).sorted().toList(), "conversations in " + dir);
        }
        return files.stream().map(f -> DynamicTest.dynamicTest(f.getFileName().toString(), () -> {
            try (GgufFile g = GgufFile.open(vocabFor(f))) {
                Metadata md = g.metadata();
                ChatTemplate t = ChatTemplate.fromMetadata(md, Tokenizer.fromMetadata(md));
                assertEquals("jinja", t.name());
                for (Case c : cases(f)) {
                    assertEquals(c.rendered(), t.render(c.messages(), true));
                }
            }
        }));
    }

    @Test
    void builtinLlama3MatchesTheShippedTemplate() throws IOException {
        Path chat = SharedData.require("chat/llama-bpe.chat.json");
        ChatTemplate t = ChatTemplate.named("llama3", "<|begin_of_text|>", "<|eot_id|>");
        for (Case c : cases(chat)) {
            assertEquals(c.rendered(), t.render(c.messages(), true));
        }
    }

    static final List<ChatTemplate.Message> CONVERSATION = List.of(
            new ChatTemplate.Message("system", "Be brief."),
            new ChatTemplate.Message("user", "Hi "),
            new ChatTemplate.Message("assistant", " Hello!"),
            new ChatTemplate.Message("user", "Bye"));

    @Test
    void builtinLlama2() {
        ChatTemplate t = ChatTemplate.named("llama2", "<s>", "</s>");
        assertEquals("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]",
                t.render(CONVERSATION, true));
    }

    @Test
    void fallsBackByVocabulary() {
        Metadata spm = SmallVocabs.spm(true);
        assertEquals("llama2", ChatTemplate.fromMetadata(spm, Tokenizer.fromMetadata(spm)).name());
    }

    @Test
    void jinjaBehavesLikeHuggingFace() {
        // trim_blocks removes the newline after a block tag; lstrip_blocks the indentation before one.
        String src = "{% for m in messages %}\n    {% if m['role'] == 'user' %}\n[{{ m['content'] | trim }}]\n    {% endif %}\n"
                + "{% endfor %}{% if add_generation_prompt %}{{ bos_token + '>' + eos_token }}{% endif %}";
        ChatTemplate t = ChatTemplate.jinja(src, "<s>", "</s>");
        assertEquals("[Hi]\n[Bye]\n<s>></s>", t.render(CONVERSATION, true));
        assertEquals("[Hi]\n[Bye]\n", t.render(CONVERSATION, false));

        ChatTemplate strict = ChatTemplate.jinja(
                "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with a user message') }}{% endif %}ok",
                "", "");
        CriaException e = assertThrows(CriaException.class, () -> strict.render(CONVERSATION, true));
        assertTrue(e.getMessage().contains("Conversations must start with a user message"), e.getMessage());
        assertEquals("ok", strict.render(CONVERSATION.subList(1, 2), true));
    }

    @Test
    void jinjaDifferencesFromJinjavaDefaultsAreFixed() {
        List<ChatTemplate.Message> tricky = List.of(new ChatTemplate.Message("user", "\u00a0 {{ 7*7 }} {% if true %}x{% endif %}\u3000\u001c"));
        // Message text is data: Jinja syntax inside it is not evaluated; trim strips what Python's str.strip() strips.
        ChatTemplate t = ChatTemplate.jinja("{% for m in messages %}[{{ m['content'] | trim }}]{% endfor %}\n", "", "");
        assertEquals("[{{ 7*7 }} {% if true %}x{% endif %}]", t.render(tricky, true), "one trailing newline of the source is dropped");
        // Filters bind tighter than +, and {{- trims the whitespace before it.
        ChatTemplate p = ChatTemplate.jinja("{{ 'a' + '  b ' | trim + 'c' }}\n    {{- '!' }}", "", "");
        assertEquals("abc!", p.render(List.of(), true));
    }

    // A file's template is untrusted: whatever it does wrong ends in one CriaException with a
    // one-line message that names the chat template, never in an empty or partial prompt, an
    // OutOfMemoryError or minutes of work. These pass in a small heap too (each well under a
    // second): mvn test -Dtest=ChatTemplateTest "-Dcria.jvm.flags=<the pom's flags> -Xmx256m".
    static CriaException refused(String template, String why) {
        return refused(template, CONVERSATION, why);
    }

    static CriaException refused(String template, List<ChatTemplate.Message> conversation, String why) {
        ChatTemplate t = ChatTemplate.jinja(template, "<s>", "</s>");
        CriaException e = assertThrows(CriaException.class, () -> t.render(conversation, true));
        String m = e.getMessage();
        assertTrue(m.startsWith("the model's chat template (tokenizer.chat_template) "), m);
        assertFalse(m.contains("\n") || m.contains("\r"), m);
        assertTrue(m.contains(why), m);
        return e;
    }

    // What a growing string hits first, the size limit or the allocation limit, depends on how it grows.
    static final String TOO_BIG = "more than";

    @Test
    void stringDoublingIsRefused() {
        String doubling = "{% set s = 'xy' %}{% for i in range(40) %}{% set s = s + s %}{% endfor %}";
        refused(doubling + "{{ s }}", TOO_BIG);
        refused(doubling + "no output", TOO_BIG);
        refused("{% set s = 'xy' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}ok", TOO_BIG);
        refused("{% set s = 'xy' %}{% for i in range(40) %}{% set s = [s, s]|join %}{% endfor %}ok", TOO_BIG);
        refused("{% set s = 'xy' %}{% for i in range(40) %}{% set s = s|replace('x', 'xx') %}{% endfor %}ok", TOO_BIG);
        // Java's String.replace, reachable as a method, is bounded by the check on every expression's value.
        refused("{% set s = 'xy' %}{% for i in range(40) %}{% set s = s.replace('x', 'xx') %}{% endfor %}ok", TOO_BIG);
        refused("{% set ns = namespace(s='xy') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}ok", TOO_BIG);
        refused("{% macro d(s, n) %}{% if n > 0 %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}{% endmacro %}{{ d('xy', 40) }}",
                TOO_BIG);
    }

    @Test
    void manyLargeStringsAreRefused() {
        // Each string is under the size limit; together they would fill the heap.
        refused("{% set ns = namespace(s='xy') %}{% for i in range(20) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"
                + "{% set l = [] %}{% for i in range(10000) %}{% do l.append(ns.s ~ i) %}{% endfor %}{{ l|length }}",
                "it allocated more than");
    }

    @Test
    void nestedLoopsAreRefused() {
        refused("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}ok",
                "loop iterations");
        refused("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}",
                "loop iterations");
    }

    @Test
    void hugeRangeIsRefused() {
        refused("{% for i in range(100000000) %}{% endfor %}ok", "range()");
        refused("{{ range(100000000)|length }}", "range()");
        refused("{% set l = [] %}{% for i in range(99000) %}{% do l.append(i) %}{% endfor %}{{ l|length }}", "");
    }

    @Test
    void recursiveMacroIsRefused() {
        // Jinjava used to print nothing for this and carry on: an empty prompt.
        refused("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "recursion");
        refused("{% macro f(n) %}x{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}", "recursion");
        // Bounded but exponential: stopped by the step or the allocation limit, whichever comes first.
        refused("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}", "more than");
    }

    @Test
    void deepNestingIsRefused() {
        refused("{% if true %}".repeat(5000) + "x" + "{% endif %}".repeat(5000), "nests block tags");
        refused("{% for m in messages %}".repeat(5000) + "x" + "{% endfor %}".repeat(5000), "nests block tags");
        refused("{{ " + "(".repeat(20000) + "1" + ")".repeat(20000) + " }}", "nests brackets");
        refused("{{ " + "[".repeat(20000) + "]".repeat(20000) + " }}", "nests brackets");
        StringBuilder chain = new StringBuilder();
        for (int i = 0; i < 2000; i++) {
            chain.append("{% macro m").append(i).append("() %}{{ m").append(i + 1).append("() }}{% endmacro %}");
        }
        refused(chain + "{% macro m2000() %}x{% endmacro %}{{ m0() }}", "recursion");
    }

    @Test
    void includesAreRefused() {
        refused("{% include 'x.jinja' %}", "self-contained");
        refused("{% import 'x.jinja' as x %}{{ x.y() }}", "self-contained");
        refused("{% extends 'x.jinja' %}", "self-contained");
        refused("{% include 'cria/tokenizer/ChatTemplate.class' %}", "self-contained");
    }

    @Test
    void sizeArgumentsOfFiltersAreRefused() {
        refused("x{{ 'a'|center(1000000000) }}", "center filter");
        refused("{{ 1.5|round(100000000) }}", "round filter");
        refused("{{ 'a\nb'|indent(width=100000000) }}", "indent filter");
        refused("{{ '%.100000000f'|format(1.5) }}", "format filter");
        refused("{{ [1]|batch(100000000, 'x')|list|length }}", "batch filter");
    }

    @Test
    void javaMethodsThatBuildOrSearchAreUnavailable() {
        refused("{{ 'x'.repeat(100000000)|length }}", "repeat");
        refused("{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'.matches('(a|aa)*b') }}", "matches");
        refused("{{ 'aaa'|regex_replace('a', 'b') }}", "regex_replace");
    }

    @Test
    void anyErrorIsAnError() {
        refused("{{ no_such_function(1) }}", "no_such_function");
        refused("{% for %}", "line 1");
        // Jinjava truncates the join and records a warning: a partial prompt unless the warning fails the render.
        refused("{% set ns = namespace(s='xy') %}{% for i in range(21) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"
                + "{{ [ns.s, ns.s, ns.s]|join }}", "");
    }

    @Test
    void raiseExceptionIsOneLine() {
        CriaException e = refused("{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system\nmessages\u001b[31m here') }}{% endif %}",
                "refused the conversation at template line 1: no system messages [31m here");
        assertFalse(e.getMessage().contains("\u001b"), e.getMessage());
    }

    @Test
    void limitsGrowWithTheConversation() {
        // 300 messages looped over twice, nested (90,000 iterations), a 5 M-char message printed
        // twice (10 M chars, above the fixed 4 Mi), a macro, recursion a few deep, guarded filters
        // at ordinary sizes, and range: all within limits, rendered exactly.
        List<ChatTemplate.Message> many = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            many.add(new ChatTemplate.Message(i % 2 == 0 ? "user" : "assistant", "m" + i));
        }
        String src = "{% set ns = namespace(n=0) %}{% for a in messages %}{% for b in messages %}{% set ns.n = ns.n + 1 %}"
                + "{% endfor %}{% endfor %}{{ ns.n }}|{{ messages[-1]['content'] }}";
        assertEquals("90000|m299", ChatTemplate.jinja(src, "", "").render(many, true));

        String big = "ab".repeat(2_500_000);
        ChatTemplate twice = ChatTemplate.jinja("{% for m in messages %}{{ m.content }}{{ m.content|upper }}{% endfor %}", "", "");
        assertEquals(big + big.toUpperCase(java.util.Locale.ROOT), twice.render(List.of(new ChatTemplate.Message("user", big)), true));

        String ok = "{% macro count(n) %}{% if n > 0 %}{{ n }}{{ count(n - 1) }}{% endif %}{% endmacro %}"
                + "{{ count(5) }}|{{ 'ab'|center(6) }}|{{ 1.26|round(1) }}|{{ '%5.2f'|format(1.5) }}|{{ 'a\nb'|indent(2, true) }}"
                + "|{% for i in range(2, 8, 2) %}{{ i }}{% endfor %}|{{ messages|length }}";
        assertEquals("54321|  ab  |1.3| 1.50|  a\n  b|246|4", ChatTemplate.jinja(ok, "", "").render(CONVERSATION, true));
    }
}
