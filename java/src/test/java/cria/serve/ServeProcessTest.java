// `cria serve` as a process: it prints its URL once loaded, and SIGTERM lets the running stream finish, then exits 0.
package cria.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.cli.Main;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServeProcessTest {
    @TempDir
    Path tmp;

    @Test
    void sigtermFinishesTheRunningStreamAndExitsZero() throws Exception {
        Path file = tmp.resolve("tiny.gguf");
        assertEquals(0, Main.run(new String[] {"synth", "-o", file.toString()}, new ByteArrayOutputStream(),
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path")));
        if (System.getProperty("cria.native.dir") != null) {
            cmd.add("-Dcria.native.dir=" + System.getProperty("cria.native.dir"));
        }
        cmd.addAll(List.of("cria.cli.Main", "serve", "-m", file.toString(), "--port", "0", "-t", "1", "--ctx", "256",
                "--shutdown-grace", "60"));
        Process p = new ProcessBuilder(cmd).redirectError(tmp.resolve("stderr.txt").toFile()).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            String line = out.readLine();
            assertTrue(line != null, "no URL line; stderr: " + java.nio.file.Files.readString(tmp.resolve("stderr.txt")));
            Matcher m = Pattern.compile("^cria serve: (http://127\\.0\\.0\\.1:\\d+) \\(model tiny\\.gguf").matcher(line);
            assertTrue(m.find(), line);
            ServeClient c = new ServeClient(m.group(1));
            assertEquals(200, c.get("/health").statusCode());
            HttpResponse<InputStream> r = c.http.send(c.request("/v1/completions").POST(HttpRequest.BodyPublishers.ofString(
                    "{\"prompt\": \"a\", \"max_tokens\": 80, \"ignore_eos\": true, \"stream\": true}")).build(),
                    HttpResponse.BodyHandlers.ofInputStream());
            InputStream body = r.body();
            byte[] first = new byte[6];
            assertEquals(6, body.readNBytes(first, 0, 6), "the stream started");
            p.destroy(); // SIGTERM
            String rest = new String(first, StandardCharsets.UTF_8) + new String(body.readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(rest.endsWith("data: [DONE]\n\n") && rest.contains("\"finish_reason\":\"length\""), rest);
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the server did not exit after SIGTERM");
            assertEquals(0, p.exitValue(), java.nio.file.Files.readString(tmp.resolve("stderr.txt")));
            assertTrue(java.nio.file.Files.readString(tmp.resolve("stderr.txt")).contains("cria: server stopped"));
        } finally {
            p.destroyForcibly();
        }
    }
}
