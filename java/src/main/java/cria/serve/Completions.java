// POST /v1/chat/completions and /v1/completions: runs a request's choices on the batch engine, whole or streamed.
package cria.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.engine.BatchGenerator;
import cria.engine.Generation;
import cria.engine.TokenListener;
import cria.engine.TokenLogprob;
import cria.tokenizer.Tokenizer;
import io.helidon.http.sse.SseEvent;
import io.helidon.webserver.http.ServerResponse;
import io.helidon.webserver.sse.SseSink;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Each choice is one sequence in the batch engine with its own listener; listeners run on the
 * engine's thread and only hand text to the request's own queue (never to another request's, and
 * never blocking the engine on a socket). The request's thread writes the queue out as server-sent
 * events; a failed write (the client went away) cancels the request's sequences, which the engine
 * frees before its next step. The whole answer is built from the same {@link Generation}s the
 * stream ends with, so streamed and whole text are the same.
 */
final class Completions {
    private final Engine engine;
    private final Metrics metrics;

    Completions(Engine engine, Metrics metrics) {
        this.engine = engine;
        this.metrics = metrics;
    }

    /** A piece of text (and its tokens' log-probabilities) from the engine, or the end of a choice. */
    private record Piece(int index, int token, String text, TokenLogprob logprob) {}

    private record Done(int index, Generation generation, Throwable failure) {}

    /** One sequence: its listener records timings and passes text to the request's queue (null: not streamed). */
    private final class Choice implements TokenListener {
        final int index;
        final int[] prompt;
        final long arrived;
        final BlockingQueue<Object> events;
        long last;
        CompletableFuture<Generation> future;

        Choice(int index, int[] prompt, long arrived, BlockingQueue<Object> events) {
            this.index = index;
            this.prompt = prompt;
            this.arrived = arrived;
            this.events = events;
        }

        @Override
        public boolean onToken(int token, String text) {
            return onToken(token, text, null);
        }

        @Override
        public boolean onToken(int token, String text, TokenLogprob logprob) {
            if (token >= 0) {
                long now = System.nanoTime();
                if (last == 0) {
                    metrics.timeToFirstToken.observe((now - arrived) / 1e9);
                } else {
                    metrics.timePerOutputToken.observe((now - last) / 1e9);
                }
                last = now;
            }
            if (events != null) {
                events.add(new Piece(index, token, text, logprob));
            }
            return true;
        }
    }

