// Settings of the OpenAI-compatible server: where it listens, how many sequences it runs, its limits and its key.
package cria.serve;

import java.util.List;

/**
 * How an {@link OpenAiServer} listens and what it allows. Sizes are checked by {@link #validate()}
 * (called by {@link OpenAiServer#start}) before anything is allocated.
 *
 * @param host                the address to bind ({@code 127.0.0.1}: this machine only; {@code 0.0.0.0}: every interface)
 * @param port                the TCP port (0: any free port, see {@link OpenAiServer#port()})
 * @param parallel            sequences decoded together at most (continuous batching)
 * @param contextLength       positions one request may hold, prompt and generated tokens together
 *                            (0: the model's trained context, at most 4096)
 * @param batchSize           tokens per forward step (decode tokens plus prompt chunks)
 * @param apiKey              the key clients must send ({@code Authorization: Bearer KEY} or {@code X-Api-Key: KEY});
 *                            null: no key asked
 * @param alias               the model name {@code /v1/models} reports and responses carry (null: the file name)
 * @param corsOrigins         origins browsers may call from ({@code "*"}: any); empty: no CORS headers
 * @param maxQueue            requests that may wait for a free sequence beyond those running; more get 429
 *                            (0: no limit)
 * @param maxBodyBytes        the largest request body accepted; larger ones get 413 before they are read
 * @param maxTokensLimit      the largest {@code max_tokens} a request may ask for (0: the context length)
 * @param shutdownGraceMillis how long {@link OpenAiServer#close()} lets running requests finish before it
 *                            cancels them
 * @param kvType              KV cache element type: {@code F16} or {@code F32}
 */
