// An OpenAI-compatible HTTP server over one model: chat and text completions (whole or streamed), embeddings, tokens, health, metrics.
package cria.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.engine.BatchGenerator;
import cria.engine.Model;
import io.helidon.http.DirectHandler;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.CloseConnectionException;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.Filter;
import io.helidon.webserver.http.FilterChain;
import io.helidon.webserver.http.Handler;
import io.helidon.webserver.http.HttpRouting;
import io.helidon.webserver.http.RoutingRequest;
import io.helidon.webserver.http.RoutingResponse;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Map;
import java.util.OptionalLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Serves one {@link Model} over HTTP with OpenAI's API, on Helidon SE's web server (a virtual
 * thread per request) and a {@link BatchGenerator} (continuous batching: requests join the running
 * batch between forward steps, and prompts sharing a prefix share its KV pages).
 *
 * <p>Endpoints: {@code POST /v1/chat/completions} and {@code /v1/completions} (whole, or streamed
 * as server-sent events ending with {@code data: [DONE]}); {@code POST /v1/embeddings} (the mean of
 * the model's final, output-normed hidden states over the input's tokens, L2-normalized: see
 * {@link cria.engine.Embedder}); {@code GET /v1/models}; {@code POST /tokenize} and
 * {@code /detokenize}; {@code GET /health} (503 while the model loads, then 200); {@code GET
 * /metrics} (Prometheus text); {@code GET /} (a chat page). Errors come in OpenAI's shape, {@code
 * {"error": {"message", "type", "param", "code"}}}, with their status: 400 for malformed JSON or a
 * bad value (the field is named), 401 for a missing or wrong key, 404, 405, 413 for a body over the
 * limit (refused before it is read), 429 with Retry-After when the engine's queue is full, 400 for
 * a prompt and max_tokens that do not fit the context (both sizes named).
 *
 * <p>Each request's text reaches only its own connection. A streaming client that goes away
 * cancels its sequences (the engine frees their pages at its next step). With an API key, every
 * endpoint but {@code /health}, {@code /metrics} and {@code /} asks for it, compared in constant time.
 *
 * <pre>{@code
 * try (Model model = Model.load(Path.of("model.gguf"), ModelOptions.defaults());
 *      OpenAiServer server = OpenAiServer.start(model, ServeOptions.defaults().withPort(0))) {
 *     System.out.println("listening on " + server.url());
 *     ...
 * }
 * }</pre>
 */
public final class OpenAiServer implements AutoCloseable {
    private static final Logger HELIDON = Logger.getLogger("io.helidon");
    private static final Map<String, String> ROUTES = Map.of(
            "/v1/chat/completions", "POST", "/v1/completions", "POST", "/v1/embeddings", "POST", "/v1/models", "GET",
            "/tokenize", "POST", "/detokenize", "POST", "/health", "GET", "/metrics", "GET", "/", "GET");

    private final ServeOptions options;
    private final Metrics metrics = new Metrics();
    private final byte[] keyDigest;
    private final WebServer server;
    private volatile Engine engine;
    private volatile Completions completions;
    private volatile boolean closing;
    private boolean closed;

    private OpenAiServer(ServeOptions options) {
        this.options = options;
        this.keyDigest = options.apiKey() == null ? null : sha256(options.apiKey());
        HELIDON.setLevel(Level.WARNING); // its start-up banner and per-connection notes are not ours to print
        HttpRouting.Builder routing = HttpRouting.builder()
                .addFilter(new Gate())
                .post("/v1/chat/completions", api((req, res) -> complete(req, res, true)))
                .post("/v1/completions", api((req, res) -> complete(req, res, false)))
                .post("/v1/embeddings", api(this::embeddings))
                .get("/v1/models", api(this::models))
                .get("/v1/models/{id}", api(this::model))
                .post("/tokenize", api(this::tokenize))
                .post("/detokenize", api(this::detokenize))
                .get("/health", this::health)
                .get("/metrics", api(this::metricsText))
                .get("/", api(this::chatPage));
        for (var e : ROUTES.entrySet()) {
            routing.any(e.getKey(), api((req, res) -> {
                throw ApiError.methodNotAllowed(req.prologue().method().text(), e.getKey(), e.getValue());
            }));
        }
        routing.any(api((req, res) -> {
            throw ApiError.notFound(req.prologue().method().text(), req.path().path());
        }));
        long grace = options.shutdownGraceMillis();
        this.server = WebServer.builder()
                .host(options.host())
                .port(options.port())
                .shutdownHook(false)
                .shutdownGracePeriod(Duration.ofMillis(grace + 2000))
                // requests that never reach a route (an unparseable request line or header, an
                // over-long URI) are answered in OpenAI's error shape too; Helidon passes its reason
                // only when it is allowed to show it to the client
                .errorHandling(e -> e.includeEntity(true))
                .directHandlers(d -> {
                    for (DirectHandler.EventType t : DirectHandler.EventType.values()) {
                        d.addHandler(t, this::unparsed);
                    }
                })
                .routing(routing)
                .build();
    }

