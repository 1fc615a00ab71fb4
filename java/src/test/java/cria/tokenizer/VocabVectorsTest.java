// llama.cpp's tokenizer test vectors: every <vocab>.gguf in ../shared/vocab must give exactly the ids of <vocab>.gguf.out.
package cria.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import cria.SharedData;
import cria.gguf.GgufFile;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/** One dynamic test per vocabulary: all its strings encode to llama.cpp's ids and decode back. */
class VocabVectorsTest {

    /** The strings of a .inp file and the id lines of its .out file. */
    record Vectors(List<String> texts, List<int[]> ids) {
        static Vectors read(Path gguf) throws IOException {
            String inp = Files.readString(Path.of(gguf + ".inp"), StandardCharsets.UTF_8);
            List<String> texts = new ArrayList<>(Arrays.asList(inp.split("\n__ggml_vocab_test__\n", -1)));
            if (!texts.isEmpty() && texts.getLast().isEmpty()) {
                texts.removeLast(); // the file ends with a separator
            }
            List<int[]> ids = new ArrayList<>();
            for (String line : Files.readAllLines(Path.of(gguf + ".out"), StandardCharsets.UTF_8)) {
                String t = line.strip();
                ids.add(t.isEmpty() ? new int[0] : Arrays.stream(t.split("\\s+")).mapToInt(Integer::parseInt).toArray());
            }
            return new Vectors(texts, ids);
        }
    }

    static List<Path> vocabs() throws IOException {
        Path dir = SharedData.require("vocab");
        try (Stream<Path> s = Files.list(dir)) {
            return cria.Cases.require(s.filter(p -> p.toString().endsWith(".gguf")).sorted().toList(), "vocabularies in " + dir);
        }
    }

    static Tokenizer load(Path gguf) {
        try (GgufFile f = GgufFile.open(gguf)) {
            return Tokenizer.fromMetadata(f.metadata());
        }
    }

    @TestFactory
    Stream<DynamicTest> encodesLikeLlamaCpp() throws IOException {
        return vocabs().stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
            Tokenizer tok = load(p);
            Vectors v = Vectors.read(p);
            assertEquals(v.texts().size(), v.ids().size(), "strings vs id lines in " + p);
            List<String> failures = new ArrayList<>();
            for (int i = 0; i < v.texts().size(); i++) {
                int[] got = tok.encode(v.texts().get(i), false, false);
                if (!Arrays.equals(v.ids().get(i), got)) {
                    failures.add("#" + i + " " + quote(v.texts().get(i)) + "\n   want " + Arrays.toString(v.ids().get(i))
                            + "\n   got  " + Arrays.toString(got));
                }
            }
            assertEquals(List.of(), failures, p.getFileName() + ": " + failures.size() + " of " + v.texts().size() + " differ");
        }));
    }

    @TestFactory
    Stream<DynamicTest> decodesBack() throws IOException {
        return vocabs().stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
            Tokenizer tok = load(p);
            Vectors v = Vectors.read(p);
            for (int i = 0; i < v.texts().size(); i++) {
                String text = v.texts().get(i);
                assertEquals(text, tok.decode(v.ids().get(i), false), "decode #" + i + " " + quote(text));
                // Streaming gives the same text (the stream keeps SentencePiece's leading space).
                StreamDecoder sd = tok.streamDecoder(false);
                StringBuilder sb = new StringBuilder();
                for (int id : v.ids().get(i)) {
                    sb.append(sd.feed(id));
                }
                sb.append(sd.flush());
                String streamed = sb.toString();
                if (tok.model().equals("llama") && streamed.startsWith(" ")) {
                    streamed = streamed.substring(1);
                }
                assertEquals(text, streamed, "stream #" + i);
            }
        }));
    }

    static String quote(String s) {
        return "'" + s.replace("\n", "\\n").replace("\t", "\\t") + "'";
    }
}
