// What the native chat models share: LangChain4j requests turned into engine prompts and options, engine results into responses.
package cria.langchain4j;

import cria.CriaException;
import cria.engine.BatchGenerator;
import cria.engine.GenerateOptions;
import cria.engine.Generation;
import cria.engine.Model;
import cria.engine.TokenListener;
import cria.sample.SamplerParams;
import cria.tokenizer.ChatTemplate;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.LangChain4jException;
import dev.langchain4j.exception.RateLimitException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.DefaultChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The part {@link CriaChatModel} and {@link CriaStreamingChatModel} have in common: a batch
 * engine (shared or owned), the mapping of a {@link ChatRequest} onto the model's chat template
 * and {@link GenerateOptions}, and the mapping of a {@link Generation} onto a {@link ChatResponse}.
 */
final class ChatEngine implements AutoCloseable {
    private static final AtomicLong IDS = new AtomicLong();

    final Model model;
    final BatchGenerator generator;
    private final boolean ownsGenerator;
    final String modelName;
    private final SamplerParams sampler;
    final ChatRequestParameters defaults;

    /** A request ready for the engine: the rendered prompt's tokens and the generation settings. */
    record Prepared(int[] prompt, GenerateOptions options) {}

    private ChatEngine(Builder<?> b) {
        this.model = Objects.requireNonNull(b.model, "model");
        model.tokenizer(); // a file without a vocabulary cannot chat: say so now, not at the first request
        this.modelName = b.modelName != null ? b.modelName : defaultName(model);
        this.sampler = b.sampler.validate();
        this.defaults = b.defaults != null ? b.defaults : DefaultChatRequestParameters.EMPTY;
        if (b.generator != null) {
            this.generator = b.generator;
            this.ownsGenerator = false;
        } else {
            this.generator = new BatchGenerator(model, new BatchGenerator.Options(b.parallel, b.contextLength,
                    b.batchSize, 0, BatchGenerator.Options.defaults().kvType()));
            this.ownsGenerator = true;
        }
    }

    private static String defaultName(Model model) {
        Path p = model.file().path();
        String f = p.getFileName() == null ? p.toString() : p.getFileName().toString();
        return f.endsWith(".gguf") ? f.substring(0, f.length() - 5) : f;
    }

