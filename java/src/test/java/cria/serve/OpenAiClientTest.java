// LangChain4j's OpenAI module, unchanged, against OpenAiServer: chat, streaming, completions, usage, stop, length, the API key.
package cria.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.engine.GenerateOptions;
import cria.engine.Generation;
import cria.engine.Model;
import cria.engine.ModelOptions;
import cria.engine.Session;
import cria.engine.SessionOptions;
import cria.quantize.LlamaFileType;
import cria.sample.SamplerParams;
import cria.synth.Synth;
import cria.synth.SynthShape;
import cria.tokenizer.ChatTemplate;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.AuthenticationException;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.language.LanguageModel;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiLanguageModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.Response;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OpenAiClientTest {
    static final int CTX = 256;
    static final String KEY = "client-test-key";

    @TempDir
    static Path tmp;
    static Model model;
    static OpenAiServer server;
    static String baseUrl;

    /** A random model at a tiny shape with the made-up vocabulary of {@code cria synth}: garbage text, exact numbers. */
    static Path synth(Path dir, int context) {
        Path file = dir.resolve("synth.gguf");
        Synth.write(file, new SynthShape("t", 64, 2, 4, 2, 96, 400, context, 10000f, false, 0f, 1e-5f), LlamaFileType.F32, true, null, 7, 1, null);
        return file;
    }

    @BeforeAll
    static void start() {
        model = Model.load(synth(tmp, CTX), ModelOptions.defaults().withBackend("cpu").withThreads(2));
        server = OpenAiServer.start(model, ServeOptions.defaults().withPort(0).withApiKey(KEY).withContextLength(CTX).withParallel(4));
        baseUrl = "http://127.0.0.1:" + server.port() + "/v1";
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

    static final List<ChatMessage> MESSAGES = List.of(SystemMessage.from("You tell stories."), UserMessage.from("Once upon a time"));
    static final List<ChatTemplate.Message> TEMPLATE = List.of(new ChatTemplate.Message("system", "You tell stories."),
            new ChatTemplate.Message("user", "Once upon a time"));

    /** The server's sampling for a request that sets only temperature, top_p and seed (OpenAI's meaning: no top-k, no min-p). */
    static SamplerParams sampler(double temperature, double topP, long seed) {
        return new SamplerParams((float) temperature, 0, (float) topP, 0f, 1f, 64, 0f, 0f, seed);
    }

    /** The same request on the engine directly. */
    static Generation direct(int[] prompt, GenerateOptions o) {
        try (Session s = model.newSession(SessionOptions.defaults().withContextLength(CTX))) {
            return s.generate(prompt, o, (id, t) -> true);
        }
    }

    static OpenAiChatModel.OpenAiChatModelBuilder chat() {
        return OpenAiChatModel.builder().baseUrl(baseUrl).apiKey(KEY).modelName(server.modelName()).maxRetries(0)
                .timeout(Duration.ofSeconds(60));
    }

    static OpenAiStreamingChatModel.OpenAiStreamingChatModelBuilder streaming() {
        return OpenAiStreamingChatModel.builder().baseUrl(baseUrl).apiKey(KEY).modelName(server.modelName())
                .timeout(Duration.ofSeconds(60));
    }

    record Streamed(List<String> pieces, ChatResponse response) {
        String text() {
            return String.join("", pieces);
        }
    }

    static Streamed stream(OpenAiStreamingChatModel m, List<ChatMessage> messages) throws Exception {
        cria.langchain4j.StreamCollector c = new cria.langchain4j.StreamCollector();
        m.chat(messages, c);
        return new Streamed(c.pieces, c.get());
    }

    @Test
    void chatGivesTheEnginesTextAndCounts() {
        ChatResponse r = chat().temperature(0.0).seed(1).maxTokens(24).build().chat(MESSAGES);
        int[] prompt = model.chatTokens(TEMPLATE);
        Generation g = direct(prompt, new GenerateOptions(24, sampler(0, 1, 1), List.of(), false));
        assertFalse(r.aiMessage().text().isEmpty());
        assertEquals(g.text(), r.aiMessage().text());
        assertEquals(prompt.length, r.tokenUsage().inputTokenCount(), "prompt tokens as the engine counts them");
        assertEquals(g.tokens().length, r.tokenUsage().outputTokenCount(), "generated tokens as the engine counts them");
        assertEquals(prompt.length + g.tokens().length, r.tokenUsage().totalTokenCount());
        assertEquals(g.finishReason() == Generation.FinishReason.LENGTH ? FinishReason.LENGTH : FinishReason.STOP, r.finishReason());
        assertEquals(server.modelName(), r.modelName());
    }

    @Test
    void sampledChatWithASeedIsTheEngines() {
        ChatResponse r = chat().temperature(0.9).topP(0.9).seed(42).maxTokens(20).build().chat(MESSAGES);
        Generation g = direct(model.chatTokens(TEMPLATE), new GenerateOptions(20, sampler(0.9, 0.9, 42), List.of(), false));
        assertEquals(g.text(), r.aiMessage().text());
    }

    @Test
    void streamedPiecesMakeTheNonStreamedText() throws Exception {
        ChatResponse whole = chat().temperature(0.8).seed(9).maxTokens(30).build().chat(MESSAGES);
        Streamed s = stream(streaming().temperature(0.8).seed(9).maxTokens(30).build(), MESSAGES);
        assertTrue(s.pieces().size() > 1, "text in pieces as it is generated: " + s.pieces());
        assertEquals(whole.aiMessage().text(), s.text());
        assertEquals(whole.aiMessage().text(), s.response().aiMessage().text());
        assertEquals(whole.finishReason(), s.response().finishReason());
        assertEquals(whole.tokenUsage().inputTokenCount(), s.response().tokenUsage().inputTokenCount(), "usage of the streamed answer");
        assertEquals(whole.tokenUsage().outputTokenCount(), s.response().tokenUsage().outputTokenCount());
    }

    @Test
    void maxTokensEndsWithLength() throws Exception {
        ChatResponse r = chat().temperature(0.0).maxTokens(3).build().chat(MESSAGES);
        assertEquals(FinishReason.LENGTH, r.finishReason());
        assertEquals(3, r.tokenUsage().outputTokenCount());
        Streamed s = stream(streaming().temperature(0.0).maxTokens(3).build(), MESSAGES);
        assertEquals(FinishReason.LENGTH, s.response().finishReason());
        assertEquals(r.aiMessage().text(), s.text());
    }

    @Test
    void stopEndsTheTextBeforeIt() throws Exception {
        String full = chat().temperature(0.0).maxTokens(40).build().chat(MESSAGES).aiMessage().text();
        assertTrue(full.length() >= 8, "need a longer answer than " + full);
        String stop = full.substring(4, 7);
        ChatResponse r = chat().temperature(0.0).maxTokens(40).stop(List.of(stop)).build().chat(MESSAGES);
        assertEquals(full.substring(0, full.indexOf(stop)), r.aiMessage().text());
        assertEquals(FinishReason.STOP, r.finishReason());
        Streamed s = stream(streaming().temperature(0.0).maxTokens(40).stop(List.of(stop)).build(), MESSAGES);
        assertEquals(r.aiMessage().text(), s.text(), "the stream holds the stop string back too");
        assertEquals(FinishReason.STOP, s.response().finishReason());
    }

    @Test
    void textCompletionIsTheEngines() {
        LanguageModel lm = OpenAiLanguageModel.builder().baseUrl(baseUrl).apiKey(KEY).modelName(server.modelName())
                .temperature(0.0).maxRetries(0).timeout(Duration.ofSeconds(60)).build();
        Response<String> r = lm.generate("Once upon a time");
        int[] prompt = model.tokenizer().encode("Once upon a time", true, true);
        assertEquals(prompt.length, r.tokenUsage().inputTokenCount());
        // the server's default token limit is its own: run the engine to the same count, then compare
        int n = r.tokenUsage().outputTokenCount();
        Generation g = direct(prompt, new GenerateOptions(n, sampler(0, 1, 0), List.of(), false));
        assertEquals(g.text(), r.content());
        assertEquals(n, g.tokens().length);
        assertFalse(r.content().isEmpty());
    }

    @Test
    void theApiKeyIsChecked() throws Exception {
        var e = assertThrows(AuthenticationException.class, () -> chat().apiKey("wrong-key").maxTokens(2).build().chat(MESSAGES));
        assertFalse(e.getMessage().isEmpty());
        CompletableFuture<Throwable> error = new CompletableFuture<>();
        streaming().apiKey("wrong-key").maxTokens(2).build().chat(MESSAGES, new StreamingChatResponseHandler() {
            @Override
            public void onCompleteResponse(ChatResponse r) {
                error.complete(null);
            }

            @Override
            public void onError(Throwable t) {
                error.complete(t);
            }
        });
        Throwable t = error.get(60, TimeUnit.SECONDS);
        assertTrue(t instanceof AuthenticationException, "the streaming client's authentication error: " + t);
        // the right key (used by every other test) works here too
        int out = chat().temperature(0.0).maxTokens(2).build().chat(MESSAGES).tokenUsage().outputTokenCount();
        assertTrue(out >= 1 && out <= 2, "an answer of at most 2 tokens, got " + out);
    }

    /**
     * The openai npm client (and Python's) asks for a stream with {@code Accept: application/json}:
     * the answer must still be server-sent events.
     */
    @Test
    void aStreamAskedForWithAcceptJsonIsStillServerSentEvents() throws Exception {
        String body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Once\"}],\"stream\":true,\"max_tokens\":3}";
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(baseUrl + "/chat/completions"))
                .header("Content-Type", "application/json").header("Accept", "application/json").header("Authorization", "Bearer " + KEY)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"), r.headers().toString());
        assertTrue(r.body().strip().endsWith("data: [DONE]"), r.body());
    }
}
