// The server under pressure: a full queue answers 429, a client that leaves mid-stream frees its pages, loading and closing.
package cria.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import cria.engine.BatchGenerator;
import cria.engine.Model;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServeQueueTest {
    @TempDir
    static Path tmp;
    static Model model;

    @BeforeAll
    static void load() {
        model = ServeClient.synthModel(tmp);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static final String LONG = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 400, \"ignore_eos\": true, \"stream\": true}";

    /** Opens a streaming request and reads until its first text chunk: the sequence is running then. */
    static InputStream openStream(ServeClient c, String body) throws Exception {
        HttpResponse<InputStream> r = c.http.send(c.request("/v1/completions").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        InputStream in = r.body();
        BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
        String line;
        while ((line = lines.readLine()) != null && !line.startsWith("data: {")) {
            // the blank separators
        }
        assertTrue(line != null, "the stream ended before its first chunk");
        return in;
    }

    @Test
    void aFullQueueAnswers429WithRetryAfterAndTheQueuedRequestStillRuns() throws Exception {
        try (OpenAiServer s = OpenAiServer.start(model, ServeOptions.defaults().withPort(0).withParallel(1).withMaxQueue(1)
                .withContextLength(512))) {
            ServeClient c = new ServeClient(s);
            InputStream running = openStream(c, LONG);
            CompletableFuture<HttpResponse<String>> queued = CompletableFuture.supplyAsync(
                    () -> c.post("/v1/completions", "{\"prompt\": \"b\", \"max_tokens\": 4, \"ignore_eos\": true}"));
            ServeClient.await("the second request waits in the queue", () -> s.stats().queued() == 1);
            HttpResponse<String> refused = c.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"c\"}]}");
            assertEquals(429, refused.statusCode(), refused.body());
            assertEquals("1", refused.headers().firstValue("Retry-After").orElse(null));
            JsonNode err = ServeClient.parse(refused.body()).path("error");
            assertEquals("queue_full", err.path("code").asText());
            HttpResponse<String> streamRefused = c.post("/v1/completions", LONG);
            assertEquals(429, streamRefused.statusCode(), "a streaming request is refused before its stream opens");
            running.close(); // the first client leaves: its sequence is cancelled, the queued one runs
            HttpResponse<String> second = queued.get();
            assertEquals(200, second.statusCode(), second.body());
            assertEquals(4, ServeClient.parse(second.body()).path("usage").path("completion_tokens").asInt());
        }
    }

    @Test
    void aClientLeavingMidStreamCancelsItsSequenceAndFreesItsPages() throws Exception {
        try (OpenAiServer s = OpenAiServer.start(model, ServeOptions.defaults().withPort(0).withParallel(2).withContextLength(512))) {
            ServeClient c = new ServeClient(s);
            InputStream in = openStream(c, LONG);
            assertEquals(1, s.stats().running());
            assertTrue(s.stats().kvPagesUsed() > s.stats().kvPagesCached());
            in.close();
            ServeClient.await("the sequence is cancelled", () -> s.stats().running() == 0);
            BatchGenerator.Stats st = s.stats();
            assertEquals(st.kvPagesCached(), st.kvPagesUsed(), "pages held by no sequence: " + st);
            assertTrue(st.generatedTokens() < 400, "the sequence ran to its end instead of being cancelled: " + st);
            String metrics = c.get("/metrics").body();
            assertTrue(metrics.contains("\ncria_requests_cancelled_total 1\n"), metrics);
            // the server goes on serving
            assertEquals(200, c.post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 2}").statusCode());
        }
    }

    @Test
    void aClientLeavingAWholeAnswerIsNoticedByTheHeartbeatAndCancelled() throws Exception {
        Path file = tmp.resolve("long.gguf");
        assertEquals(0, cria.cli.Main.run(new String[] {"synth", "--like", "tiny", "--ctx", "16384", "-o", file.toString()},
                new java.io.ByteArrayOutputStream(), new java.io.PrintStream(new java.io.ByteArrayOutputStream())));
        try (Model m = Model.load(file, cria.engine.ModelOptions.defaults().withBackend("cpu").withThreads(2));
             OpenAiServer s = OpenAiServer.start(m, ServeOptions.defaults().withPort(0).withParallel(1).withContextLength(16384))) {
            String body = "{\"prompt\": \"Once\", \"max_tokens\": 16000, \"ignore_eos\": true}";
            try (java.net.Socket sock = new java.net.Socket("127.0.0.1", s.port())) {
                sock.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        + "Content-Length: " + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
                sock.getOutputStream().flush();
                // the answer starts with 200 and its headers once the first heartbeat space is due
                sock.setSoTimeout(30_000);
                BufferedReader in = new BufferedReader(new InputStreamReader(sock.getInputStream(), StandardCharsets.US_ASCII));
                assertEquals("HTTP/1.1 200 OK", in.readLine());
                assertEquals(1, s.stats().running(), "the generation still runs while the spaces are written");
            }
            ServeClient.await("the whole answer is cancelled", () -> s.stats().running() == 0);
            BatchGenerator.Stats st = s.stats();
            assertTrue(st.generatedTokens() < 16000, "the sequence ran to its end instead of being cancelled: " + st);
            assertEquals(st.kvPagesCached(), st.kvPagesUsed(), st.toString());
        }
    }

    @Test
    void healthSays503WhileLoadingAnd200Once() {
        try (OpenAiServer s = OpenAiServer.listen(ServeOptions.defaults().withPort(0))) {
            ServeClient c = new ServeClient(s);
            HttpResponse<String> h = c.get("/health");
            assertEquals(503, h.statusCode());
            assertEquals("loading", ServeClient.parse(h.body()).path("status").asText());
            HttpResponse<String> api = c.post("/v1/completions", "{\"prompt\": \"x\"}");
            assertEquals(503, api.statusCode());
            assertEquals("model_loading", ServeClient.parse(api.body()).path("error").path("code").asText());
            assertNull(s.stats());
            assertTrue(c.get("/metrics").body().contains("\ncria_model_loaded 0\n"));
            s.attach(model);
            assertEquals(200, c.get("/health").statusCode());
            assertEquals(200, c.post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 2}").statusCode());
        }
    }

    @Test
    void closeLetsRunningRequestsFinishWithinTheGrace() throws Exception {
        OpenAiServer s = OpenAiServer.start(model, ServeOptions.defaults().withPort(0).withParallel(2).withContextLength(512)
                .withShutdownGraceMillis(60_000));
        ServeClient c = new ServeClient(s);
        InputStream running = openStream(c, "{\"prompt\": \"z\", \"max_tokens\": 60, \"ignore_eos\": true, \"stream\": true}");
        s.close();
        String rest = new String(running.readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(rest.contains("\"finish_reason\":\"length\"") && rest.endsWith("data: [DONE]\n\n"), rest);
        assertEquals(0, s.stats().running());
    }

    @Test
    void closeCancelsWhatStillRunsAfterTheGrace() throws Exception {
        OpenAiServer s = OpenAiServer.start(model, ServeOptions.defaults().withPort(0).withParallel(2).withContextLength(512)
                .withShutdownGraceMillis(0));
        ServeClient c = new ServeClient(s);
        InputStream endless = openStream(c, "{\"prompt\": \"z\", \"max_tokens\": 500, \"ignore_eos\": true, \"stream\": true}");
        s.close();
        String rest = new String(endless.readAllBytes(), StandardCharsets.UTF_8);
        assertFalse(rest.contains("data: [DONE]"), "a cut stream does not look complete: " + rest);
        assertTrue(rest.contains("\"code\":\"shutting_down\""), "a cut stream ends with an error event: " + rest);
        assertEquals(0, s.stats().running());
        assertTrue(s.stats().generatedTokens() < 500, s.stats().toString());
    }
}
