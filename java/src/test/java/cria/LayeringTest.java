// The package table of README.md as a test: every import of a main source must follow an allowed arrow.
package cria;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Arrows point one way (ARCHITECTURE.md): a package may use only the packages listed for it here,
 * and no backend knows another. Imports and fully qualified names in code are both counted;
 * comments are not. A new package must be added here, with its arrows, or the test fails.
 */
class LayeringTest {
    private static final Path MAIN = Path.of("java/src/main/java/cria");
    private static final Set<String> BACKENDS = Set.of("backend.ref", "backend.cpu", "backend.cuda");

    /** package → the packages it may use (the root package, CriaException, is open to all). */
    private static final Map<String, Set<String>> ALLOWED = Map.ofEntries(
            Map.entry("gguf", Set.of()),
            Map.entry("sample", Set.of()),
            Map.entry("tensor", Set.of("gguf")),
            Map.entry("quantize", Set.of("gguf", "tensor")),
            Map.entry("tokenizer", Set.of("gguf")),
            Map.entry("backend", Set.of("gguf", "tensor")),
            Map.entry("backend.ref", Set.of("backend", "gguf", "tensor")),
            Map.entry("backend.cpu", Set.of("backend", "gguf", "tensor")),
            Map.entry("backend.cuda", Set.of("backend", "gguf", "tensor")),
            Map.entry("model", Set.of("backend", "gguf", "tensor")),
            Map.entry("synth", Set.of("gguf", "tensor", "model", "quantize")),
            Map.entry("engine", Set.of("model", "tokenizer", "sample", "backend", "backend.ref", "backend.cpu", "backend.cuda", "gguf", "tensor")),
            Map.entry("bench", Set.of("backend", "backend.ref", "backend.cpu", "backend.cuda", "engine", "model", "gguf", "tensor")),
            Map.entry("train", Set.of("model", "backend", "tokenizer", "gguf", "tensor")),
            // calibration passes run the model on a host backend (cpu or ref) with a tap on the products
            Map.entry("optimize", Set.of("model", "backend", "backend.ref", "backend.cpu", "quantize", "train", "tokenizer", "gguf", "tensor")),
            Map.entry("cli", Set.of("engine", "model", "tokenizer", "sample", "backend", "backend.ref", "backend.cpu", "backend.cuda",
                    "gguf", "tensor", "quantize", "synth", "bench", "train", "optimize", "serve")),
            Map.entry("serve", Set.of("engine", "tokenizer", "sample")));

    private static final Pattern USE = Pattern.compile("\\bcria\\.([a-z]+(?:\\.[a-z]+)*)\\.[A-Z]");

    @Test
    void everyImportFollowsAnAllowedArrow() throws IOException {
        assertTrue(Files.isDirectory(MAIN), "run from the project root: " + MAIN.toAbsolutePath());
        List<String> wrong = new ArrayList<>();
        Set<String> seen = new TreeSet<>();
        try (Stream<Path> files = Files.walk(MAIN)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String pkg = MAIN.relativize(f.getParent()).toString().replace('/', '.');
                if (pkg.isEmpty()) {
                    continue;  // the root package: CriaException and friends, used by all
                }
                seen.add(pkg);
                Set<String> allowed = ALLOWED.get(pkg);
                if (allowed == null) {
                    wrong.add(pkg + ": a package this test does not know; add it to ALLOWED with its arrows");
                    continue;
                }
                Matcher m = USE.matcher(withoutComments(Files.readString(f)));
                while (m.find()) {
                    String used = m.group(1);
                    if (!used.equals(pkg) && !allowed.contains(used)) {
                        wrong.add(MAIN.relativize(f) + " uses cria." + used);
                    }
                }
            }
        }
        assertEquals(List.of(), wrong.stream().distinct().toList(), "arrows the package table does not allow");
        assertEquals(new TreeSet<>(ALLOWED.keySet()), seen, "packages in the table and in the code differ");
    }

    @Test
    void noBackendKnowsAnother() {
        for (String b : BACKENDS) {
            for (String other : BACKENDS) {
                assertTrue(b.equals(other) || !ALLOWED.get(b).contains(other), b + " may not use " + other);
            }
        }
    }

    @Test
    void theCheckSeesAForbiddenUse() {
        String code = "package cria.model;\n// cria.backend.cuda.CudaOps in a comment is fine\nimport cria.backend.cuda.CudaOps;\n";
        Matcher m = USE.matcher(withoutComments(code));
        List<String> used = new ArrayList<>();
        while (m.find()) {
            used.add(m.group(1));
        }
        assertEquals(List.of("backend.cuda"), used);
    }

    /** Source text with line and block comments blanked (Javadoc may name any class). */
    static String withoutComments(String s) {
        return s.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\\n]*", " ");
    }
}
