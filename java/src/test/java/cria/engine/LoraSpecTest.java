// Parsing --lora FILE[:SCALE] and the ModelOptions that carry adapters.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoraSpecTest {
    @TempDir
    Path tmp;

    @Test
    void fileAndScale() throws Exception {
        assertEquals(new LoraSpec(Path.of("a.gguf"), 1f), LoraSpec.parse("a.gguf"));
        assertEquals(new LoraSpec(Path.of("a.gguf"), 0.5f), LoraSpec.parse("a.gguf:0.5"));
        assertEquals(new LoraSpec(Path.of("dir/a.gguf"), -1f), LoraSpec.parse("dir/a.gguf:-1"));
        assertEquals(new LoraSpec(Path.of("a.gguf"), 0f), LoraSpec.parse("a.gguf:0"));
        Path colon = Files.createFile(tmp.resolve("x:y.gguf"));  // an existing file whose name has a colon
        assertEquals(LoraSpec.of(colon), LoraSpec.parse(colon.toString()));
        for (String[] bad : new String[][] {{"a.gguf:abc", "'abc' is not a number"}, {"a.gguf:", "'' is not a number"},
                {":0.5", "no file before the scale"}, {"a.gguf:NaN", "finite"}, {"a.gguf:1e40", "finite"}, {" ", "empty"}}) {
            CriaException e = assertThrows(CriaException.class, () -> LoraSpec.parse(bad[0]), bad[0]);
            assertTrue(e.getMessage().contains(bad[1]), e.getMessage());
            assertEquals(1, e.getMessage().lines().count());
        }
    }

    @Test
    void optionsCarryAdapters() {
        ModelOptions o = ModelOptions.defaults().withLora(Path.of("a.gguf"), 0.5f).withLora(LoraSpec.of(Path.of("b.gguf")));
        assertEquals(List.of(new LoraSpec(Path.of("a.gguf"), 0.5f), new LoraSpec(Path.of("b.gguf"), 1f)), o.loras());
        assertEquals(o.loras(), o.withBackend("cpu").withThreads(2).withVerbose(true).loras());
        assertEquals(List.of(), new ModelOptions("cpu", 1, false).loras());
        assertEquals(List.of(), new ModelOptions("cpu", 1, false, null).loras());
    }
}