public record ServeOptions(String host, int port, int parallel, int contextLength, int batchSize, String apiKey,
                           String alias, List<String> corsOrigins, int maxQueue, long maxBodyBytes, int maxTokensLimit,
                           long shutdownGraceMillis, String kvType) {

    /** The most choices ({@code n}) one request may ask for. */
    public static final int MAX_CHOICES = 16;

    public ServeOptions {
        corsOrigins = corsOrigins == null ? List.of() : List.copyOf(corsOrigins);
        if (apiKey != null && apiKey.isEmpty()) {
            apiKey = null;
        }
        kvType = kvType == null ? "F16" : kvType;
    }

    /**
     * 127.0.0.1:8080, 4 sequences, the model's context (at most 4096), 256 tokens per step, no key,
     * no CORS, 64 waiting requests, bodies up to 4 MiB, max_tokens up to the context, 10 s grace, F16 cache.
     */
    public static ServeOptions defaults() {
        return new ServeOptions("127.0.0.1", 8080, 4, 0, 256, null, null, List.of(), 64, 4L << 20, 0, 10_000, "F16");
    }

    /**
     * Throws IllegalArgumentException naming the first setting out of range.
     *
     * @return this
     */
    public ServeOptions validate() {
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException("--host must name an address, e.g. 127.0.0.1");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("--port must be 0 (any free port) to 65535, got " + port);
        }
        if (parallel < 1) {
            throw new IllegalArgumentException("--parallel must be at least 1, got " + parallel);
        }
        if (contextLength < 0 || contextLength == 1) {
            throw new IllegalArgumentException("--ctx must be 0 (the model's) or at least 2, got " + contextLength);
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("--batch-size must be positive, got " + batchSize);
        }
        if (maxQueue < 0) {
            throw new IllegalArgumentException("--max-queue must be 0 (no limit) or positive, got " + maxQueue);
        }
        if (maxBodyBytes < 1) {
            throw new IllegalArgumentException("--max-body must be positive, got " + maxBodyBytes);
        }
        if (maxTokensLimit < 0) {
            throw new IllegalArgumentException("--max-tokens-limit must be 0 (the context) or positive, got " + maxTokensLimit);
        }
        if (shutdownGraceMillis < 0) {
            throw new IllegalArgumentException("--shutdown-grace must not be negative, got " + shutdownGraceMillis);
        }
        if (!kvType.equals("F16") && !kvType.equals("F32")) {
            throw new IllegalArgumentException("--kv-type must be F16 or F32, got " + kvType);
        }
        for (String o : corsOrigins) {
            if (o == null || o.isBlank()) {
                throw new IllegalArgumentException("--cors-origin needs an origin such as http://localhost:3000, or *");
            }
        }
        return this;
    }

    /** A copy listening on {@code h}. */
    public ServeOptions withHost(String h) {
        return new ServeOptions(h, port, parallel, contextLength, batchSize, apiKey, alias, corsOrigins, maxQueue, maxBodyBytes,
                maxTokensLimit, shutdownGraceMillis, kvType);
    }

    /** A copy listening on port {@code p} (0: any free port). */
    public ServeOptions withPort(int p) {
        return new ServeOptions(host, p, parallel, contextLength, batchSize, apiKey, alias, corsOrigins, maxQueue, maxBodyBytes,
                maxTokensLimit, shutdownGraceMillis, kvType);
    }

    /** A copy running {@code n} sequences at once. */
    public ServeOptions withParallel(int n) {
        return new ServeOptions(host, port, n, contextLength, batchSize, apiKey, alias, corsOrigins, maxQueue, maxBodyBytes,
                maxTokensLimit, shutdownGraceMillis, kvType);
    }

    /** A copy with {@code n} positions per request (0: the model's context, at most 4096). */
    public ServeOptions withContextLength(int n) {
        return new ServeOptions(host, port, parallel, n, batchSize, apiKey, alias, corsOrigins, maxQueue, maxBodyBytes,
                maxTokensLimit, shutdownGraceMillis, kvType);
    }

    /** A copy with {@code n} tokens per forward step. */
    public ServeOptions withBatchSize(int n) {
        return new ServeOptions(host, port, parallel, contextLength, n, apiKey, alias, corsOrigins, maxQueue, maxBodyBytes,
                maxTokensLimit, shutdownGraceMillis, kvType);
    }

    /** A copy asking for this key (null or empty: none). */
    public ServeOptions withApiKey(String key) {
        return new ServeOptions(host, port, parallel, contextLength, batchSize, key, alias, corsOrigins, maxQueue, maxBodyBytes,
                maxTokensLimit, shutdownGraceMillis, kvType);
    }

    /** A copy reporting the model as {@code name} (null: the file name). */
    public ServeOptions withAlias(String name) {
        return new ServeOptions(host, port, parallel, contextLength, batchSize, apiKey, name, corsOrigins, maxQueue, maxBodyBytes,
                maxTokensLimit, shutdownGraceMillis, kvType);
    }

    /** A copy letting browsers call from these origins ({@code "*"}: any; empty: no CORS). */
    public ServeOptions withCorsOrigins(List<String> origins) {
        return new ServeOptions(host, port, parallel, contextLength, batchSize, apiKey, alias, origins, maxQueue, maxBodyBytes,
                maxTokensLimit, shutdownGraceMillis, kvType);
    }

    /** A copy letting {@code n} requests wait beyond those running (0: no limit). */
    public ServeOptions withMaxQueue(int n) {
        return new ServeOptions(host, port, parallel, contextLength, batchSize, apiKey, alias, corsOrigins, n, maxBodyBytes,
                maxTokensLimit, shutdownGraceMillis, kvType);
    }

    /** A copy accepting bodies of at most {@code bytes}. */
    public ServeOptions withMaxBodyBytes(long bytes) {
        return new ServeOptions(host, port, parallel, contextLength, batchSize, apiKey, alias, corsOrigins, maxQueue, bytes,
                maxTokensLimit, shutdownGraceMillis, kvType);
    }

    /** A copy allowing {@code max_tokens} up to {@code n} (0: the context length). */
    public ServeOptions withMaxTokensLimit(int n) {
        return new ServeOptions(host, port, parallel, contextLength, batchSize, apiKey, alias, corsOrigins, maxQueue, maxBodyBytes,
                n, shutdownGraceMillis, kvType);
    }

    /** A copy whose {@link OpenAiServer#close()} waits {@code millis} for running requests before cancelling them. */
    public ServeOptions withShutdownGraceMillis(long millis) {
        return new ServeOptions(host, port, parallel, contextLength, batchSize, apiKey, alias, corsOrigins, maxQueue, maxBodyBytes,
                maxTokensLimit, millis, kvType);
    }

    /** A copy with this KV cache type ({@code F16} or {@code F32}). */
    public ServeOptions withKvType(String type) {
        return new ServeOptions(host, port, parallel, contextLength, batchSize, apiKey, alias, corsOrigins, maxQueue, maxBodyBytes,
                maxTokensLimit, shutdownGraceMillis, type);
    }
}
