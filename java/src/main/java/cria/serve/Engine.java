// The loaded side of the server: the model, its batch engine, the embedder, and every generation in flight.
package cria.serve;

import cria.engine.BatchGenerator;
import cria.engine.Embedder;
import cria.engine.GenerateOptions;
import cria.engine.Generation;
import cria.engine.Model;
import cria.engine.TokenListener;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/** What the endpoints need once the model is there; made by {@link OpenAiServer#attach}. */
final class Engine implements AutoCloseable {
    final Model model;
    final BatchGenerator generator;
    /** Positions one request may hold. */
    final int ctx;
    /** The largest max_tokens a request may ask for. */
    final int maxTokens;
    final String alias;
    /** Seconds since the epoch when the model was attached (for /v1/models). */
    final long created = System.currentTimeMillis() / 1000;
    private final Set<CompletableFuture<Generation>> active = ConcurrentHashMap.newKeySet();
    private Embedder embedder;
    private boolean closed;

    Engine(Model model, ServeOptions o) {
        this.model = model;
        int trained = model.config().trainedContextLength();
        this.ctx = o.contextLength() > 0 ? Math.min(o.contextLength(), trained) : Math.min(trained, 4096);
        this.maxTokens = o.maxTokensLimit() > 0 ? Math.min(o.maxTokensLimit(), ctx) : ctx;
        Path file = model.file().path().getFileName();
        this.alias = o.alias() != null ? o.alias() : file == null ? "model" : file.toString();
        var kv = BatchGenerator.Options.defaults().kvType();
        for (var t : kv.getDeclaringClass().getEnumConstants()) {
            if (t.name().equals(o.kvType())) {
                kv = t;
            }
        }
        this.generator = new BatchGenerator(model, new BatchGenerator.Options(o.parallel(), ctx, o.batchSize(), 0, kv, o.maxQueue()));
    }

    /** Submits one generation and keeps its future until it completes (so that close can cancel it). */
    CompletableFuture<Generation> submit(int[] prompt, GenerateOptions options, TokenListener listener) {
        CompletableFuture<Generation> f = generator.submit(prompt, options, listener);
        active.add(f);
        f.whenComplete((g, t) -> active.remove(f));
        return f;
    }

    /** Generations submitted and not finished. */
    int active() {
        return active.size();
    }

    /** Cancels every generation in flight: the engine frees their pages before its next step. */
    int cancelAll() {
        int n = 0;
        for (CompletableFuture<Generation> f : active) {
            if (f.cancel(true)) {
                n++;
            }
        }
        return n;
    }

    /** The embedder, made on first use (its own cache of {@link #ctx} positions). */
    synchronized Embedder embedder() {
        if (closed) {
            throw ApiError.unavailable("shutting_down", "the server is shutting down");
        }
        if (embedder == null) {
            embedder = new Embedder(model, ctx);
        }
        return embedder;
    }

    /** Cancels what still runs, stops the engine and frees the caches (not the model: it is the caller's). */
    @Override
    public void close() {
        cancelAll();
        try {
            generator.close();
        } finally {
            synchronized (this) {
                closed = true;
                if (embedder != null) {
                    embedder.close();
                }
            }
        }
    }
}