    /**
     * Starts listening without a model: {@code /health} answers 503 {@code {"status": "loading"}}
     * and the API endpoints 503 until {@link #attach} is called. For a command line that wants to
     * be reachable while a large model loads.
     *
     * @throws CriaException when an option is out of range or the address cannot be bound
     */
    public static OpenAiServer listen(ServeOptions options) {
        try {
            options.validate();
        } catch (IllegalArgumentException e) {
            throw new CriaException(e.getMessage());
        }
        OpenAiServer s = new OpenAiServer(options);
        // Helidon reports a listener it cannot bind as a logged stack trace and a server on port -1,
        // not as an exception: its log is quiet while it starts, and the outcome is checked here.
        java.util.logging.Logger helidon = java.util.logging.Logger.getLogger("io.helidon.webserver");
        java.util.logging.Level level = helidon.getLevel();
        helidon.setLevel(java.util.logging.Level.OFF);
        String why = null;
        try {
            s.server.start();
            if (!s.server.isRunning() || s.server.port() < 0) {
                why = bindFailure(options);
            }
        } catch (RuntimeException e) {
            Throwable c = e;
            while (c.getCause() != null && !(c instanceof IOException)) {
                c = c.getCause();
            }
            why = c.getMessage();
        } finally {
            helidon.setLevel(level);
        }
        if (why != null) {
            s.server.stop();
            throw new CriaException("cannot listen on " + options.host() + ":" + options.port() + ": " + why
                    + " (is another server on that port? choose one with --port)");
        }
        return s;
    }

    /** Why the address cannot be bound, as the JDK says it (after Helidon failed to bind it without saying why). */
    private static String bindFailure(ServeOptions o) {
        try (java.net.ServerSocket probe = new java.net.ServerSocket()) {
            probe.bind(new java.net.InetSocketAddress(o.host(), o.port()));
            return "the web server did not start";
        } catch (IOException e) {
            return e.getMessage();
        }
    }

    /**
     * Starts a server on a loaded model: opens the batch engine ({@link ServeOptions#parallel}
     * sequences of {@link ServeOptions#contextLength} positions) and listens. The model stays the
     * caller's: close the server first, then the model.
     *
     * @throws CriaException when an option is out of range, the KV pool would not fit, or the address cannot be bound
     */
    public static OpenAiServer start(Model model, ServeOptions options) {
        OpenAiServer s = listen(options);
        try {
            s.attach(model);
        } catch (RuntimeException | Error e) {
            s.close();
            throw e;
        }
        return s;
    }

    /**
     * Puts a loaded model behind a server made by {@link #listen}: opens the batch engine; from
     * then on {@code /health} answers 200.
     *
     * @throws IllegalStateException when a model is already attached or the server is closed
     */
    public synchronized void attach(Model model) {
        if (engine != null || closed) {
            throw new IllegalStateException(closed ? "the server is closed" : "a model is already attached");
        }
        Engine e = new Engine(model, options);
        this.completions = new Completions(e, metrics);
        this.engine = e;
    }

    /** The port listened on (the one chosen when {@link ServeOptions#port} was 0). */
    public int port() {
        return server.port();
    }

    /** {@code http://HOST:PORT} (an IPv6 host in brackets). */
    public String url() {
        String h = options.host().contains(":") ? "[" + options.host() + "]" : options.host();
        return "http://" + h + ":" + port();
    }

