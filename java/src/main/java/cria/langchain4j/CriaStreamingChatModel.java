// A LangChain4j StreamingChatModel that streams text from Cria's batch engine in this JVM: no HTTP in between.
package cria.langchain4j;

import cria.engine.BatchGenerator;
import cria.engine.Generation;
import cria.engine.Model;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.chat.response.StreamingHandle;
import java.util.concurrent.CompletableFuture;

/**
 * LangChain4j's {@link StreamingChatModel} over a loaded Cria {@link Model}: the same requests,
 * settings and responses as {@link CriaChatModel}, with the text handed to
 * {@link StreamingChatResponseHandler#onPartialResponse} piece by piece as it is generated (the
 * pieces put together are the response's text), then
 * {@link StreamingChatResponseHandler#onCompleteResponse} with the usage and finish reason.
 * A request that cannot run, or a handler that throws, ends in
 * {@link StreamingChatResponseHandler#onError} instead.
 *
 * <pre>{@code
 * try (Model model = Model.load(Path.of("model.gguf"), ModelOptions.defaults());
 *      CriaStreamingChatModel chat = CriaStreamingChatModel.builder(model).build()) {
 *     CompletableFuture<ChatResponse> done = new CompletableFuture<>();
 *     chat.chat("Tell me a story", new StreamingChatResponseHandler() {
 *         public void onPartialResponse(String piece) { System.out.print(piece); }
 *         public void onCompleteResponse(ChatResponse r) { done.complete(r); }
 *         public void onError(Throwable e) { done.completeExceptionally(e); }
 *     });
 *     System.out.println("\n" + done.join().tokenUsage());
 * }
 * }</pre>
 *
 * <p>{@code chat} returns at once; the handler is called on the batch engine's thread, so it
 * should be quick (a slow handler slows every request in the batch). The
 * {@link StreamingHandle} of {@link PartialResponseContext} cancels a request: it ends at the
 * next token, its KV pages are freed, and the handler hears nothing more.
 *
 * <p>Give two models the same {@link BatchGenerator} ({@link Builder#generator}) to share one
 * KV pool between streaming and blocking callers.
 */
public final class CriaStreamingChatModel implements StreamingChatModel, AutoCloseable {
    private final ChatEngine engine;

    private CriaStreamingChatModel(ChatEngine engine) {
        this.engine = engine;
    }

    /** A builder over {@code model} (it must carry a vocabulary and stay open while this model is used). */
    public static Builder builder(Model model) {
        return new Builder(model);
    }

    /** Cancels one streaming request. */
    private static final class Handle implements StreamingHandle {
        private volatile boolean cancelled;
        private volatile CompletableFuture<Generation> future;

        @Override
        public void cancel() {
            cancelled = true;
            CompletableFuture<Generation> f = future;
            if (f != null) {
                f.cancel(true);
            }
        }

        @Override
        public boolean isCancelled() {
            return cancelled;
        }
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        ChatEngine.Prepared p;
        try {
            p = engine.prepare(request);
        } catch (RuntimeException e) {
            handler.onError(ChatEngine.translate(e));
            return;
        }
        Handle handle = new Handle();
        PartialResponseContext context = new PartialResponseContext(handle);
        CompletableFuture<Generation> f = engine.submit(p, (token, text) -> {
            if (handle.cancelled) {
                return false;
            }
            if (!text.isEmpty()) {
                handler.onPartialResponse(new PartialResponse(text), context);
            }
            return !handle.cancelled;
        });
        handle.future = f;
        f.whenComplete((g, error) -> {
            if (handle.cancelled) {
                return; // cancelled by the caller: nothing more to say
            }
            if (error != null) {
                handler.onError(ChatEngine.translate(error));
                return;
            }
            try {
                handler.onCompleteResponse(engine.response(p, g));
            } catch (RuntimeException e) {
                handler.onError(e);
            }
        });
    }

    @Override
    public ChatRequestParameters defaultRequestParameters() {
        return engine.defaults;
    }

    /** The model name responses report. */
    public String modelName() {
        return engine.modelName;
    }

    /** Closes the batch engine this model opened (not one given to the builder); requests still running finish first. */
    @Override
    public void close() {
        engine.close();
    }

    /** Settings of a {@link CriaStreamingChatModel}; every one has a default. */
    public static final class Builder extends ChatEngine.Builder<Builder> {
        private Builder(Model model) {
            super(model);
        }

        /**
         * The streaming chat model; opens its batch engine unless one was given.
         *
         * @throws cria.CriaException when the model has no vocabulary or the engine's options do not fit
         */
        public CriaStreamingChatModel build() {
            return new CriaStreamingChatModel(engine());
        }
    }
}
