/**
 * LangChain4j's chat model interfaces over Cria's Java API, for programs that want LangChain4j's
 * types (AI services, memory, RAG) without an HTTP server in between:
 * {@link cria.langchain4j.CriaChatModel} ({@code ChatModel}),
 * {@link cria.langchain4j.CriaStreamingChatModel} ({@code StreamingChatModel}) and
 * {@link cria.langchain4j.CriaChatRequestParameters} (LangChain4j's parameters plus a seed).
 * Both models render messages with the model's chat template and generate on a
 * {@link cria.engine.BatchGenerator}, which many callers share.
 *
 * <pre>{@code
 * try (Model model = Model.load(Path.of("model.gguf"), ModelOptions.defaults());
 *      BatchGenerator engine = new BatchGenerator(model, BatchGenerator.Options.defaults());
 *      CriaChatModel chat = CriaChatModel.builder(model).generator(engine).build();
 *      CriaStreamingChatModel stream = CriaStreamingChatModel.builder(model).generator(engine).build()) {
 *     System.out.println(chat.chat("Hello!"));
 * }
 * }</pre>
 *
 * <p>LangChain4j is not shipped with Cria (the dependency is {@code provided}): a program using
 * this package adds {@code dev.langchain4j:langchain4j-core} (1.19.0) to its own build.
 */
package cria.langchain4j;