    /**
     * The prompt and settings of a request whose parameters already carry the model's defaults.
     *
     * @throws UnsupportedFeatureException for tools, JSON response formats and non-text content
     * @throws InvalidRequestException     for a setting out of range
     */
    Prepared prepare(ChatRequest request) {
        ChatRequestParameters p = request.parameters();
        if (p.toolSpecifications() != null && !p.toolSpecifications().isEmpty()) {
            throw new UnsupportedFeatureException("tools are not supported by Cria's chat models; send the request without tool specifications");
        }
        if (p.responseFormat() != null && p.responseFormat().type() == ResponseFormatType.JSON) {
            throw new UnsupportedFeatureException("JSON response formats are not supported by Cria's chat models; ask for JSON in the prompt instead");
        }
        List<ChatTemplate.Message> messages = new ArrayList<>();
        for (ChatMessage m : request.messages()) {
            messages.add(message(m));
        }
        SamplerParams s = sampler;
        if (p.temperature() != null) {
            s = s.withTemperature(p.temperature().floatValue());
        }
        if (p.topP() != null) {
            s = s.withTopP(p.topP().floatValue());
        }
        if (p.topK() != null) {
            s = s.withTopK(p.topK());
        }
        if (p.frequencyPenalty() != null) {
            s = s.withFrequencyPenalty(p.frequencyPenalty().floatValue());
        }
        if (p.presencePenalty() != null) {
            s = s.withPresencePenalty(p.presencePenalty().floatValue());
        }
        if (p instanceof CriaChatRequestParameters c && c.seed() != null) {
            s = s.withSeed(c.seed());
        }
        Integer max = p.maxOutputTokens();
        if (max != null && max < 1) {
            throw new InvalidRequestException("maxOutputTokens must be at least 1, got " + max);
        }
        GenerateOptions options;
        try {
            // no limit given: until an end-of-turn token or the end of the context
            options = new GenerateOptions(max != null ? max : Integer.MAX_VALUE, s, p.stopSequences(), false);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage(), e);
        }
        int[] prompt;
        try {
            prompt = model.chatTokens(messages);
        } catch (CriaException e) {
            throw new InvalidRequestException(e.getMessage(), e);
        }
        return new Prepared(prompt, options);
    }

    private static ChatTemplate.Message message(ChatMessage m) {
        return switch (m) {
            case SystemMessage s -> new ChatTemplate.Message("system", s.text());
            case UserMessage u -> {
                if (!u.hasSingleText()) {
                    throw new UnsupportedFeatureException("Cria's chat models read text only: a user message has "
                            + u.contents().size() + " parts or a non-text part; send one text part");
                }
                yield new ChatTemplate.Message("user", u.singleText());
            }
            case AiMessage a -> {
                if (a.hasToolExecutionRequests()) {
                    throw new UnsupportedFeatureException("tool calls are not supported by Cria's chat models: an AI message carries tool execution requests");
                }
                yield new ChatTemplate.Message("assistant", a.text() == null ? "" : a.text());
            }
            case null -> throw new InvalidRequestException("a chat message is null");
            default -> throw new UnsupportedFeatureException(m.type() + " messages are not supported by Cria's chat models; send system, user and AI messages");
        };
    }

    /** Queues a prepared request on the batch engine. */
    CompletableFuture<Generation> submit(Prepared p, TokenListener listener) {
        return generator.submit(p.prompt(), p.options(), listener);
    }

    /** The response for a finished generation: text, token usage (prompt as rendered, tokens generated) and finish reason. */
    ChatResponse response(Prepared p, Generation g) {
        int out = g.tokens().length;
        return ChatResponse.builder()
                .aiMessage(AiMessage.from(g.text()))
                .id("cria-" + IDS.incrementAndGet())
                .modelName(modelName)
                .tokenUsage(new TokenUsage(p.prompt().length, out, p.prompt().length + out))
                .finishReason(finishReason(g.finishReason()))
                .build();
    }

    static FinishReason finishReason(Generation.FinishReason r) {
        return switch (r) {
            case STOP -> FinishReason.STOP;
            case LENGTH -> FinishReason.LENGTH;
            case CANCELLED -> FinishReason.OTHER;
        };
    }

    /** What a failed request throws or reports: LangChain4j's exception types where one fits. */
    static RuntimeException translate(Throwable t) {
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        if (t instanceof LangChain4jException e) {
            return e;
        }
        if (t instanceof BatchGenerator.QueueFullException) {
            // the engine's bounded queue is full: worth retrying later
            return new RateLimitException(t.getMessage(), t);
        }
        if (t instanceof CriaException || t instanceof IllegalArgumentException) {
            // the engine refused the request: empty prompt, a prompt longer than the context, ...
            return new InvalidRequestException(t.getMessage(), t);
        }
        return new LangChain4jException(t.getMessage() == null ? t.toString() : t.getMessage(), t);
    }

    /** Closes the batch engine when this model opened it (a shared one stays open). */
    @Override
    public void close() {
        if (ownsGenerator) {
            generator.close();
        }
    }

    /**
     * Settings both builders share.
     *
     * @param <B> the concrete builder
     */
    abstract static class Builder<B extends Builder<B>> {
        Model model;
        BatchGenerator generator;
        int parallel = 4;
        int contextLength = 2048;
        int batchSize = 512;
        String modelName;
        SamplerParams sampler = SamplerParams.defaults();
        ChatRequestParameters defaults;

        Builder(Model model) {
            this.model = model;
        }

        @SuppressWarnings("unchecked")
        private B self() {
            return (B) this;
        }

        /**
         * Runs requests on this batch engine (shared with other models or callers; it is not
         * closed by {@code close()}). Without it, the model opens its own with
         * {@link #parallel}, {@link #contextLength} and {@link #batchSize}.
         */
        public B generator(BatchGenerator generator) {
            this.generator = generator;
            return self();
        }

        /** Requests generated at once by the model's own batch engine (default 4). */
        public B parallel(int n) {
            this.parallel = n;
            return self();
        }

        /** Positions (prompt plus answer) one request may use in the model's own batch engine (default 2048). */
        public B contextLength(int n) {
            this.contextLength = n;
            return self();
        }

        /** Tokens per forward step in the model's own batch engine (default 512). */
        public B batchSize(int n) {
            this.batchSize = n;
            return self();
        }

        /** The model name responses report (default: the file name without {@code .gguf}). */
        public B modelName(String name) {
            this.modelName = name;
            return self();
        }

        /**
         * Sampling for what a request leaves unset (default {@link SamplerParams#defaults()}:
         * temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, seed 0). Request parameters override
         * temperature, top-p, top-k, the frequency and presence penalties and, through
         * {@link CriaChatRequestParameters}, the seed.
         */
        public B sampler(SamplerParams sampler) {
            this.sampler = Objects.requireNonNull(sampler, "sampler");
            return self();
        }

        /** Parameters every request starts from (a request's own parameters override them). */
        public B defaultRequestParameters(ChatRequestParameters parameters) {
            this.defaults = parameters;
            return self();
        }

        ChatEngine engine() {
            return new ChatEngine(this);
        }
    }
}
