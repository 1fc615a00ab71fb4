// Compiles and runs the Java example of README.md, as printed, against a model the test makes.
package cria;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReadmeExampleTest {

    static String example() throws Exception {
        Path readme = Path.of(System.getProperty("user.dir"), "README.md");
        String text = Files.readString(readme);
        int a = text.indexOf("<!-- java-example -->");
        int b = text.indexOf("<!-- /java-example -->");
        assertTrue(a >= 0 && b > a, "README.md has no java-example block");
        String block = text.substring(a, b);
        int start = block.indexOf("```java\n") + 8;
        int end = block.lastIndexOf("```");
        return block.substring(start, end);
    }

    @Test
    void theReadmeExampleCompilesAndStreamsText(@TempDir Path tmp) throws Exception {
        String source = example();
        assertTrue(source.lines().count() <= 16, "the example should stay short");
        Path src = tmp.resolve("Hello.java");
        Files.writeString(src, source);
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        int rc = javac.run(null, null, null, "-d", tmp.toString(), "-cp", System.getProperty("java.class.path"), src.toString());
        assertEquals(0, rc, "the README example does not compile");
        Path model = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 5);
        PrintStream old = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try (URLClassLoader loader = new URLClassLoader(new URL[] {tmp.toUri().toURL()}, getClass().getClassLoader())) {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            loader.loadClass("Hello").getMethod("main", String[].class).invoke(null, (Object) new String[] {model.toString()});
        } finally {
            System.setOut(old);
        }
        List<String> lines = captured.toString(StandardCharsets.UTF_8).lines().toList();
        String last = lines.get(lines.size() - 1);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\[(\\d+) tokens, [0-9.]+ tokens/s, (STOP|LENGTH)]").matcher(last);
        assertTrue(m.matches(), "last line: " + last);
        // a random model may end at once with an end-of-sequence token; otherwise text was streamed
        boolean endedAtOnce = m.group(2).equals("STOP") && m.group(1).equals("1");
        assertTrue(endedAtOnce || captured.size() > last.length() + 2, "some text was streamed before the summary");
    }
}