    /** The model name clients see (the alias, or the file name); null before {@link #attach}. */
    public String modelName() {
        Engine e = engine;
        return e == null ? null : e.alias;
    }

    /** The batch engine's counters (queue, busy sequences, KV pages...); null before {@link #attach}. */
    public BatchGenerator.Stats stats() {
        Engine e = engine;
        return e == null ? null : e.generator.stats();
    }

    /**
     * Stops: no new connections; requests running get {@link ServeOptions#shutdownGraceMillis} to
     * finish, then their generations are cancelled; then the engine and its caches are freed (not
     * the model). Safe to call twice.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            closing = true;
        }
        Thread stopper = Thread.ofPlatform().name("cria-serve-stop").start(server::stop);
        Engine e = engine;
        long deadline = System.nanoTime() + options.shutdownGraceMillis() * 1_000_000L;
        while (e != null && e.active() > 0 && System.nanoTime() < deadline) {
            sleep(20);
        }
        if (e != null && e.cancelAll() > 0) {
            metrics.cancelled.increment();
        }
        try {
            stopper.join();
        } catch (InterruptedException x) {
            Thread.currentThread().interrupt();
        }
        if (e != null) {
            e.close();
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException x) {
            Thread.currentThread().interrupt();
        }
    }

    // ---- endpoints ----

    private void complete(ServerRequest req, ServerResponse res, boolean chat) {
        long arrived = System.nanoTime();
        Engine e = ready();
        ObjectNode body = Jsons.object(body(req, res));
        CompletionRequest r;
        try {
            r = CompletionRequest.parse(body, chat, e.model, e.ctx, e.maxTokens);
        } catch (IllegalArgumentException x) { // a sampler setting the engine refuses
            throw ApiError.invalid(null, x.getMessage());
        }
        completions.handle(r, arrived, res);
    }

    private void embeddings(ServerRequest req, ServerResponse res) {
        Engine e = ready();
        ObjectNode body = Jsons.object(body(req, res));
        JsonNode input = body.get("input");
        int vocab = e.model.config().vocab();
        java.util.List<int[]> inputs = new java.util.ArrayList<>();
        if (input != null && input.isTextual()) {
            inputs.add(e.model.tokenizer().encode(input.asText(), true, false));
        } else if (input != null && input.isArray() && !input.isEmpty() && input.get(0).isNumber()) {
            inputs.add(CompletionRequest.ids(input, vocab, "input"));
        } else if (input != null && input.isArray() && !input.isEmpty()) {
            if (input.size() > 2048) {
                throw ApiError.invalid("input", "at most 2048 inputs per request, got " + input.size());
            }
            for (int i = 0; i < input.size(); i++) {
                JsonNode x = input.get(i);
                if (x.isTextual()) {
                    inputs.add(e.model.tokenizer().encode(x.asText(), true, false));
                } else if (x.isArray() && !x.isEmpty()) {
                    inputs.add(CompletionRequest.ids(x, vocab, "input[" + i + "]"));
                } else {
                    throw ApiError.invalid("input[" + i + "]", "input[" + i + "] must be a string or a non-empty array of token ids");
                }
            }
        } else {
            throw ApiError.invalid("input", "input must be a string, an array of strings, or (arrays of) token ids");
        }
        String format = Jsons.string(body, "encoding_format", "float");
        if (!format.equals("float") && !format.equals("base64")) {
            throw ApiError.invalid("encoding_format", "encoding_format must be float or base64, got " + format);
        }
        var embedder = e.embedder();
        long dims = Jsons.integer(body, "dimensions", 1, Integer.MAX_VALUE, embedder.dimension());
        if (dims != embedder.dimension()) {
            throw ApiError.invalid("dimensions", "this model's embeddings have " + embedder.dimension() + " dimensions, got " + dims);
        }
        ObjectNode o = Jsons.MAPPER.createObjectNode();
        o.put("object", "list");
        ArrayNode data = o.putArray("data");
        long tokens = 0;
        for (int i = 0; i < inputs.size(); i++) {
            int[] ids = inputs.get(i);
            if (ids.length > e.ctx) {
                throw ApiError.contextOverflow("input " + i + " has " + ids.length + " tokens, more than the context of " + e.ctx
                        + "; shorten it");
            }
            float[] v = embedder.embed(ids);
            tokens += ids.length;
            ObjectNode d = data.addObject();
            d.put("object", "embedding");
            d.put("index", i);
            if (format.equals("base64")) {
                java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(v.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(v);
                d.put("embedding", java.util.Base64.getEncoder().encodeToString(b.array()));
            } else {
                ArrayNode a = d.putArray("embedding");
                for (float f : v) {
                    a.add(f);
                }
            }
        }
        o.put("model", e.alias);
        o.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
        metrics.promptTokens.add(tokens);
        json(res, 200, o);
    }

    private void models(ServerRequest req, ServerResponse res) {
        Engine e = ready();
        ObjectNode o = Jsons.MAPPER.createObjectNode();
        o.put("object", "list");
        o.putArray("data").add(modelEntry(e));
        json(res, 200, o);
    }

    private void model(ServerRequest req, ServerResponse res) {
        Engine e = ready();
        String id = req.path().pathParameters().get("id");
        if (!id.equals(e.alias)) {
            throw new ApiError(404, "invalid_request_error", "model_not_found", "model",
                    "no model '" + Jsons.shorten(id) + "' here; this server has '" + e.alias + "'", 0);
        }
        json(res, 200, modelEntry(e));
    }

    private static ObjectNode modelEntry(Engine e) {
        ObjectNode m = Jsons.MAPPER.createObjectNode();
        m.put("id", e.alias);
        m.put("object", "model");
        m.put("created", e.created);
        m.put("owned_by", "cria");
        ObjectNode meta = m.putObject("meta");
        meta.put("context_length", e.ctx);
        meta.put("vocab_size", e.model.config().vocab());
        meta.put("embedding_length", e.model.config().dim());
        return m;
    }

    private void tokenize(ServerRequest req, ServerResponse res) {
        Engine e = ready();
        ObjectNode body = Jsons.object(body(req, res));
        String content = Jsons.string(body, "content", null);
        if (content == null) {
            throw ApiError.invalid("content", "content is required: the text to tokenize");
        }
        boolean addSpecial = Jsons.bool(body, "add_special", false);
        boolean parseSpecial = Jsons.bool(body, "parse_special", true);
        boolean pieces = Jsons.bool(body, "with_pieces", false);
        var tok = e.model.tokenizer();
        int[] ids = tok.encode(content, addSpecial, parseSpecial);
        ObjectNode o = Jsons.MAPPER.createObjectNode();
        ArrayNode a = o.putArray("tokens");
        for (int id : ids) {
            if (pieces) {
                a.addObject().put("id", id).put("piece", new String(tok.piece(id, true), StandardCharsets.UTF_8));
            } else {
                a.add(id);
            }
        }
        json(res, 200, o);
    }

    private void detokenize(ServerRequest req, ServerResponse res) {
        Engine e = ready();
        ObjectNode body = Jsons.object(body(req, res));
        JsonNode t = body.get("tokens");
        if (t == null || !t.isArray()) {
            throw ApiError.invalid("tokens", "tokens is required: an array of token ids");
        }
        int[] ids = CompletionRequest.ids(t, e.model.config().vocab(), "tokens");
        json(res, 200, Jsons.MAPPER.createObjectNode().put("content", e.model.tokenizer().decode(ids, false)));
    }

    private void health(ServerRequest req, ServerResponse res) {
        String status = closing ? "shutting down" : engine == null ? "loading" : "ok";
        json(res, status.equals("ok") ? 200 : 503, Jsons.MAPPER.createObjectNode().put("status", status));
    }

    private void metricsText(ServerRequest req, ServerResponse res) {
        res.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        res.send(metrics.render(stats()).getBytes(StandardCharsets.UTF_8));
    }

    private void chatPage(ServerRequest req, ServerResponse res) throws IOException {
        try (InputStream in = OpenAiServer.class.getResourceAsStream("chat.html")) {
            if (in == null) {
                throw new ApiError(404, "invalid_request_error", "not_found", null,
                        "this build has no chat page (cria/serve/chat.html); the API is under /v1", 0);
            }
            res.header("Content-Type", "text/html; charset=utf-8");
            res.header("Cache-Control", "no-cache");
            res.send(in.readAllBytes());
        }
    }

    // ---- plumbing ----

    private Engine ready() {
        if (closing) {
            throw ApiError.unavailable("shutting_down", "the server is shutting down");
        }
        Engine e = engine;
        if (e == null) {
            throw ApiError.unavailable("model_loading", "the model is still loading; try again shortly (GET /health says when)");
        }
        return e;
    }

    /**
     * The request body, at most {@link ServeOptions#maxBodyBytes}: a Content-Length over it is refused
     * before it is stored, a chunked body as soon as it passes it. The rest of a refused body, up to
     * {@link #DRAIN_LIMIT} bytes, is read and dropped before the 413 is sent: a client still uploading
     * when the connection closes would see a broken pipe instead of the answer.
     */
    private byte[] body(ServerRequest req, ServerResponse res) {
        long max = options.maxBodyBytes();
        OptionalLong declared = req.headers().contentLength();
        if (declared.isPresent() && declared.getAsLong() > max) {
            if (declared.getAsLong() <= DRAIN_LIMIT) {
                try (InputStream in = req.content().inputStream()) {
                    drain(in);
                } catch (IOException | RuntimeException e) {
                    // the client stopped sending: the 413 goes out all the same
                }
            }
            throw ApiError.tooLarge(max);
        }
        try (InputStream in = req.content().inputStream()) {
            byte[] b = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, max + 1));
            if (b.length > max) {
                drain(in);
                throw ApiError.tooLarge(max);
            }
            return b;
        } catch (IOException | RuntimeException e) { // the client sent less than it declared, or went away
            if (e instanceof ApiError a) {
                throw a;
            }
            throw new ApiError(400, "invalid_request_error", "incomplete_body", null,
                    "the request body ended before its declared length", 0);
        }
    }

    /** The most bytes of a refused body read and dropped before answering 413 (a larger one is cut off). */
    static final long DRAIN_LIMIT = 64L << 20;

    /** Reads and drops what is left of a body, at most {@link #DRAIN_LIMIT} bytes. */
    private static void drain(InputStream in) {
        byte[] buf = new byte[64 << 10];
        long left = DRAIN_LIMIT;
        try {
            int n;
            while (left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) > 0) {
                left -= n;
            }
        } catch (IOException | RuntimeException e) {
            // the client stopped sending: nothing more to drop
        }
    }

    private static void json(ServerResponse res, int status, JsonNode body) {
        res.status(status);
        res.header("Content-Type", "application/json");
        res.send(Jsons.bytes(body));
    }

    private static void error(ServerResponse res, ApiError e) {
        if (res.isSent()) {
            return;
        }
        if (e.retryAfter > 0) {
            res.header("Retry-After", Integer.toString(e.retryAfter));
        }
        boolean unread = e.status == 413 || "incomplete_body".equals(e.code);
        if (unread) {
            res.header("Connection", "close");
        }
        json(res, e.status, e.body());
        if (unread) { // the rest of the body is never read: this connection cannot carry another request
            throw new CloseConnectionException("request body not read: " + e.code);
        }
    }

    /** The answer to a request Helidon could not parse (see {@link ApiError#unparsed}); the connection closes after it. */
    private DirectHandler.TransportResponse unparsed(DirectHandler.TransportRequest req, DirectHandler.EventType type,
                                                    io.helidon.http.Status status, io.helidon.http.ServerResponseHeaders headers,
                                                    String message) {
        // Helidon's catch-all for a failure while it reads the request line and headers (a method
        // with a character a token may not have, for one) reports an internal error with no request:
        // the bytes were not a request, which is the client's 400 (Helidon logs a stack trace only
        // for an answer of 500)
        boolean unreadable = type == DirectHandler.EventType.INTERNAL_ERROR && req == DirectHandler.TransportRequest.empty();
        ApiError e = ApiError.unparsed(unreadable ? 400 : status.code(), unreadable ? null : reason(message));
        metrics.request("unparsed", e.status);
        DirectHandler.TransportResponse.Builder b = DirectHandler.TransportResponse.builder()
                .status(io.helidon.http.Status.create(e.status))
                .headers(headers)
                .header(HeaderNames.CONTENT_TYPE, "application/json")
                .keepAlive(false)
                .entity(Jsons.bytes(e.body()));
        if (e.retryAfter > 0) {
            b.header(HeaderNames.RETRY_AFTER, Integer.toString(e.retryAfter));
        }
        return b.build();
    }

    /** Helidon's reason for refusing a request, when it is one short printable line; else null. */
    static String reason(String message) {
        if (message == null || message.isBlank() || message.length() > 200 || message.startsWith("Bad request, see server log")) {
            return null;
        }
        for (int i = 0; i < message.length(); i++) {
            char c = message.charAt(i);
            if (c < 0x20 || c > 0x7e) {
                return null;
            }
        }
        String m = message.strip();
        return m.endsWith(".") ? m.substring(0, m.length() - 1) : m;
    }

    @FunctionalInterface
    private interface ApiHandler {
        void handle(ServerRequest req, ServerResponse res) throws IOException;
    }

    /** A handler whose failures become OpenAI-shaped errors. */
    private static Handler api(ApiHandler h) {
        return (req, res) -> {
            try {
                h.handle(req, res);
            } catch (ApiError e) {
                error(res, e);
            } catch (CriaException e) {
                error(res, ApiError.invalid(null, e.getMessage()));
            } catch (CloseConnectionException | java.io.UncheckedIOException e) {
                throw e; // the connection failed or must close: nothing more can be sent on it
            } catch (IOException | RuntimeException e) {
                System.err.println("cria serve: " + req.prologue().method().text() + " " + req.path().path() + " failed: " + e);
                error(res, ApiError.internal("internal error: " + e));
            }
        };
    }

    /** Before every route: CORS, the preflight, the API key, and the request counters. */
    private final class Gate implements Filter {
        @Override
        public void filter(FilterChain chain, RoutingRequest req, RoutingResponse res) {
            String path = req.path().path();
            String endpoint = ROUTES.containsKey(path) ? path : path.startsWith("/v1/models/") ? "/v1/models/{id}" : "other";
            metrics.inFlight.increment();
            try {
                String origin = req.headers().first(HeaderNames.ORIGIN).orElse(null);
                boolean cors = origin != null && allowed(origin);
                if (cors) {
                    res.header("Access-Control-Allow-Origin", options.corsOrigins().contains("*") ? "*" : origin);
                    res.header("Vary", "Origin");
                }
                if (req.prologue().method().text().equals("OPTIONS")) {
                    if (cors) {
                        res.header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                        res.header("Access-Control-Allow-Headers", req.headers().first(HeaderNames.create("Access-Control-Request-Headers"))
                                .orElse("Authorization, Content-Type, X-Api-Key"));
                        res.header("Access-Control-Max-Age", "600");
                    }
                    res.header("Allow", "GET, POST, OPTIONS");
                    res.status(204);
                    res.send();
                    return;
                }
                boolean open = path.equals("/health") || path.equals("/metrics") || path.equals("/");
                if (keyDigest != null && !open && !authorized(req)) {
                    error(res, ApiError.unauthorized());
                    return;
                }
                chain.proceed();
            } finally {
                metrics.inFlight.decrement();
                metrics.request(endpoint, res.status().code());
            }
        }

        private boolean allowed(String origin) {
            for (String o : options.corsOrigins()) {
                if (o.equals("*") || o.equalsIgnoreCase(origin)) {
                    return true;
                }
            }
            return false;
        }

        private boolean authorized(RoutingRequest req) {
            String bearer = req.headers().first(HeaderNames.AUTHORIZATION).orElse("");
            String key = bearer.regionMatches(true, 0, "Bearer ", 0, 7) ? bearer.substring(7).trim()
                    : req.headers().first(HeaderNames.create("X-Api-Key")).orElse(null);
            // digests of equal length compared in constant time: neither the key nor its length leaks
            return key != null && MessageDigest.isEqual(sha256(key), keyDigest);
        }
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
