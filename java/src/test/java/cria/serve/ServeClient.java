// Test helper: a java.net.http client for the server tests (JSON in and out, server-sent events read line by line).
package cria.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import cria.cli.Main;
import cria.engine.Model;
import cria.engine.ModelOptions;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

/** Requests against one server; every call has a timeout so that a hung server fails the test instead of hanging it. */
final class ServeClient {
    static final ObjectMapper JSON = new ObjectMapper();
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
    final String base;

    ServeClient(OpenAiServer server) {
        this.base = "http://127.0.0.1:" + server.port();
    }

    ServeClient(String base) {
        this.base = base;
    }

    /** A model written by {@code cria synth} (the tiny shape: dim 128, 4 layers, vocabulary 4096), loaded on the CPU. */
    static Model synthModel(Path dir) {
        Path file = dir.resolve("tiny.gguf");
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc = Main.run(new String[] {"synth", "--like", "tiny", "-o", file.toString()}, new ByteArrayOutputStream(),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        if (rc != 0) {
            throw new IllegalStateException("cria synth failed: " + err);
        }
        return Model.load(file, ModelOptions.defaults().withBackend("cpu").withThreads(2));
    }

    HttpRequest.Builder request(String path) {
        return HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60));
    }

    HttpResponse<String> get(String path) {
        return send(request(path).GET().build());
    }

    HttpResponse<String> post(String path, String body) {
        return send(request(path).header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build());
    }

    HttpResponse<String> send(HttpRequest r) {
        try {
            return http.send(r, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** POSTs and parses a 200 answer (fails with the body otherwise). */
    JsonNode ok(String path, String body) {
        HttpResponse<String> r = post(path, body);
        if (r.statusCode() != 200) {
            throw new AssertionError(path + " answered " + r.statusCode() + ": " + r.body());
        }
        return parse(r.body());
    }

    /** The {@code data:} payloads of a streamed answer, [DONE] included (fails unless 200 and text/event-stream). */
    List<String> events(String path, String body) {
        HttpResponse<String> r = post(path, body);
        if (r.statusCode() != 200) {
            throw new AssertionError(path + " answered " + r.statusCode() + ": " + r.body());
        }
        if (!r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream")) {
            throw new AssertionError("not an event stream: " + r.headers().map());
        }
        return dataLines(r.body());
    }

    static List<String> dataLines(String body) {
        List<String> out = new ArrayList<>();
        String[] blocks = body.split("\n\n", -1);
        for (String b : blocks) {
            if (b.isEmpty()) {
                continue;
            }
            if (!b.startsWith("data: ") || b.indexOf('\n') >= 0) {
                throw new AssertionError("not one 'data: ' line per event: " + b);
            }
            out.add(b.substring(6));
        }
        return out;
    }

    static JsonNode parse(String s) {
        try {
            return JSON.readTree(s);
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + s, e);
        }
    }

    /** The text streamed for choice {@code index} (chat deltas or completion texts). */
    static String streamedText(List<String> events, int index) {
        StringBuilder b = new StringBuilder();
        for (String e : events) {
            if (e.equals("[DONE]")) {
                continue;
            }
            for (JsonNode c : parse(e).path("choices")) {
                if (c.path("index").asInt() == index) {
                    JsonNode t = c.has("delta") ? c.path("delta").path("content") : c.path("text");
                    b.append(t.isMissingNode() || t.isNull() ? "" : t.asText());
                }
            }
        }
        return b.toString();
    }

    /** Waits (polling, at most 30 s) for a condition the server reaches on its own. */
    static void await(String what, BooleanSupplier cond) {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("still not so after 30 s: " + what);
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }
}
