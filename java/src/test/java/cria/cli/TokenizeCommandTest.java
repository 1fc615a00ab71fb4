// `cria tokenize` and `cria template` run in-process: output formats, JSONL batches, decoding, one-line errors.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.SharedData;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizeCommandTest {
    @TempDir
    Path tmp;

    static CliRunner.Result withStdin(String stdin, String... args) {
        InputStream old = System.in;
        System.setIn(new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)));
        try {
            return CliRunner.run(args);
        } finally {
            System.setIn(old);
        }
    }

    @Test
    void tokenizesAPrompt() {
        String spm = SharedData.require("vocab/ggml-vocab-llama-spm.gguf").toString();
        CliRunner.Result r = CliRunner.run("tokenize", "-m", spm, "-p", "Hello world");
        assertEquals(0, r.code(), r.toString());
        assertEquals("[1, 15043, 3186]\n", r.out());
        r = CliRunner.run("tokenize", "-m", spm, "-p", "Hello world", "--no-bos");
        assertEquals("[15043, 3186]\n", r.out());
        r = CliRunner.run("tokenize", "-m", spm, "-p", "<s>Hi", "--special");
        assertTrue(r.out().startsWith("[1, 1, "), r.out());
        r = CliRunner.run("tokenize", "-m", spm, "--decode", "-p", "[1, 15043, 3186]");
        assertEquals("Hello world\n", r.out(), "BOS is not printed without --special");
        r = CliRunner.run("tokenize", "-m", spm, "--decode", "--special", "-p", "1 15043 3186");
        assertEquals("<s>Hello world\n", r.out());
        r = CliRunner.run("tokenize", "-m", spm, "--decode", "--special", "--detokenize", "-p", "1 15043 3186");
        assertEquals("<s> Hello world\n", r.out(), "llama.cpp keeps the space after BOS");
    }

    @Test
    void jsonlBatches() throws Exception {
        String bpe = SharedData.require("vocab/ggml-vocab-llama-bpe.gguf").toString();
        CliRunner.Result r = withStdin("\"Hello world\"\n\"\"\n\"🦙 ok\\n\"\n", "tokenize", "-m", bpe, "--no-bos", "--jsonl");
        assertEquals(0, r.code(), r.toString());
        String[] lines = r.out().split("\n");
        assertEquals(3, lines.length, r.out());
        assertEquals("[9906, 1917]", lines[0]);
        assertEquals("[]", lines[1]);
        CliRunner.Result d = withStdin(r.out(), "tokenize", "-m", bpe, "--decode", "--jsonl");
        assertEquals("\"Hello world\"\n\"\"\n\"🦙 ok\\n\"\n", d.out());

        CliRunner.Result f = CliRunner.run("tokenize", "-m", bpe, "-f", writeTemp("text.txt", "Hello world"));
        assertEquals("[128000, 9906, 1917]\n", f.out());
    }

    @Test
    void expectedErrorsAreOneLine() throws Exception {
        String bpe = SharedData.require("vocab/ggml-vocab-llama-bpe.gguf").toString();
        CliRunner.Result r = withStdin("not json\n", "tokenize", "-m", bpe, "--jsonl");
        assertEquals(1, r.code());
        assertEquals("cria: standard input line 1: not JSON", r.err().strip().replaceAll(" \\(.*", ""));
        r = withStdin("[1, \"x\"]\n", "tokenize", "-m", bpe, "--decode", "--jsonl");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("element 1 is not a token id"), r.err());
        r = withStdin("[1, 2.5]\n", "tokenize", "-m", bpe, "--decode", "--jsonl");
        assertEquals(1, r.code(), "a fraction is not rounded to an id");
        assertTrue(r.err().contains("element 1 is not a token id"), r.err());
        r = withStdin("[1, 2] [3]\n", "tokenize", "-m", bpe, "--decode", "--jsonl");
        assertEquals(1, r.code(), "text after the array is not ignored: " + r);
        r = CliRunner.run("tokenize", "-m", bpe, "--decode", "-p", "[999999]");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("out of range"), r.err());
        r = CliRunner.run("tokenize", "-m", tmp.resolve("missing.gguf").toString(), "-p", "x");
        assertEquals(1, r.code());
        assertEquals(1, r.err().strip().lines().count(), r.err());

        Metadata md = new Metadata("bert");
        md.put("general.architecture", GgufValue.ofString("bert"));
        md.put("tokenizer.ggml.model", GgufValue.ofString("bert"));
        md.put("tokenizer.ggml.tokens", GgufValue.ofStrings(new String[] {"[PAD]", "a"}));
        Path bert = tmp.resolve("bert.gguf");
        new GgufWriter(md).write(bert);
        r = CliRunner.run("tokenize", "-m", bert.toString(), "-p", "x");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("cria: ") && r.err().contains("'bert' is not supported"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    @Test
    void rendersTemplates() throws Exception {
        String phi3 = SharedData.require("vocab/ggml-vocab-phi-3.gguf").toString();
        String msgs = writeTemp("m.json", "[{\"role\":\"user\",\"content\":\"Hello!\"}]");
        CliRunner.Result r = CliRunner.run("template", "-m", phi3, "-f", msgs);
        assertEquals(0, r.code(), r.toString());
        assertEquals("<s><|user|>\nHello!<|end|>\n<|assistant|>\n", r.out());
        r = CliRunner.run("template", "-m", phi3, "-f", msgs, "--format", "llama2");
        assertEquals("<s>[INST] Hello! [/INST]", r.out());
        r = CliRunner.run("template", "-m", phi3, "-f", writeTemp("bad.json", "{\"role\": 1}"));
        assertEquals(1, r.code());
        assertFalse(r.err().contains("Exception"), r.err());
    }

    private String writeTemp(String name, String content) throws Exception {
        Path p = tmp.resolve(name);
        Files.writeString(p, content);
        return p.toString();
    }
}
