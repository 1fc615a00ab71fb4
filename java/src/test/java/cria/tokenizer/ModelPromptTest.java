// The reference prompt of ../shared/reference tokenized with each model's own vocabulary, BOS added, as llama.cpp did.
package cria.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import cria.SharedData;
import cria.gguf.GgufFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

class ModelPromptTest {
    static final String PROMPT = "Once upon a time, there was a little dog named Max.";

    @TestFactory
    Stream<DynamicTest> promptIdsMatchLlamaCpp() throws IOException {
        Path ref = SharedData.require("reference");
        Path models = SharedData.require("models");
        try (Stream<Path> s = Files.list(ref)) {
            return cria.Cases.require(s.filter(p -> p.getFileName().toString().endsWith(".prompt_ids.txt")).sorted().toList(),
                            "prompt ids in " + ref).stream()
                    .map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
                        String name = p.getFileName().toString().replace(".prompt_ids.txt", "");
                        int[] want = Arrays.stream(Files.readString(p).strip().split("[,\\s]+"))
                                .mapToInt(Integer::parseInt).toArray();
                        try (GgufFile f = GgufFile.open(models.resolve(name + ".gguf"))) {
                            Tokenizer t = Tokenizer.fromMetadata(f.metadata());
                            assertArrayEquals(want, t.encode(PROMPT, true, false));
                            assertEquals(PROMPT, t.decode(want, false));
                        }
                    }));
        }
    }
}
