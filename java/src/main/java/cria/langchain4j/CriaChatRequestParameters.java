// LangChain4j request parameters plus the seed, which LangChain4j's common parameters do not carry.
package cria.langchain4j;

import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.DefaultChatRequestParameters;
import java.util.Objects;

/**
 * {@link ChatRequestParameters} with a sampling seed: the same seed, prompt and settings give the
 * same text. Use it as a request's parameters or as a model's defaults:
 *
 * <pre>{@code
 * ChatRequest request = ChatRequest.builder()
 *         .messages(UserMessage.from("Tell me a story"))
 *         .parameters(CriaChatRequestParameters.builder().temperature(0.7).seed(42L).maxOutputTokens(100).build())
 *         .build();
 * }</pre>
 */
public class CriaChatRequestParameters extends DefaultChatRequestParameters {
    private final Long seed;

    private CriaChatRequestParameters(Builder builder) {
        super(builder);
        this.seed = builder.seed;
    }

    /** The sampling seed, or null to take the model's default. */
    public Long seed() {
        return seed;
    }

    /** These parameters with the ones {@code that} sets taken over (its seed too, when it has one). */
    @Override
    public CriaChatRequestParameters overrideWith(ChatRequestParameters that) {
        return builder().overrideWith(this).overrideWith(that).build();
    }

    /** {@code that}'s parameters with the ones these set taken over. */
    @Override
    public CriaChatRequestParameters defaultedBy(ChatRequestParameters that) {
        return builder().overrideWith(that).overrideWith(this).build();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CriaChatRequestParameters c && super.equals(o) && Objects.equals(seed, c.seed);
    }

    @Override
    public int hashCode() {
        return 31 * super.hashCode() + Objects.hashCode(seed);
    }

    @Override
    public String toString() {
        return "CriaChatRequestParameters{seed=" + seed + ", " + super.toString() + "}";
    }

    /** A builder with nothing set. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link CriaChatRequestParameters}: LangChain4j's common settings and the seed. */
    public static class Builder extends DefaultChatRequestParameters.Builder<Builder> {
        private Long seed;

        /** Takes over every setting {@code parameters} has (null ones leave this builder's). */
        @Override
        public Builder overrideWith(ChatRequestParameters parameters) {
            super.overrideWith(parameters);
            if (parameters instanceof CriaChatRequestParameters c && c.seed != null) {
                seed = c.seed;
            }
            return this;
        }

        /** The sampling seed (null: the model's default). */
        public Builder seed(Long seed) {
            this.seed = seed;
            return this;
        }

        @Override
        public CriaChatRequestParameters build() {
            return new CriaChatRequestParameters(this);
        }
    }
}
