// The native LangChain4j chat models give the engine's own text, usage and finish reasons, stream the same text, and report errors.
package cria.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.SharedData;
import cria.engine.BatchGenerator;
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
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.RateLimitException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.FinishReason;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CriaChatModelTest {
    private static final int CTX = 256;

    @TempDir
    static Path tmp;
    static Model model;
    static BatchGenerator engine;
    static CriaChatModel chat;
    static CriaStreamingChatModel streaming;

    @BeforeAll
    static void open() {
        // a random model at a tiny shape with the made-up SentencePiece vocabulary `cria synth` writes
        Path file = tmp.resolve("synth.gguf");
        Synth.write(file, new SynthShape("t", 64, 2, 4, 2, 96, 400, CTX, 10000f, false, 0f, 1e-5f), LlamaFileType.F32, true, null, 7, 1, null);
        model = Model.load(file, ModelOptions.defaults().withBackend("cpu").withThreads(2));
        engine = new BatchGenerator(model, new BatchGenerator.Options(4, CTX, 64, 0, BatchGenerator.Options.defaults().kvType()));
        chat = CriaChatModel.builder(model).generator(engine).build();
        streaming = CriaStreamingChatModel.builder(model).generator(engine).build();
    }

    @AfterAll
    static void close() {
        chat.close();
        streaming.close();
        engine.close();
        model.close();
    }

    static List<ChatMessage> conversation(String question) {
        return List.of(SystemMessage.from("You answer briefly."), UserMessage.from(question));
    }

    static List<ChatTemplate.Message> asTemplate(String question) {
        return List.of(new ChatTemplate.Message("system", "You answer briefly."), new ChatTemplate.Message("user", question));
    }

    /** The same request run on the engine directly: a session over the prompt the chat template renders. */
    static Generation direct(Model m, List<ChatTemplate.Message> messages, GenerateOptions o) {
        try (Session s = m.newSession(SessionOptions.defaults().withContextLength(CTX))) {
            return s.generate(m.chatTokens(messages), o, (id, t) -> true);
        }
    }

    static ChatRequest request(String question, ChatRequestParameters p) {
        return ChatRequest.builder().messages(conversation(question)).parameters(p).build();
    }


    @Test
    void chatGivesTheEnginesTextUsageAndFinishReason() {
        SamplerParams sp = SamplerParams.defaults().withTemperature(0.9f).withTopP(0.9f).withTopK(20).withSeed(5);
        ChatResponse r = chat.chat(request("What is the sea?", CriaChatRequestParameters.builder()
                .temperature(0.9).topP(0.9).topK(20).seed(5L).maxOutputTokens(24).build()));
        Generation g = direct(model, asTemplate("What is the sea?"), new GenerateOptions(24, sp, List.of(), false));
        assertEquals(g.text(), r.aiMessage().text());
        assertFalse(r.aiMessage().text().isEmpty(), "the random model writes something");
        int prompt = model.chatTokens(asTemplate("What is the sea?")).length;
        assertEquals(prompt, r.tokenUsage().inputTokenCount());
        assertEquals(g.tokens().length, r.tokenUsage().outputTokenCount());
        assertEquals(prompt + g.tokens().length, r.tokenUsage().totalTokenCount());
        assertEquals(ChatEngine.finishReason(g.finishReason()), r.finishReason());
        assertEquals("synth", r.modelName());
    }

    @Test
    void maxOutputTokensEndsWithLength() {
        ChatResponse r = chat.chat(request("Count.", CriaChatRequestParameters.builder().temperature(0.0).maxOutputTokens(5).build()));
        Generation g = direct(model, asTemplate("Count."), new GenerateOptions(5, SamplerParams.defaults().withTemperature(0), List.of(), false));
        assertEquals(g.text(), r.aiMessage().text());
        assertEquals(g.finishReason() == Generation.FinishReason.LENGTH ? FinishReason.LENGTH : FinishReason.STOP, r.finishReason());
        if (r.finishReason() == FinishReason.LENGTH) {
            assertEquals(5, r.tokenUsage().outputTokenCount());
        }
    }

    @Test
    void theSeedDecidesTheDraws() {
        ChatRequestParameters a = CriaChatRequestParameters.builder().temperature(1.5).topK(0).seed(1L).maxOutputTokens(16).build();
        ChatRequestParameters b = CriaChatRequestParameters.builder().temperature(1.5).topK(0).seed(2L).maxOutputTokens(16).build();
        String first = chat.chat(request("Hello", a)).aiMessage().text();
        assertEquals(first, chat.chat(request("Hello", a)).aiMessage().text(), "same seed, same text");
        assertNotEquals(first, chat.chat(request("Hello", b)).aiMessage().text(), "another seed draws otherwise");
    }

    @Test
    void defaultParametersApplyAndRequestsOverrideThem() {
        try (CriaChatModel m = CriaChatModel.builder(model).generator(engine).modelName("tiny")
                .defaultRequestParameters(CriaChatRequestParameters.builder().temperature(0.0).maxOutputTokens(3).build()).build()) {
            ChatResponse r = m.chat(ChatRequest.builder().messages(conversation("Hi")).build());
            Generation g = direct(model, asTemplate("Hi"), new GenerateOptions(3, SamplerParams.defaults().withTemperature(0), List.of(), false));
            assertEquals(g.text(), r.aiMessage().text());
            assertEquals("tiny", r.modelName());
            ChatResponse longer = m.chat(request("Hi", ChatRequestParameters.builder().maxOutputTokens(8).build()));
            Generation g8 = direct(model, asTemplate("Hi"), new GenerateOptions(8, SamplerParams.defaults().withTemperature(0), List.of(), false));
            assertEquals(g8.text(), longer.aiMessage().text(), "the request's max tokens, the default's temperature 0");
        }
    }

    @Test
    void stopSequencesEndTheTextBeforeThem() {
        ChatRequestParameters greedy = CriaChatRequestParameters.builder().temperature(0.0).maxOutputTokens(40).build();
        String full = chat.chat(request("Tell a story", greedy)).aiMessage().text();
        assertTrue(full.length() >= 8, "need a longer text than: " + full);
        String stop = full.substring(4, 7);
        ChatResponse r = chat.chat(request("Tell a story", CriaChatRequestParameters.builder().temperature(0.0).maxOutputTokens(40)
                .stopSequences(stop).build()));
        assertEquals(full.substring(0, full.indexOf(stop)), r.aiMessage().text());
        assertEquals(FinishReason.STOP, r.finishReason());
        StreamCollector c = new StreamCollector();
        streaming.chat(request("Tell a story", CriaChatRequestParameters.builder().temperature(0.0).maxOutputTokens(40)
                .stopSequences(stop).build()), c);
        assertEquals(r.aiMessage().text(), String.join("", assertDone(c).pieces), "the stream holds back the stop sequence too");
    }

    static StreamCollector assertDone(StreamCollector c) {
        try {
            c.get();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        return c;
    }

    @Test
    void streamedPiecesMakeTheSameTextAsChat() throws Exception {
        ChatRequestParameters p = CriaChatRequestParameters.builder().temperature(0.8).seed(11L).maxOutputTokens(30).build();
        ChatResponse whole = chat.chat(request("Stream this", p));
        StreamCollector c = new StreamCollector();
        streaming.chat(request("Stream this", p), c);
        ChatResponse streamed = c.get();
        assertTrue(c.pieces.size() > 1, "pieces as they come, not one at the end: " + c.pieces);
        assertEquals(whole.aiMessage().text(), String.join("", c.pieces));
        assertEquals(whole.aiMessage().text(), streamed.aiMessage().text());
        assertEquals(whole.tokenUsage(), streamed.tokenUsage());
        assertEquals(whole.finishReason(), streamed.finishReason());
    }

    @Test
    void manyCallersShareTheEngineAndEachGetsItsOwnText() throws Exception {
        List<CompletableFuture<String>> answers = new ArrayList<>();
        List<String> alone = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            ChatRequest r = request("Question " + i, CriaChatRequestParameters.builder().temperature(0.7).seed((long) i).maxOutputTokens(10 + i).build());
            alone.add(direct(model, asTemplate("Question " + i), new GenerateOptions(10 + i,
                    SamplerParams.defaults().withTemperature(0.7f).withSeed(i), List.of(), false)).text());
            answers.add(CompletableFuture.supplyAsync(() -> chat.chat(r).aiMessage().text()));
        }
        for (int i = 0; i < answers.size(); i++) {
            assertEquals(alone.get(i), answers.get(i).get(60, TimeUnit.SECONDS), "caller " + i);
        }
    }

    @Test
    void aCancelledStreamEndsAndSaysNothingMore() throws Exception {
        AtomicInteger after = new AtomicInteger();
        CompletableFuture<Object> ended = new CompletableFuture<>();
        streaming.chat(request("Go on and on", CriaChatRequestParameters.builder().temperature(0.0).maxOutputTokens(200).build()),
                new StreamingChatResponseHandler() {
                    volatile boolean cancelled;

                    @Override
                    public void onPartialResponse(PartialResponse piece, PartialResponseContext context) {
                        if (cancelled) {
                            after.incrementAndGet();
                        }
                        cancelled = true;
                        context.streamingHandle().cancel();
                        assertTrue(context.streamingHandle().isCancelled());
                    }

                    @Override
                    public void onCompleteResponse(ChatResponse r) {
                        ended.complete(r);
                    }

                    @Override
                    public void onError(Throwable e) {
                        ended.complete(e);
                    }
                });
        // the engine still answers, and the cancelled request said nothing after its cancel
        ChatResponse next = chat.chat(request("Next", CriaChatRequestParameters.builder().temperature(0.0).maxOutputTokens(4).build()));
        assertNotNull(next.aiMessage().text());
        assertEquals(0, after.get(), "pieces after cancel");
        assertFalse(ended.isDone(), "no completion or error after cancel: " + ended.getNow(null));
    }

    @Test
    void unsupportedAndInvalidRequestsAreRefusedWithLangChain4jsExceptions() throws Exception {
        ToolSpecification tool = ToolSpecification.builder().name("weather").description("the weather").build();
        var e1 = assertThrows(UnsupportedFeatureException.class,
                () -> chat.chat(request("Weather?", ChatRequestParameters.builder().toolSpecifications(tool).build())));
        assertTrue(e1.getMessage().contains("tools"), e1.getMessage());
        var e2 = assertThrows(UnsupportedFeatureException.class, () -> chat.chat(ChatRequest.builder()
                .messages(UserMessage.from("x"), ToolExecutionResultMessage.from("id", "weather", "sunny")).build()));
        assertTrue(e2.getMessage().contains("TOOL_EXECUTION_RESULT"), e2.getMessage());
        // a prompt longer than the context: the engine's message, as LangChain4j's invalid request
        String huge = "word ".repeat(CTX * 2);
        var e3 = assertThrows(InvalidRequestException.class, () -> chat.chat(request(huge, ChatRequestParameters.builder().build())));
        assertTrue(e3.getMessage().contains(String.valueOf(CTX)), "names the context: " + e3.getMessage());
        var e4 = assertThrows(InvalidRequestException.class,
                () -> chat.chat(request("x", CriaChatRequestParameters.builder().topP(1.5).build())));
        assertTrue(e4.getMessage().contains("top-p"), e4.getMessage());
        // streaming: the same errors reach onError, never the caller
        StreamCollector c = new StreamCollector();
        streaming.chat(request(huge, ChatRequestParameters.builder().build()), c);
        Exception s1 = assertThrows(Exception.class, c::get);
        assertInstanceOf(InvalidRequestException.class, s1.getCause());
        StreamCollector c2 = new StreamCollector();
        streaming.chat(request("Weather?", ChatRequestParameters.builder().toolSpecifications(tool).build()), c2);
        assertInstanceOf(UnsupportedFeatureException.class, assertThrows(Exception.class, c2::get).getCause());
        // an assistant turn in the history is fine
        ChatResponse ok = chat.chat(ChatRequest.builder().messages(UserMessage.from("a"), AiMessage.from("b"), UserMessage.from("c"))
                .parameters(ChatRequestParameters.builder().maxOutputTokens(2).build()).build());
        assertTrue(ok.tokenUsage().inputTokenCount() > 3);
    }

    @Test
    void aHandlerThatThrowsEndsInOnError() throws Exception {
        CompletableFuture<Throwable> error = new CompletableFuture<>();
        streaming.chat(request("Boom", ChatRequestParameters.builder().maxOutputTokens(20).build()), new StreamingChatResponseHandler() {
            @Override
            public void onPartialResponse(String piece) {
                throw new IllegalStateException("handler broke");
            }

            @Override
            public void onCompleteResponse(ChatResponse r) {
                error.complete(null);
            }

            @Override
            public void onError(Throwable e) {
                error.complete(e);
            }
        });
        Throwable t = error.get(60, TimeUnit.SECONDS);
        assertTrue(t != null && t.getMessage().contains("handler broke"), "onError with the handler's failure: " + t);
        // the engine goes on
        assertFalse(chat.chat(request("After", CriaChatRequestParameters.builder().temperature(0.0).maxOutputTokens(3).build()))
                .aiMessage().text() == null);
    }

    @Test
    void anOwnEngineIsOpenedAndClosedWithTheModel() {
        CriaChatModel own = CriaChatModel.builder(model).parallel(2).contextLength(64).batchSize(32).build();
        ChatResponse r = own.chat(request("Own", CriaChatRequestParameters.builder().temperature(0.0).build()));
        // no max tokens: until the end of the turn or of the 64-position context (the last token needs no position)
        assertTrue(r.finishReason() == FinishReason.STOP || r.tokenUsage().totalTokenCount() == 65, r.toString());
        own.close();
        assertThrows(RuntimeException.class, () -> own.chat("after close"));
    }

    @Test
    void aFullQueueIsARateLimit() throws Exception {
        try (BatchGenerator small = new BatchGenerator(model, new BatchGenerator.Options(1, CTX, 64, 0,
                BatchGenerator.Options.defaults().kvType(), 1));
             CriaStreamingChatModel s = CriaStreamingChatModel.builder(model).generator(small).build();
             CriaChatModel c = CriaChatModel.builder(model).generator(small).build()) {
            CountDownLatch inside = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            StreamCollector first = new StreamCollector() {
                @Override
                public void onPartialResponse(String piece) {
                    inside.countDown();
                    try {
                        release.await(); // holds the engine's one slot (and its thread) until the queue is tried
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            };
            ChatRequestParameters p = CriaChatRequestParameters.builder().temperature(0.0).maxOutputTokens(4).build();
            s.chat(request("one", p), first);
            assertTrue(inside.await(60, TimeUnit.SECONDS));
            StreamCollector second = new StreamCollector();
            s.chat(request("two", p), second); // waits in the queue of one
            StreamCollector third = new StreamCollector();
            s.chat(request("three", p), third);
            Exception e = assertThrows(Exception.class, third::get);
            assertInstanceOf(RateLimitException.class, e.getCause());
            assertTrue(e.getCause().getMessage().contains("try again later"), e.getCause().getMessage());
            assertThrows(RateLimitException.class, () -> c.chat(request("four", p)));
            release.countDown();
            first.get();
            assertTrue(second.get().tokenUsage().outputTokenCount() >= 1, "the queued request ran once the slot was free");
        }
    }

    @Test
    void storiesGreedyChatEqualsTheEngine() throws Exception {
        Path file = SharedData.require().resolve("models/stories260K.gguf");
        try (Model m = Model.load(file, ModelOptions.defaults().withBackend("cpu").withThreads(2));
             CriaChatModel c = CriaChatModel.builder(m).parallel(2).contextLength(CTX).batchSize(64).build();
             CriaStreamingChatModel s = CriaStreamingChatModel.builder(m).parallel(2).contextLength(CTX).batchSize(64).build()) {
            ChatRequestParameters p = CriaChatRequestParameters.builder().temperature(0.0).maxOutputTokens(40).build();
            ChatResponse r = c.chat(ChatRequest.builder().messages(UserMessage.from("Once upon a time")).parameters(p).build());
            Generation g = direct(m, List.of(new ChatTemplate.Message("user", "Once upon a time")),
                    new GenerateOptions(40, SamplerParams.defaults().withTemperature(0), List.of(), false));
            assertEquals(g.text(), r.aiMessage().text());
            assertTrue(r.aiMessage().text().chars().filter(Character::isLetter).count() > 10, "a trained model writes words: " + r.aiMessage().text());
            StreamCollector col = new StreamCollector();
            s.chat(ChatRequest.builder().messages(UserMessage.from("Once upon a time")).parameters(p).build(), col);
            assertEquals(g.text(), col.get().aiMessage().text());
            assertEquals(g.text(), String.join("", col.pieces));
        }
    }
}
