// The server's counters and histograms, written in Prometheus' text format for GET /metrics.
package cria.serve;

import cria.engine.BatchGenerator;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.DoubleAdder;
import java.util.concurrent.atomic.LongAdder;

/**
 * Requests by endpoint and status, tokens, and latency histograms, updated from request threads
 * and from the engine's listener calls (lock-free: adders and atomic arrays); the engine's gauges
 * (queue, busy sequences, KV pages) are read from {@link BatchGenerator#stats()} when rendered.
 */
final class Metrics {
    private final Map<String, LongAdder> requests = new ConcurrentHashMap<>();
    final LongAdder promptTokens = new LongAdder();
    final LongAdder completionTokens = new LongAdder();
    final LongAdder cancelled = new LongAdder();
    final LongAdder inFlight = new LongAdder();
    /** Seconds from a request's arrival to its first generated token. */
    final Histogram timeToFirstToken = new Histogram(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60);
    /** Seconds between consecutive generated tokens of one sequence. */
    final Histogram timePerOutputToken = new Histogram(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5);

    /** A histogram with fixed upper bounds (seconds). */
    static final class Histogram {
        final double[] bounds;
        final AtomicLongArray counts;
        final DoubleAdder sum = new DoubleAdder();
        final LongAdder count = new LongAdder();

        Histogram(double... bounds) {
            this.bounds = bounds;
            this.counts = new AtomicLongArray(bounds.length + 1);
        }

        void observe(double seconds) {
            int i = 0;
            while (i < bounds.length && seconds > bounds[i]) {
                i++;
            }
            counts.incrementAndGet(i);
            sum.add(seconds);
            count.increment();
        }
    }

    /** Counts one answered request. */
    void request(String endpoint, int status) {
        requests.computeIfAbsent(endpoint + '\u0000' + status, k -> new LongAdder()).increment();
    }

    /** The exposition text; {@code stats} null while the model loads. */
    String render(BatchGenerator.Stats stats) {
        StringBuilder b = new StringBuilder(4096);
        head(b, "cria_requests_total", "counter", "HTTP requests answered, by endpoint and status");
        Map<String, Long> sorted = new TreeMap<>();
        requests.forEach((k, v) -> sorted.put(k, v.sum()));
        sorted.forEach((k, v) -> {
            int z = k.indexOf('\u0000');
            b.append("cria_requests_total{endpoint=\"").append(k, 0, z).append("\",status=\"").append(k.substring(z + 1))
                    .append("\"} ").append(v).append('\n');
        });
        line(b, "cria_requests_in_flight", "gauge", "HTTP requests being handled now", inFlight.sum());
        line(b, "cria_prompt_tokens_total", "counter", "prompt tokens of completed requests (usage.prompt_tokens)",
                promptTokens.sum());
        line(b, "cria_generated_tokens_total", "counter", "tokens generated for completed requests (usage.completion_tokens)",
                completionTokens.sum());
        line(b, "cria_requests_cancelled_total", "counter", "generations cancelled because the client went away or the server stopped",
                cancelled.sum());
        line(b, "cria_model_loaded", "gauge", "1 once the model is loaded and requests are served", stats == null ? 0 : 1);
        if (stats != null) {
            line(b, "cria_queue_depth", "gauge", "requests waiting for a free sequence", stats.queued());
            line(b, "cria_sequences_busy", "gauge", "sequences being decoded", stats.running());
            line(b, "cria_kv_pages_total", "gauge", "pages of the shared KV cache", stats.kvPagesTotal());
            line(b, "cria_kv_pages_used", "gauge", "KV pages held by running sequences or kept prefixes", stats.kvPagesUsed());
            line(b, "cria_kv_pages_cached", "gauge", "KV pages held only by kept prefixes (reusable, freed on demand)",
                    stats.kvPagesCached());
            line(b, "cria_engine_prompt_tokens_evaluated_total", "counter", "prompt tokens the engine computed", stats.promptTokens());
            line(b, "cria_engine_prompt_tokens_reused_total", "counter", "prompt tokens taken from a shared prefix instead",
                    stats.promptTokensReused());
            line(b, "cria_engine_generated_tokens_total", "counter", "tokens the engine sampled", stats.generatedTokens());
            line(b, "cria_engine_steps_total", "counter", "forward steps of the batch engine", stats.steps());
            b.append("# HELP cria_engine_busy_seconds_total time the engine spent in forward steps\n");
            b.append("# TYPE cria_engine_busy_seconds_total counter\n");
            b.append("cria_engine_busy_seconds_total ").append(num(stats.busyNanos() / 1e9)).append('\n');
        }
        histogram(b, "cria_time_to_first_token_seconds", "seconds from a request's arrival to its first token", timeToFirstToken);
        histogram(b, "cria_time_per_output_token_seconds", "seconds between consecutive tokens of one sequence", timePerOutputToken);
        return b.toString();
    }

    private static void head(StringBuilder b, String name, String type, String help) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private static void line(StringBuilder b, String name, String type, String help, long value) {
        head(b, name, type, help);
        b.append(name).append(' ').append(value).append('\n');
    }

    private static void histogram(StringBuilder b, String name, String help, Histogram h) {
        head(b, name, "histogram", help);
        long cumulative = 0;
        for (int i = 0; i <= h.bounds.length; i++) {
            cumulative += h.counts.get(i);
            String le = i < h.bounds.length ? num(h.bounds[i]) : "+Inf";
            b.append(name).append("_bucket{le=\"").append(le).append("\"} ").append(cumulative).append('\n');
        }
        b.append(name).append("_sum ").append(num(h.sum.sum())).append('\n');
        b.append(name).append("_count ").append(cumulative).append('\n');
    }

    private static String num(double d) {
        return String.format(Locale.ROOT, "%s", d);
    }
}