    /** Runs a parsed request and answers it (a 4xx/5xx as {@link ApiError} before anything was sent). */
    void handle(CompletionRequest r, long arrived, ServerResponse res) {
        BlockingQueue<Object> events = r.stream() ? new LinkedBlockingQueue<>() : null;
        List<Choice> choices = new ArrayList<>();
        for (int p = 0; p < r.prompts().size(); p++) {
            for (int i = 0; i < r.n(); i++) {
                Choice c = new Choice(p * r.n() + i, r.prompts().get(p), arrived, events);
                c.future = engine.submit(c.prompt, r.choice(i), c);
                if (events != null) {
                    c.future.whenComplete((g, t) -> events.add(new Done(c.index, g, t)));
                }
                choices.add(c);
                if (c.future.isCompletedExceptionally()) { // refused at once: the queue is full, or the server closes
                    cancel(choices);
                    throw failure(causeOf(c.future));
                }
            }
        }
        String id = (r.chat() ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
        long created = System.currentTimeMillis() / 1000;
        if (r.stream()) {
            stream(r, choices, events, id, created, res);
        } else {
            whole(r, choices, id, created, res);
        }
    }

    private void whole(CompletionRequest r, List<Choice> choices, String id, long created, ServerResponse res) {
        List<Generation> gens = new ArrayList<>();
        try {
            for (Choice c : choices) {
                gens.add(c.future.get());
            }
        } catch (InterruptedException e) {
            cancel(choices);
            Thread.currentThread().interrupt();
            throw ApiError.unavailable("shutting_down", "the server is shutting down; the request was cancelled");
        } catch (CancellationException e) {
            cancel(choices);
            throw ApiError.unavailable("shutting_down", "the server is shutting down; the request was cancelled");
        } catch (ExecutionException e) {
            cancel(choices);
            throw failure(e.getCause());
        }
        ObjectNode o = head(r, id, created, false);
        ArrayNode cs = o.putArray("choices");
        Tokenizer tok = engine.model.tokenizer();
        for (int k = 0; k < gens.size(); k++) {
            Generation g = gens.get(k);
            ObjectNode c = cs.addObject();
            c.put("index", k);
            List<TokenLogprob> lps = r.logprobs() ? visible(g.logprobs(), tok) : null;
            if (r.chat()) {
                ObjectNode m = c.putObject("message");
                m.put("role", "assistant");
                m.put("content", g.text());
                c.set("logprobs", lps == null ? null : chatLogprobs(lps, tok));
            } else {
                c.put("text", g.text());
                c.set("logprobs", lps == null ? null : textLogprobs(lps, tok, new int[1]));
            }
            c.put("finish_reason", finishReason(g));
        }
        o.set("usage", usage(r, gens));
        res.header("Content-Type", "application/json");
        res.send(Jsons.bytes(o));
    }

    private void stream(CompletionRequest r, List<Choice> choices, BlockingQueue<Object> events, String id, long created,
                        ServerResponse res) {
        Tokenizer tok = engine.model.tokenizer();
        int total = choices.size();
        List<List<TokenLogprob>> pending = new ArrayList<>();
        int[][] offsets = new int[total][1];
        Generation[] gens = new Generation[total];
        for (int k = 0; k < total; k++) {
            pending.add(new ArrayList<>());
        }
        SseSink sink;
        try {
            res.header("Cache-Control", "no-cache");
            sink = res.sink(SseSink.TYPE);
            if (r.chat()) {
                for (int k = 0; k < total; k++) {
                    ObjectNode delta = Jsons.MAPPER.createObjectNode().put("role", "assistant").put("content", "");
                    emit(sink, chunk(r, id, created, k, delta, null, null));
                }
            }
        } catch (RuntimeException e) {
            gone(choices);
            return;
        }
        int done = 0;
        try {
            while (done < total) {
                Object ev = events.take();
                if (ev instanceof Piece p) {
                    if (p.logprob() != null && r.logprobs() && !tok.isEndOfGeneration(p.token())) {
                        pending.get(p.index()).add(p.logprob());
                    }
                    if (!p.text().isEmpty()) {
                        emit(sink, chunk(r, id, created, p.index(), text(r, p.text()),
                                logprobs(r, pending.get(p.index()), tok, offsets[p.index()]), null));
                        pending.get(p.index()).clear();
                    }
                } else if (ev instanceof Done d) {
                    done++;
                    if (d.failure() != null) {
                        cancel(choices);
                        if (!(d.failure() instanceof CancellationException)) {
                            ApiError e = failure(d.failure() instanceof ExecutionException x ? x.getCause() : d.failure());
                            emit(sink, e.body());
                        }
                        emitRaw(sink, "[DONE]");
                        sink.close();
                        return;
                    }
                    gens[d.index()] = d.generation();
                    ObjectNode end = r.chat() ? Jsons.MAPPER.createObjectNode() : text(r, "");
                    emit(sink, chunk(r, id, created, d.index(), end, logprobs(r, pending.get(d.index()), tok, offsets[d.index()]),
                            finishReason(d.generation())));
                }
            }
            ObjectNode usage = usage(r, List.of(gens));
            if (r.includeUsage()) {
                ObjectNode last = head(r, id, created, true);
                last.putArray("choices");
                last.set("usage", usage);
                emit(sink, last);
            }
            emitRaw(sink, "[DONE]");
            sink.close();
        } catch (InterruptedException e) {
            cancel(choices);
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) { // the client went away: writing failed
            gone(choices);
        }
    }

    private void gone(List<Choice> choices) {
        if (cancel(choices) > 0) {
            metrics.cancelled.increment();
        }
    }

    private static int cancel(List<Choice> choices) {
        int n = 0;
        for (Choice c : choices) {
            if (c.future.cancel(true)) {
                n++;
            }
        }
        return n;
    }

    private static Throwable causeOf(CompletableFuture<Generation> f) {
        try {
            f.join();
            return new IllegalStateException("no failure");
        } catch (java.util.concurrent.CompletionException e) {
            return e.getCause();
        } catch (CancellationException e) {
            return e;
        }
    }

    /** The answer for an engine failure: 429 for a full queue, 400 for a request it refused, 503 when closing. */
    private static ApiError failure(Throwable t) {
        if (t instanceof BatchGenerator.QueueFullException q) {
            return ApiError.busy(q.getMessage());
        }
        if (t instanceof CriaException c) {
            return ApiError.invalid(null, c.getMessage());
        }
        if (t instanceof CancellationException || t instanceof IllegalStateException) {
            return ApiError.unavailable("shutting_down", "the server is shutting down; try again later");
        }
        return ApiError.internal("generation failed: " + t);
    }

    private void emit(SseSink sink, JsonNode n) {
        emitRaw(sink, Jsons.text(n));
    }

    /** One event, written as {@code data: TEXT} and a blank line, and flushed. */
    private static void emitRaw(SseSink sink, String data) {
        sink.emit(SseEvent.create((" " + data).getBytes(StandardCharsets.UTF_8)));
    }

    private ObjectNode head(CompletionRequest r, String id, long created, boolean chunk) {
        ObjectNode o = Jsons.MAPPER.createObjectNode();
        o.put("id", id);
        o.put("object", r.chat() ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
        o.put("created", created);
        o.put("model", engine.alias);
        o.put("system_fingerprint", "cria");
        return o;
    }

    private ObjectNode chunk(CompletionRequest r, String id, long created, int index, ObjectNode delta, JsonNode logprobs,
                             String finish) {
        ObjectNode o = head(r, id, created, true);
        ObjectNode c = o.putArray("choices").addObject();
        c.put("index", index);
        if (r.chat()) {
            c.set("delta", delta);
        } else {
            c.setAll(delta);
        }
        c.set("logprobs", logprobs);
        c.put("finish_reason", finish);
        if (r.includeUsage()) {
            o.putNull("usage");
        }
        return o;
    }

    private static ObjectNode text(CompletionRequest r, String text) {
        return Jsons.MAPPER.createObjectNode().put(r.chat() ? "content" : "text", text);
    }

    /** The log-probabilities of a chunk (and clears nothing: the caller does); null when not asked. */
    private JsonNode logprobs(CompletionRequest r, List<TokenLogprob> lps, Tokenizer tok, int[] offset) {
        if (!r.logprobs()) {
            return null;
        }
        return r.chat() ? chatLogprobs(lps, tok) : textLogprobs(lps, tok, offset);
    }

    private ObjectNode usage(CompletionRequest r, List<Generation> gens) {
        long prompt = 0;
        for (int[] p : r.prompts()) {
            prompt += p.length;
        }
        long completion = 0;
        for (Generation g : gens) {
            completion += g.tokens().length;
        }
        metrics.promptTokens.add(prompt);
        metrics.completionTokens.add(completion);
        ObjectNode u = Jsons.MAPPER.createObjectNode();
        u.put("prompt_tokens", prompt);
        u.put("completion_tokens", completion);
        u.put("total_tokens", prompt + completion);
        return u;
    }

    private static String finishReason(Generation g) {
        return g.finishReason() == Generation.FinishReason.LENGTH ? "length" : "stop";
    }

    /** The tokens reported: all generated ones but a final end-of-generation token. */
    private static List<TokenLogprob> visible(List<TokenLogprob> all, Tokenizer tok) {
        List<TokenLogprob> out = new ArrayList<>(all.size());
        for (TokenLogprob lp : all) {
            if (!tok.isEndOfGeneration(lp.token())) {
                out.add(lp);
            }
        }
        return out;
    }

    /** Chat shape: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}. */
    static ObjectNode chatLogprobs(List<TokenLogprob> lps, Tokenizer tok) {
        ObjectNode o = Jsons.MAPPER.createObjectNode();
        ArrayNode content = o.putArray("content");
        for (TokenLogprob lp : lps) {
            ObjectNode e = tokenEntry(content.addObject(), lp.token(), lp.logprob(), tok);
            ArrayNode top = e.putArray("top_logprobs");
            for (int i = 0; i < lp.topTokens().length; i++) {
                tokenEntry(top.addObject(), lp.topTokens()[i], lp.topLogprobs()[i], tok);
            }
        }
        return o;
    }

    private static ObjectNode tokenEntry(ObjectNode e, int token, float logprob, Tokenizer tok) {
        byte[] piece = tok.piece(token, false);
        e.put("token", new String(piece, StandardCharsets.UTF_8));
        e.put("logprob", logprob);
        ArrayNode bytes = e.putArray("bytes");
        for (byte b : piece) {
            bytes.add(b & 0xff);
        }
        return e;
    }

    /** Completions shape: {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}; offset[0] runs on. */
    static ObjectNode textLogprobs(List<TokenLogprob> lps, Tokenizer tok, int[] offset) {
        ObjectNode o = Jsons.MAPPER.createObjectNode();
        ArrayNode tokens = o.putArray("tokens");
        ArrayNode values = o.putArray("token_logprobs");
        ArrayNode tops = o.putArray("top_logprobs");
        ArrayNode offsets = o.putArray("text_offset");
        for (TokenLogprob lp : lps) {
            String s = new String(tok.piece(lp.token(), false), StandardCharsets.UTF_8);
            tokens.add(s);
            values.add(lp.logprob());
            ObjectNode top = tops.addObject();
            for (int i = 0; i < lp.topTokens().length; i++) {
                String t = new String(tok.piece(lp.topTokens()[i], false), StandardCharsets.UTF_8);
                if (!top.has(t)) {
                    top.put(t, lp.topLogprobs()[i]);
                }
            }
            offsets.add(offset[0]);
            offset[0] += s.length();
        }
        return o;
    }
}
