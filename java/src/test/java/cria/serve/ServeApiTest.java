// The server's endpoints against a cria-synth model: whole vs streamed text, usage, n, logprobs, logit bias, embeddings, errors.
package cria.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import cria.engine.Model;
import cria.tokenizer.ChatTemplate;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServeApiTest {
    @TempDir
    static Path tmp;
    static Model model;
    static OpenAiServer server;
    static ServeClient client;

    @BeforeAll
    static void start() {
        model = ServeClient.synthModel(tmp);
        server = OpenAiServer.start(model, ServeOptions.defaults().withPort(0).withContextLength(256).withBatchSize(64)
                .withMaxBodyBytes(64 * 1024).withAlias("tiny"));
        client = new ServeClient(server);
    }

    @AfterAll
    static void stop() {
        server.close();
        model.close();
    }

    static String chat(String content, String more) {
        return "{\"model\": \"tiny\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \""
                + content + "\"}]" + more + "}";
    }

    @Test
    void chatStreamedAndWholeGiveTheSameTextAndExactUsage() {
        String more = ", \"max_tokens\": 24, \"seed\": 7, \"temperature\": 0.9, \"ignore_eos\": true";
        JsonNode whole = client.ok("/v1/chat/completions", chat("Tell me a story", more));
        assertEquals("chat.completion", whole.path("object").asText());
        assertEquals("tiny", whole.path("model").asText());
        JsonNode choice = whole.path("choices").get(0);
        assertEquals("assistant", choice.path("message").path("role").asText());
        assertEquals("length", choice.path("finish_reason").asText());
        String text = choice.path("message").path("content").asText();
        assertFalse(text.isEmpty());
        int promptTokens = model.chatTokens(List.of(new ChatTemplate.Message("system", "Be brief."),
                new ChatTemplate.Message("user", "Tell me a story"))).length;
        assertEquals(promptTokens, whole.path("usage").path("prompt_tokens").asInt());
        assertEquals(24, whole.path("usage").path("completion_tokens").asInt());
        assertEquals(promptTokens + 24, whole.path("usage").path("total_tokens").asInt());

        List<String> events = client.events("/v1/chat/completions",
                chat("Tell me a story", more + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}"));
        assertEquals("[DONE]", events.get(events.size() - 1));
        JsonNode first = ServeClient.parse(events.get(0));
        assertEquals("chat.completion.chunk", first.path("object").asText());
        assertEquals("assistant", first.path("choices").get(0).path("delta").path("role").asText());
        JsonNode lastChoice = ServeClient.parse(events.get(events.size() - 3)).path("choices").get(0);
        assertEquals("length", lastChoice.path("finish_reason").asText());
        JsonNode usageChunk = ServeClient.parse(events.get(events.size() - 2));
        assertEquals(0, usageChunk.path("choices").size());
        assertEquals(whole.path("usage"), usageChunk.path("usage"));
        for (String e : events.subList(0, events.size() - 2)) {
            assertTrue(ServeClient.parse(e).path("usage").isNull(), "chunks before the last carry usage: null");
        }
        assertEquals(text, ServeClient.streamedText(events, 0));
    }

    @Test
    void completionsStreamedAndWholeAgreeWithoutUsageChunkByDefault() {
        String body = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 16, \"seed\": 3, \"ignore_eos\": true";
        JsonNode whole = client.ok("/v1/completions", body + "}");
        assertEquals("text_completion", whole.path("object").asText());
        String text = whole.path("choices").get(0).path("text").asText();
        int prompt = client.ok("/tokenize", "{\"content\": \"Once upon a time\", \"add_special\": true}").path("tokens").size();
        assertEquals(prompt, whole.path("usage").path("prompt_tokens").asInt());
        assertEquals(16, whole.path("usage").path("completion_tokens").asInt());
        List<String> events = client.events("/v1/completions", body + ", \"stream\": true}");
        assertEquals(text, ServeClient.streamedText(events, 0));
        JsonNode last = ServeClient.parse(events.get(events.size() - 2));
        assertEquals("length", last.path("choices").get(0).path("finish_reason").asText());
        assertFalse(last.has("usage"));
    }

    @Test
    void nChoicesUseSeedPlusIndexAndChoiceZeroEqualsALoneRequest() {
        String base = "{\"prompt\": \"The cat\", \"max_tokens\": 12, \"temperature\": 1.0, \"ignore_eos\": true, \"seed\": ";
        JsonNode two = client.ok("/v1/completions", base + "11, \"n\": 2}");
        assertEquals(2, two.path("choices").size());
        String lone0 = client.ok("/v1/completions", base + "11}").path("choices").get(0).path("text").asText();
        String lone1 = client.ok("/v1/completions", base + "12}").path("choices").get(0).path("text").asText();
        assertEquals(lone0, two.path("choices").get(0).path("text").asText());
        assertEquals(lone1, two.path("choices").get(1).path("text").asText());
        assertNotEquals(lone0, lone1, "two seeds drew the same 12 tokens: the test model is too peaked to tell seeds apart");
        assertEquals(24, two.path("usage").path("completion_tokens").asInt());
        List<String> events = client.events("/v1/completions", base + "11, \"n\": 2, \"stream\": true}");
        assertEquals(lone0, ServeClient.streamedText(events, 0));
        assertEquals(lone1, ServeClient.streamedText(events, 1));
    }

    @Test
    void aRequestGivesTheSameTextAloneAndAmongOthers() throws Exception {
        List<String> bodies = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            bodies.add(chat("Question number " + i, ", \"max_tokens\": 20, \"ignore_eos\": true, \"temperature\": 0.8, \"seed\": " + (100 + i)
                    + (i % 2 == 0 ? ", \"stream\": true" : "")));
        }
        List<String> alone = new ArrayList<>();
        for (String b : bodies) {
            alone.add(text(b));
        }
        List<CompletableFuture<String>> together = new ArrayList<>();
        for (String b : bodies) {
            together.add(CompletableFuture.supplyAsync(() -> text(b)));
        }
        for (int i = 0; i < bodies.size(); i++) {
            assertEquals(alone.get(i), together.get(i).get(), "request " + i);
        }
    }

    private static String text(String body) {
        if (body.contains("\"stream\": true")) {
            return ServeClient.streamedText(client.events("/v1/chat/completions", body), 0);
        }
        return client.ok("/v1/chat/completions", body).path("choices").get(0).path("message").path("content").asText();
    }

    @Test
    void aSharedSystemPromptIsComputedOnce() {
        String system = "You are a helpful assistant who answers every question about cats, dogs and birds in one short line.";
        String body = "{\"messages\": [{\"role\": \"system\", \"content\": \"" + system + "\"}, {\"role\": \"user\", \"content\": \"%s\"}],"
                + " \"max_tokens\": 4, \"temperature\": 0}";
        client.ok("/v1/chat/completions", body.formatted("first question"));
        long before = server.stats().promptTokensReused();
        JsonNode second = client.ok("/v1/chat/completions", body.formatted("second question"));
        long reused = server.stats().promptTokensReused() - before;
        assertTrue(reused >= 16, "the system prompt's pages were not shared: " + reused + " tokens reused");
        assertTrue(reused < second.path("usage").path("prompt_tokens").asLong(), "usage counts the whole prompt");
    }

    @Test
    void chatLogprobsHaveOpenAisShapeAndStreamTheSameValues() {
        String body = chat("Hi", ", \"max_tokens\": 8, \"temperature\": 0, \"ignore_eos\": true, \"logprobs\": true, \"top_logprobs\": 3");
        JsonNode content = client.ok("/v1/chat/completions", body).path("choices").get(0).path("logprobs").path("content");
        assertEquals(8, content.size());
        for (JsonNode e : content) {
            assertTrue(e.path("token").isTextual());
            assertTrue(e.path("logprob").asDouble() <= 0);
            assertTrue(e.path("bytes").isArray());
            JsonNode top = e.path("top_logprobs");
            assertEquals(3, top.size());
            assertEquals(e.path("token").asText(), top.get(0).path("token").asText(), "greedy picks the most likely token");
            assertEquals(e.path("logprob").asDouble(), top.get(0).path("logprob").asDouble(), 1e-6);
            assertTrue(top.get(0).path("logprob").asDouble() >= top.get(1).path("logprob").asDouble());
        }
        List<JsonNode> streamed = new ArrayList<>();
        for (String ev : client.events("/v1/chat/completions", body.substring(0, body.length() - 1) + ", \"stream\": true}")) {
            if (!ev.equals("[DONE]")) {
                ServeClient.parse(ev).path("choices").get(0).path("logprobs").path("content").forEach(streamed::add);
            }
        }
        assertEquals(content.size(), streamed.size());
        for (int i = 0; i < streamed.size(); i++) {
            assertEquals(content.get(i), streamed.get(i));
        }
    }

    @Test
    void completionLogprobsHaveTheLegacyShape() {
        JsonNode lp = client.ok("/v1/completions", "{\"prompt\": \"abc\", \"max_tokens\": 5, \"temperature\": 0, \"ignore_eos\": true, \"logprobs\": 2}")
                .path("choices").get(0).path("logprobs");
        assertEquals(5, lp.path("tokens").size());
        assertEquals(5, lp.path("token_logprobs").size());
        assertEquals(5, lp.path("top_logprobs").size());
        assertEquals(5, lp.path("text_offset").size());
        assertTrue(lp.path("top_logprobs").get(0).size() >= 1 && lp.path("top_logprobs").get(0).size() <= 2);
        assertEquals(0, lp.path("text_offset").get(0).asInt());
        for (int i = 1; i < 5; i++) {
            assertEquals(lp.path("text_offset").get(i - 1).asInt() + lp.path("tokens").get(i - 1).asText().length(),
                    lp.path("text_offset").get(i).asInt());
        }
    }

    @Test
    void logitBiasBansTheGreedyTokenAndStopEndsBeforeTheStopString() {
        String greedy = "{\"prompt\": [1, 50, 60, 70], \"max_tokens\": 1, \"temperature\": 0, \"ignore_eos\": true";
        int top;
        try (cria.engine.Session session = model.newSession(cria.engine.SessionOptions.defaults().withContextLength(16))) {
            float[] logits = session.eval(new int[] {1, 50, 60, 70});
            top = 0;
            for (int i = 1; i < logits.length; i++) {
                top = logits[i] > logits[top] ? i : top;
            }
        }
        JsonNode plain = client.ok("/v1/completions", greedy + ", \"logprobs\": 0}").path("choices").get(0);
        String firstText = plain.path("text").asText();
        assertEquals(new String(model.tokenizer().piece(top, false), java.nio.charset.StandardCharsets.UTF_8),
                plain.path("logprobs").path("tokens").get(0).asText(), "the server's greedy token is the highest logit");
        String banned = client.ok("/v1/completions", greedy + ", \"logit_bias\": {\"" + top + "\": -100}}")
                .path("choices").get(0).path("text").asText();
        assertNotEquals(firstText, banned);

        JsonNode g = client.ok("/v1/completions", "{\"prompt\": \"xyz\", \"max_tokens\": 30, \"temperature\": 0, \"ignore_eos\": true}");
        String full = g.path("choices").get(0).path("text").asText();
        String stop = full.substring(full.length() / 2, full.length() / 2 + 2);
        JsonNode s = client.ok("/v1/completions", "{\"prompt\": \"xyz\", \"max_tokens\": 30, \"temperature\": 0, \"ignore_eos\": true, "
                + "\"stop\": [" + ServeClient.JSON.valueToTree(stop) + "]}");
        String cut = s.path("choices").get(0).path("text").asText();
        assertEquals(full.substring(0, full.indexOf(stop)), cut);
        assertEquals("stop", s.path("choices").get(0).path("finish_reason").asText());
    }

    @Test
    void tokenizeDetokenizeModelsAndEmbeddings() {
        JsonNode t = client.ok("/tokenize", "{\"content\": \"hello world\"}");
        JsonNode d = client.ok("/detokenize", "{\"tokens\": " + t.path("tokens") + "}");
        assertEquals("hello world", d.path("content").asText());
        JsonNode models = ServeClient.parse(client.get("/v1/models").body());
        assertEquals("tiny", models.path("data").get(0).path("id").asText());
        assertEquals(200, client.get("/v1/models/tiny").statusCode());
        assertEquals(404, client.get("/v1/models/other").statusCode());

        JsonNode e = client.ok("/v1/embeddings", "{\"model\": \"tiny\", \"input\": [\"a cat\", \"a dog\", \"a cat\"]}");
        assertEquals(3, e.path("data").size());
        JsonNode v0 = e.path("data").get(0).path("embedding");
        assertEquals(model.config().dim(), v0.size());
        double norm = 0;
        for (JsonNode x : v0) {
            norm += x.asDouble() * x.asDouble();
        }
        assertEquals(1.0, norm, 1e-4);
        assertEquals(v0, e.path("data").get(2).path("embedding"));
        assertNotEquals(v0, e.path("data").get(1).path("embedding"));
        int[] ids = model.tokenizer().encode("a cat", true, false);
        assertEquals(3L * ids.length - ids.length + model.tokenizer().encode("a dog", true, false).length,
                e.path("usage").path("prompt_tokens").asLong());
        JsonNode byIds = client.ok("/v1/embeddings", "{\"input\": " + ServeClient.JSON.valueToTree(ids) + "}");
        assertEquals(v0, byIds.path("data").get(0).path("embedding"));
    }

    @Test
    void errorsHaveOpenAisShapeAndStatus() {
        expect(client.post("/v1/chat/completions", "{\"messages\": [}"), 400, "invalid_json", null);
        expect(client.post("/v1/chat/completions", "[1, 2]"), 400, "invalid_json", null);
        expect(client.post("/v1/chat/completions", chat("x", ", \"temperature\": \"hot\"")), 400, "invalid_value", "temperature");
        expect(client.post("/v1/chat/completions", chat("x", ", \"temperature\": 7")), 400, "invalid_value", "temperature");
        expect(client.post("/v1/chat/completions", chat("x", ", \"n\": 0")), 400, "invalid_value", "n");
        expect(client.post("/v1/chat/completions", chat("x", ", \"top_logprobs\": 30, \"logprobs\": true")), 400, "invalid_value", "top_logprobs");
        expect(client.post("/v1/chat/completions", chat("x", ", \"logit_bias\": {\"999999\": 5}")), 400, "invalid_value", "logit_bias");
        expect(client.post("/v1/chat/completions", chat("x", ", \"max_tokens\": -3")), 400, "invalid_value", "max_tokens");
        expect(client.post("/v1/chat/completions", "{\"messages\": \"hi\"}"), 400, "invalid_value", "messages");
        expect(client.post("/v1/completions", "{\"prompt\": [1, 2, 99999]}"), 400, "invalid_value", "prompt");
        expect(client.post("/detokenize", "{\"tokens\": [-1]}"), 400, "invalid_value", "tokens");
        int[] longPrompt = new int[200];
        java.util.Arrays.fill(longPrompt, 40);
        longPrompt[0] = 1;
        String overflow = "{\"prompt\": " + ServeClient.JSON.valueToTree(longPrompt) + ", \"max_tokens\": 100}";
        JsonNode err = expect(client.post("/v1/completions", overflow), 400, "context_length_exceeded", null);
        String msg = err.path("message").asText();
        assertTrue(msg.contains("256") && msg.contains("200") && msg.contains("100"), msg);
        expect(client.get("/v1/nothing"), 404, "not_found", null);
        expect(client.get("/v1/chat/completions"), 405, "method_not_allowed", null);
        // 413: declared too large (Content-Length), and chunked past the limit
        String big = chat("x".repeat(70 * 1024), "");
        expect(client.post("/v1/chat/completions", big), 413, "request_too_large", null);
        HttpResponse<String> chunked = client.send(client.request("/v1/chat/completions").POST(HttpRequest.BodyPublishers.ofInputStream(
                () -> new java.io.ByteArrayInputStream(big.getBytes(java.nio.charset.StandardCharsets.UTF_8)))).build());
        expect(chunked, 413, "request_too_large", null);
        // the server still answers afterwards
        assertEquals(200, client.get("/health").statusCode());
    }

    @Test
    void requestsHelidonCannotParseGetOpenAiShapedErrorsAndTheServerGoesOn() throws Exception {
        String[] garbage = raw("GARBAGE\r\n\r\n");
        expectRaw(garbage, 400, "malformed_http");
        String[] header = raw("GET /health HTTP/1.1\r\nHost: x\r\nthis header line has no colon\r\n\r\n");
        expectRaw(header, 400, "malformed_http");
        String[] longUri = raw("GET /" + "a".repeat(20_000) + " HTTP/1.1\r\nHost: x\r\n\r\n");
        expectRaw(longUri, 414, "uri_too_long");
        String[] http10 = raw("GET /health HTTP/1.0\r\n\r\n");
        assertTrue(http10[0].startsWith("HTTP/1.1 505 "), http10[0]);
        assertEquals("http_version_not_supported", ServeClient.parse(http10[2]).path("error").path("code").asText(), http10[2]);
        // a method with a character a token may not have fails inside Helidon's reader, whose catch-all
        // would answer 500 and log a stack trace: 400, and nothing logged
        java.util.logging.Logger log = java.util.logging.Logger.getLogger("io.helidon.webserver.http1.Http1Connection");
        List<java.util.logging.LogRecord> logged = java.util.Collections.synchronizedList(new ArrayList<>());
        java.util.logging.Handler h = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                logged.add(r);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        log.addHandler(h);
        try {
            expectRaw(raw("G@T /health HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "malformed_http");
            Thread.sleep(300); // Helidon logs after it has written the answer
        } finally {
            log.removeHandler(h);
        }
        assertTrue(logged.stream().noneMatch(r -> r.getLevel().intValue() >= java.util.logging.Level.WARNING.intValue()),
                "Helidon logged: " + logged.stream().map(r -> r.getMessage() + " " + r.getThrown()).toList());
        assertEquals(200, client.get("/health").statusCode());
        String metrics = client.get("/metrics").body();
        assertTrue(metrics.contains("cria_requests_total{endpoint=\"unparsed\",status=\"400\"}"), metrics);
    }

    /** Sends bytes on a new connection and reads the answer to its end: status line, header block, body. */
    private static String[] raw(String request) throws java.io.IOException {
        try (java.net.Socket sock = new java.net.Socket("127.0.0.1", server.port())) {
            sock.setSoTimeout(10_000);
            sock.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            sock.getOutputStream().flush();
            String all = new String(sock.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
            int eol = all.indexOf("\r\n");
            int end = all.indexOf("\r\n\r\n");
            assertTrue(eol > 0 && end >= eol, "no HTTP answer: '" + all + "'");
            return new String[] {all.substring(0, eol), all.substring(eol + 2, end + 2), all.substring(end + 4)};
        }
    }

    private static void expectRaw(String[] answer, int status, String code) {
        assertTrue(answer[0].startsWith("HTTP/1.1 " + status + " "), String.join("\n", answer));
        assertTrue(answer[1].toLowerCase(java.util.Locale.ROOT).contains("content-type: application/json"), answer[1]);
        JsonNode e = ServeClient.parse(answer[2]).path("error");
        assertEquals(code, e.path("code").asText(), answer[2]);
        assertEquals("invalid_request_error", e.path("type").asText(), answer[2]);
        assertTrue(e.path("message").asText().length() > 10, answer[2]);
    }

    private static JsonNode expect(HttpResponse<String> r, int status, String code, String param) {
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
        JsonNode e = ServeClient.parse(r.body()).path("error");
        assertTrue(e.path("message").isTextual() && !e.path("message").asText().isEmpty(), r.body());
        assertTrue(e.path("type").isTextual(), r.body());
        assertEquals(code, e.path("code").asText(), r.body());
        if (param != null) {
            assertEquals(param, e.path("param").asText(), r.body());
            assertTrue(e.path("message").asText().contains(param), r.body());
        }
        return e;
    }

    private static final Pattern SAMPLE = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? "
            + "(-?[0-9.]+(E-?[0-9]+)?|\\+Inf|NaN)");

    @Test
    void metricsAreValidPrometheusTextAndCountRequests() {
        client.ok("/v1/completions", "{\"prompt\": \"a\", \"max_tokens\": 3, \"ignore_eos\": true}");
        HttpResponse<String> r = client.get("/metrics");
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
        java.util.Map<String, Double> values = new java.util.HashMap<>();
        for (String line : r.body().split("\n")) {
            if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) {
                continue;
            }
            assertTrue(SAMPLE.matcher(line).matches(), "not a Prometheus sample line: " + line);
            int sp = line.lastIndexOf(' ');
            values.put(line.substring(0, sp), Double.parseDouble(line.substring(sp + 1).replace("+Inf", "Infinity")));
        }
        assertTrue(values.get("cria_requests_total{endpoint=\"/v1/completions\",status=\"200\"}") >= 1, r.body());
        assertTrue(values.get("cria_generated_tokens_total") >= 3);
        assertTrue(values.get("cria_time_to_first_token_seconds_count") >= 1);
        assertEquals(values.get("cria_time_to_first_token_seconds_count"), values.get("cria_time_to_first_token_seconds_bucket{le=\"+Inf\"}"));
        assertTrue(values.get("cria_time_per_output_token_seconds_count") >= 2);
        for (String k : List.of("cria_queue_depth", "cria_sequences_busy", "cria_kv_pages_used", "cria_kv_pages_cached", "cria_kv_pages_total")) {
            assertTrue(values.containsKey(k), k);
        }
        assertTrue(values.get("cria_kv_pages_total") > 0);
    }
}
