// `cria serve`: an OpenAI-compatible HTTP server over one model, until SIGTERM or Ctrl-C.
package cria.cli;

import cria.CriaException;
import cria.engine.Model;
import cria.serve.OpenAiServer;
import cria.serve.ServeOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Runs {@link OpenAiServer}: listens first (/health says "loading"), loads the model, then prints the URL. */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"An OpenAI-compatible HTTP server: clients share one model (continuous batching).",
            "  POST /v1/chat/completions, /v1/completions  (\"stream\": true for SSE)",
            "  POST /v1/embeddings   (mean of the final hidden states, L2-normalized)",
            "  POST /tokenize, /detokenize;  GET /v1/models, /health (503 while loading),",
            "  GET /metrics (Prometheus text), / (a chat page)",
            "Prints one line with the URL on stdout once the model is loaded. SIGTERM or",
            "Ctrl-C: stop accepting, let running requests finish (--shutdown-grace), exit 0.",
            "Example: cria serve -m model.gguf --parallel 8 --api-key-file key.txt",
            "  curl localhost:8080/v1/chat/completions -H 'Authorization: Bearer KEY' -d",
            "    '{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 64}'"})
final class ServeCommand extends Verb {
    @Mixin
    ModelArgs modelArgs;

    @Option(names = "--host", defaultValue = "127.0.0.1", paramLabel = "ADDR",
            description = "address to listen on; 0.0.0.0 for every interface (then set --api-key) (default: ${DEFAULT-VALUE})")
    String host;

    @Option(names = "--port", defaultValue = "8080", paramLabel = "N", description = "TCP port; 0 = any free one (default: ${DEFAULT-VALUE})")
    int port;

    @Option(names = {"-np", "--parallel"}, defaultValue = "4", paramLabel = "N",
            description = "sequences decoded together; more wait in the queue (default: ${DEFAULT-VALUE})")
    int parallel;

    @Option(names = "--api-key", paramLabel = "KEY",
            description = "ask clients for this key (Authorization: Bearer KEY or X-Api-Key: KEY); /health, /metrics and / stay open")
    String apiKey;

    @Option(names = "--api-key-file", paramLabel = "FILE", description = "read the key from the first line of FILE (keeps it out of ps)")
    Path apiKeyFile;

    @Option(names = "--alias", paramLabel = "NAME", description = "the model name clients see (default: the file name)")
    String alias;

    @Option(names = "--cors-origin", paramLabel = "ORIGIN",
            description = "let browser pages from ORIGIN call the API (e.g. http://localhost:3000; * for any); repeatable; default: none")
    List<String> corsOrigins = new ArrayList<>();

    @Option(names = "--max-queue", defaultValue = "64", paramLabel = "N",
            description = "requests that may wait for a sequence; more get 429 with Retry-After; 0 = no limit (default: ${DEFAULT-VALUE})")
    int maxQueue;

    @Option(names = "--max-body", defaultValue = "4194304", paramLabel = "BYTES",
            description = "largest request body; larger ones get 413 (default: ${DEFAULT-VALUE})")
    long maxBody;

    @Option(names = "--max-tokens-limit", defaultValue = "0", paramLabel = "N",
            description = "largest max_tokens a request may ask for; 0 = the context length (default: ${DEFAULT-VALUE})")
    int maxTokensLimit;

    @Option(names = "--shutdown-grace", defaultValue = "10", paramLabel = "SECONDS",
            description = "on SIGTERM, how long running requests may go on before they are cancelled (default: ${DEFAULT-VALUE})")
    double shutdownGrace;

    @Override
    public Integer call() {
        if (apiKey != null && apiKeyFile != null) {
            throw new CriaException("give the key with --api-key or --api-key-file, not both");
        }
        if (!(shutdownGrace >= 0 && shutdownGrace <= 3600)) {
            throw new CriaException("--shutdown-grace must be 0 to 3600 seconds, got " + shutdownGrace);
        }
        modelArgs.modelOptions(); // checks --threads and --lora before anything starts
        modelArgs.sessionOptions(); // checks --ctx and --batch-size
        if (!Files.isRegularFile(modelArgs.model)) { // before listening: a typo costs no "listening" line
            throw new CriaException(modelArgs.model + ": no such file");
        }
        String key = apiKeyFile != null ? readKey(apiKeyFile) : apiKey;
        ServeOptions o = ServeOptions.defaults().withHost(host).withPort(port).withParallel(parallel)
                .withContextLength(modelArgs.ctx).withBatchSize(modelArgs.batchSize).withApiKey(key).withAlias(alias)
                .withCorsOrigins(corsOrigins).withMaxQueue(maxQueue).withMaxBodyBytes(maxBody).withMaxTokensLimit(maxTokensLimit)
                .withShutdownGraceMillis(Math.round(shutdownGrace * 1000)).withKvType(modelArgs.kvType.name());
        if (key == null && !isLoopback(host)) {
            err().println("cria: warning: listening on " + host + " without --api-key: anyone who reaches it can use the model");
        }
        CountDownLatch stop = new CountDownLatch(1);
        Object term = onSignal("TERM", stop);
        Object intr = onSignal("INT", stop);
        try (OpenAiServer server = OpenAiServer.listen(o)) {
            err().println("cria: listening on " + server.url() + "; loading " + modelArgs.model + " (GET /health answers 503 until loaded)");
            try (Model model = Model.load(modelArgs.model, modelArgs.modelOptions(), err()::println)) {
                try {
                    model.warmUp(); // weights packed and the step compiled before /health says ok
                    server.attach(model);
                    out().println(String.format(Locale.ROOT, "cria serve: %s (model %s, %d parallel, %s)", server.url(),
                            server.modelName(), parallel, model.describe()));
                    out().flush();
                    stop.await();
                    err().println("cria: stopping: no new connections; running requests have " + shutdownGrace + " s to finish");
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    server.close(); // before the model: it finishes or cancels what runs on it
                }
            }
        } finally {
            restore("TERM", term);
            restore("INT", intr);
        }
        err().println("cria: server stopped");
        return 0;
    }

    private static String readKey(Path file) {
        try {
            String first = Files.readString(file).lines().findFirst().orElse("").trim();
            if (first.isEmpty()) {
                throw new CriaException(file + ": the first line is empty; put the API key there");
            }
            return first;
        } catch (java.nio.file.NoSuchFileException e) {
            throw new CriaException(file + ": no such file (--api-key-file)");
        } catch (IOException e) {
            throw new CriaException(file + ": cannot read the API key: " + e.getMessage());
        }
    }

    private static boolean isLoopback(String h) {
        return h.equals("127.0.0.1") || h.equals("localhost") || h.equals("::1") || h.startsWith("127.");
    }

    /** Counts {@code stop} down on the signal (a second one stops at once); the old handler, or null. */
    private static Object onSignal(String name, CountDownLatch stop) {
        try {
            return sun.misc.Signal.handle(new sun.misc.Signal(name), s -> {
                if (stop.getCount() == 0) {
                    Runtime.getRuntime().halt(name.equals("INT") ? 130 : 143); // asked twice: stop now
                }
                stop.countDown();
            });
        } catch (IllegalArgumentException | UnsupportedOperationException | LinkageError e) {
            return null; // no signal support here: the JVM's default applies
        }
    }

    private static void restore(String name, Object previous) {
        if (previous instanceof sun.misc.SignalHandler h) {
            try {
                sun.misc.Signal.handle(new sun.misc.Signal(name), h);
            } catch (IllegalArgumentException | UnsupportedOperationException | LinkageError e) {
                // nothing to put back
            }
        }
    }
}
