// A LangChain4j streaming handler that keeps the pieces and how the response ended (CriaChatModelTest, OpenAiClientTest).
package cria.langchain4j;

import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/** Collects a streaming response: its pieces and how it ended. */
public class StreamCollector implements StreamingChatResponseHandler {
    public final List<String> pieces = new CopyOnWriteArrayList<>();
    public final CompletableFuture<ChatResponse> done = new CompletableFuture<>();

    @Override
    public void onPartialResponse(String piece) {
        pieces.add(piece);
    }

    @Override
    public void onCompleteResponse(ChatResponse r) {
        done.complete(r);
    }

    @Override
    public void onError(Throwable e) {
        done.completeExceptionally(e);
    }

    /** The response, waiting up to 60 s. */
    public ChatResponse get() throws Exception {
        return done.get(60, TimeUnit.SECONDS);
    }
}
