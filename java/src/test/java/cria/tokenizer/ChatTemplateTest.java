// Chat templates: every conversation in ../shared/chat rendered byte for byte, the built-in formats, Jinja settings, errors.
package cria.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
            files = s.filter(p -> p.toString().endsWith(".chat.json")).sorted().toList();
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
}
