// The official openai npm client (v6, on Node) against OpenAiServer, through tools/openai-client-check when node and npm are here.
package cria.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.engine.Model;
import cria.engine.ModelOptions;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs {@code tools/openai-client-check/check.mjs} (models, chat and text completions whole and
 * streamed with usage, max_tokens, stop, errors, the key) against a server on a synth model.
 * Skipped, saying why, without node 20+ and npm, or when npm cannot install the client (no
 * network); the client is installed once into target/node/openai-client-check.
 */
class NodeOpenAiClientTest {
    static final String KEY = "node-test-key";
    static final Path SCRIPT = Path.of("tools/openai-client-check/check.mjs");
    static final Path INSTALL = Path.of("target/node/openai-client-check");

    @TempDir
    static Path tmp;
    static Path node;
    static Model model;
    static OpenAiServer server;

    static Path onPath(String name) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir.isEmpty() ? "." : dir, name);
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }

    @BeforeAll
    static void start() throws Exception {
        node = onPath("node");
        Assumptions.assumeTrue(node != null && onPath("npm") != null,
                "skipped: node and npm are not on the PATH (the openai npm client check needs them: apt-get install nodejs npm)");
        Result v = run(List.of(node.toString(), "--version"));
        int major = v.output.startsWith("v") ? Integer.parseInt(v.output.substring(1, v.output.indexOf('.'))) : 0;
        Assumptions.assumeTrue(major >= 20, "skipped: the openai npm client v6 needs node 20 or later, this is " + v.output.strip());
        assertTrue(Files.isRegularFile(SCRIPT), "run from the project root: " + SCRIPT.toAbsolutePath());
        model = Model.load(OpenAiClientTest.synth(tmp, 256), ModelOptions.defaults().withBackend("cpu").withThreads(2));
        server = OpenAiServer.start(model, ServeOptions.defaults().withPort(0).withApiKey(KEY).withContextLength(256).withParallel(4));
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
        if (model != null) {
            model.close();
        }
    }

    record Result(int code, String output) {}

    static Result run(List<String> command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes(); // the script ends itself: every request it sends has a timeout
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("did not exit: " + command);
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    static Result check(String key) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(node.toString(), SCRIPT.toString(), "--base-url", "http://127.0.0.1:" + server.port() + "/v1",
                "--install-dir", INSTALL.toString()));
        if (key != null) {
            cmd.addAll(List.of("--api-key", key));
        }
        Result r = run(cmd);
        Assumptions.assumeFalse(r.code == 3, () -> "skipped: the openai npm client could not be installed (no network?): " + r.output);
        return r;
    }

    @Test
    void theOpenAiNpmClientWorksUnchanged() throws Exception {
        Result r = check(KEY);
        System.out.print(r.output);
        assertEquals(0, r.code, r.output);
        assertTrue(r.output.contains("all 8 checks passed"), r.output);
        assertTrue(r.output.contains("ok    chat.completions stream"), r.output);
    }

    @Test
    void aWrongKeyFailsTheCheckWithAClearMessage() throws Exception {
        Result r = check("not-the-key");
        assertEquals(1, r.code, r.output);
        assertTrue(r.output.contains("FAIL  models.list: AuthenticationError"), r.output);
        assertTrue(r.output.contains("checks failed"), r.output);
    }
}
