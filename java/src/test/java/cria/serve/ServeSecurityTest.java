// API key (both headers, constant-time check, open health and metrics) and CORS (allowed origins, preflight).
package cria.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.engine.Model;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServeSecurityTest {
    @TempDir
    static Path tmp;
    static Model model;
    static OpenAiServer server;
    static ServeClient client;

    @BeforeAll
    static void start() {
        model = ServeClient.synthModel(tmp);
        server = OpenAiServer.start(model, ServeOptions.defaults().withPort(0).withContextLength(128).withApiKey("s3cret-key")
                .withCorsOrigins(List.of("http://app.example")));
        client = new ServeClient(server);
    }

    @AfterAll
    static void stop() {
        server.close();
        model.close();
    }

    HttpResponse<String> models(String header, String value) {
        HttpRequest.Builder b = client.request("/v1/models").GET();
        if (header != null) {
            b.header(header, value);
        }
        return client.send(b.build());
    }

    @Test
    void aPortInUseIsOneLineAndNoServer() throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            cria.CriaException e = org.junit.jupiter.api.Assertions.assertThrows(cria.CriaException.class,
                    () -> OpenAiServer.listen(ServeOptions.defaults().withPort(taken.getLocalPort())));
            assertTrue(e.getMessage().startsWith("cannot listen on 127.0.0.1:" + taken.getLocalPort() + ": "), e.getMessage());
            assertTrue(e.getMessage().contains("--port"), e.getMessage());
        }
    }

    @Test
    void theKeyIsAskedForEverywhereButHealthMetricsAndThePage() {
        for (HttpResponse<String> r : List.of(models(null, null), models("Authorization", "Bearer wrong"),
                models("Authorization", "Bearer s3cret-ke"), models("X-Api-Key", "s3cret-key-and-more"), models("Authorization", "s3cret-key"))) {
            assertEquals(401, r.statusCode(), r.body());
            assertEquals("invalid_api_key", ServeClient.parse(r.body()).path("error").path("code").asText());
        }
        assertEquals(200, models("Authorization", "Bearer s3cret-key").statusCode());
        assertEquals(200, models("X-Api-Key", "s3cret-key").statusCode());
        HttpResponse<String> post = client.post("/v1/completions", "{\"prompt\": \"a\", \"max_tokens\": 2}");
        assertEquals(401, post.statusCode());
        HttpResponse<String> posted = client.send(client.request("/v1/completions").header("Authorization", "Bearer s3cret-key")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"a\", \"max_tokens\": 2}")).build());
        assertEquals(200, posted.statusCode(), posted.body());
        assertEquals(200, client.get("/health").statusCode());
        assertEquals(200, client.get("/metrics").statusCode());
        assertEquals(401, client.get("/v1/unknown").statusCode(), "unknown paths do not tell a caller without the key what exists");
    }

    @Test
    void corsHeadersOnlyForAllowedOriginsAndPreflightIsAnswered() {
        HttpResponse<String> pre = client.send(client.request("/v1/chat/completions").method("OPTIONS", HttpRequest.BodyPublishers.noBody())
                .header("Origin", "http://app.example").header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "authorization, content-type").build());
        assertEquals(204, pre.statusCode());
        assertEquals("http://app.example", pre.headers().firstValue("Access-Control-Allow-Origin").orElse(null));
        assertTrue(pre.headers().firstValue("Access-Control-Allow-Methods").orElse("").contains("POST"));
        assertEquals("authorization, content-type", pre.headers().firstValue("Access-Control-Allow-Headers").orElse(null));

        HttpResponse<String> other = client.send(client.request("/v1/chat/completions").method("OPTIONS", HttpRequest.BodyPublishers.noBody())
                .header("Origin", "http://evil.example").header("Access-Control-Request-Method", "POST").build());
        assertFalse(other.headers().firstValue("Access-Control-Allow-Origin").isPresent());

        HttpResponse<String> get = client.send(client.request("/v1/models").header("Origin", "http://app.example")
                .header("X-Api-Key", "s3cret-key").GET().build());
        assertEquals(200, get.statusCode());
        assertEquals("http://app.example", get.headers().firstValue("Access-Control-Allow-Origin").orElse(null));
        HttpResponse<String> denied = client.send(client.request("/v1/models").header("Origin", "http://app.example").GET().build());
        assertEquals(401, denied.statusCode());
        assertEquals("http://app.example", denied.headers().firstValue("Access-Control-Allow-Origin").orElse(null),
                "a browser page can read why it was refused");
    }

    @Test
    void withoutCorsOriginsNoCorsHeadersAreSent() {
        try (OpenAiServer s = OpenAiServer.start(model, ServeOptions.defaults().withPort(0).withContextLength(64))) {
            ServeClient c = new ServeClient(s);
            HttpResponse<String> r = c.send(c.request("/v1/models").header("Origin", "http://app.example").GET().build());
            assertEquals(200, r.statusCode());
            assertFalse(r.headers().firstValue("Access-Control-Allow-Origin").isPresent());
        }
    }
}
