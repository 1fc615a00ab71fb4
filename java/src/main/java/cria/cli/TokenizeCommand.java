// `cria tokenize`: text to token ids (or ids to text) with a model's vocabulary; --jsonl for many texts in one run.
package cria.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import cria.CriaException;
import cria.gguf.GgufFile;
import cria.tokenizer.Tokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Encodes a prompt (or a JSONL stream of strings) to ids, or decodes ids back to text. */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = {"Turn text into token ids with a model's vocabulary, or ids into text.",
            "Examples: cria tokenize -m model.gguf -p 'Hello world'",
            "          printf '\"Hello\"\\n\"world\"\\n' | cria tokenize -m model.gguf --no-bos --jsonl",
            "          echo '[9906, 1917]' | cria tokenize -m model.gguf --decode --jsonl"})
final class TokenizeCommand extends Verb {

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL", description = "GGUF file with the vocabulary")
    Path model;

    static final class Input {
        @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "the text (with --decode: ids, e.g. '[1, 2, 3]')")
        String prompt;

        @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "read the text (or ids) from a UTF-8 file")
        Path file;

        @Option(names = "--jsonl", description = "read one JSON string per line of standard input and print one JSON array per line"
                + " (with --decode: read arrays, print strings)")
        boolean jsonl;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--no-bos", description = "do not add BOS/EOS (by default they are added as the vocabulary asks)")
    boolean noBos;

    @Option(names = "--special", description = "treat texts such as <|eot_id|> or <s> as their special tokens;"
            + " with --decode, print special tokens")
    boolean special;

    @Option(names = "--decode", description = "turn ids into text instead")
    boolean decode;

    @Option(names = "--detokenize", description = "with --decode: decode exactly as llama.cpp's llama_detokenize"
            + " (tidies spaces before punctuation for vocabularies that ask for it; not lossless)")
    boolean llamaDetokenize;

    @Option(names = "--timing", description = "print load and tokenization times on standard error")
    boolean timing;

    @Override
    public Integer call() throws IOException {
        long t0 = System.nanoTime();
        Tokenizer tok;
        try (GgufFile f = GgufFile.open(model)) {
            tok = Tokenizer.fromMetadata(f.metadata());
        }
        long t1 = System.nanoTime();
        PrintWriter out = out();
        if (input.jsonl) {
            runJsonl(tok, out);
        } else {
            String text = input.prompt != null ? input.prompt : readFile(input.file);
            out.println(decode ? decodeOne(tok, parseIds(text, "the ids")) : ids(tok.encode(text, !noBos, special)));
        }
        out.flush();
        if (timing) {
            long t2 = System.nanoTime();
            err().printf("tokenize: vocabulary loaded in %.1f ms, %s in %.1f ms%n", (t1 - t0) / 1e6,
                    decode ? "decoded" : "tokenized", (t2 - t1) / 1e6);
            err().flush();
        }
        return 0;
    }

    private void runJsonl(Tokenizer tok, PrintWriter out) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder batch = new StringBuilder();
        String line;
        int lineNo = 0;
        while ((line = in.readLine()) != null) {
            lineNo++;
            JsonNode node = parseJson(line, lineNo);
            if (decode) {
                if (!node.isArray()) {
                    throw new CriaException("standard input line " + lineNo + ": expected a JSON array of token ids");
                }
                batch.append(Json.write(Json.MAPPER.getNodeFactory().textNode(decodeOne(tok, idsOf(node, lineNo)))));
            } else {
                if (!node.isTextual()) {
                    throw new CriaException("standard input line " + lineNo + ": expected a JSON string (one text per line)");
                }
                batch.append(ids(tok.encode(node.textValue(), !noBos, special)));
            }
            batch.append('\n');
            if (batch.length() > 1 << 16) {
                out.print(batch);
                out.flush();
                batch.setLength(0);
            }
        }
        out.print(batch);
    }

    private String decodeOne(Tokenizer tok, int[] ids) {
        return llamaDetokenize ? tok.detokenize(ids, special) : tok.decode(ids, special);
    }

    private static JsonNode parseJson(String line, int lineNo) {
        try {
            return Json.STRICT.readTree(line);
        } catch (JsonProcessingException e) {
            throw new CriaException("standard input line " + lineNo + ": not JSON (" + Main.oneLine(e.getOriginalMessage()) + ")");
        }
    }

    private static int[] idsOf(JsonNode node, int lineNo) {
        int[] ids = new int[node.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToInt()) { // 2.5 or "7" is not an id (no silent rounding)
                throw new CriaException("standard input line " + lineNo + ": element " + i + " is not a token id");
            }
            ids[i] = v.intValue();
        }
        return ids;
    }

    /** Ids written as a JSON array or separated by spaces/commas. */
    private static int[] parseIds(String text, String what) {
        String t = text.strip();
        if (t.startsWith("[") && t.endsWith("]")) {
            t = t.substring(1, t.length() - 1);
        }
        if (t.isBlank()) {
            return new int[0];
        }
        String[] parts = t.strip().split("[\\s,]+");
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i]);
            } catch (NumberFormatException e) {
                throw new CriaException(what + ": '" + parts[i] + "' is not a token id; give ids like [1, 2, 3]");
            }
        }
        return ids;
    }

    private static String readFile(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new CriaException(file + ": no such file");
        } catch (java.nio.charset.MalformedInputException e) {
            try {
                return new String(Files.readAllBytes(file), StandardCharsets.UTF_8); // invalid bytes become U+FFFD
            } catch (IOException e2) {
                throw new CriaException(file + ": cannot read: " + e2.getMessage());
            }
        } catch (IOException e) {
            throw new CriaException(file + ": cannot read: " + e.getMessage());
        }
    }

    /** Ids as "[1, 2, 3]". */
    static String ids(int[] ids) {
        StringBuilder sb = new StringBuilder(ids.length * 7 + 2).append('[');
        for (int i = 0; i < ids.length; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(ids[i]);
        }
        return sb.append(']').toString();
    }
}
