/**
 * The public Java API: {@link cria.engine.Model} (a GGUF model loaded onto a backend),
 * {@link cria.engine.Session} (one sequence with its KV cache), {@link cria.engine.BatchGenerator}
 * (many sequences decoded together) and their options ({@link cria.engine.ModelOptions#withLora}
 * applies LoRA adapters, {@link cria.engine.LoraSpec}). Both run the same generation loop (the
 * package-private {@code Scheduler}): a session is that loop with one sequence, so they check
 * inputs, stop at the end of the context and sample the same way.
 *
 * <pre>{@code
 * try (Model model = Model.load(Path.of("model.gguf"), ModelOptions.defaults());
 *      Session session = model.newSession(SessionOptions.defaults())) {
 *     Generation g = session.generate("Once upon a time", GenerateOptions.defaults(),
 *             (token, text) -> { System.out.print(text); return true; });
 * }
 * }</pre>
 *
 * <p>The JVM needs {@code --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED};
 * without them loading a model throws a {@link cria.CriaException} naming the missing option.
 *
 * <p>Threads: a {@code Model} may be shared (its sessions' forward steps take turns on the
 * backend); a {@code Session} belongs to one thread at a time; a {@code BatchGenerator} takes
 * submissions from any thread and calls listeners on its own scheduler thread. The option records
 * and {@link cria.engine.Generation} are immutable values.
 *
 * <p>Memory: {@code Model}, {@code Session} and {@code BatchGenerator} hold off-heap or device
 * memory and are {@link java.lang.AutoCloseable}: close sessions and batch generators before
 * their model.
 */
package cria.engine;
