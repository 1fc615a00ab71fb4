// A chat or text completion request read from OpenAI's JSON: prompts as token ids, sampling, limits, streaming.
package cria.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.engine.GenerateOptions;
import cria.engine.Model;
import cria.sample.SamplerParams;
import cria.tokenizer.ChatTemplate;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One request, checked: every value OpenAI documents is read with its type and range (a 400 names
 * the field otherwise), the prompt is rendered and tokenized, and the prompt plus max_tokens is
 * checked against the context. Fields that only describe the caller ({@code user}, {@code model},
 * {@code metadata}, {@code store}...) are ignored; fields that would change the output in ways this
 * server does not support (tools, a JSON response format, echo, suffix) are refused.
 *
 * @param chat         /v1/chat/completions (else /v1/completions)
 * @param prompts      the prompts' token ids (chat: one; completions: one per prompt given)
 * @param options      generation settings, the seed of choice 0 included
 * @param n            choices per prompt; choice i draws from seed + i
 * @param stream       answer with server-sent events
 * @param includeUsage stream_options.include_usage: a last chunk with the usage
 */
record CompletionRequest(boolean chat, List<int[]> prompts, GenerateOptions options, int n, boolean stream,
                         boolean includeUsage) {

    private static final SecureRandom SEEDS = new SecureRandom();
    private static final int MAX_STOP = 16;
    private static final int MAX_PROMPTS = 64;

    /** True when each token comes with log-probabilities. */
    boolean logprobs() {
        return options.wantsLogprobs();
    }

    /** The options of choice {@code i}: seed + i. */
    GenerateOptions choice(int i) {
        return options.withSampler(options.sampler().withSeed(options.sampler().seed() + i));
    }

    /**
     * Reads a request.
     *
     * @param ctx      positions one sequence may hold
     * @param maxLimit the largest max_tokens allowed
     */
    static CompletionRequest parse(ObjectNode body, boolean chat, Model model, int ctx, int maxLimit) {
        refuseUnsupported(body, chat);
        int vocab = model.config().vocab();
        List<int[]> prompts = chat ? List.of(chatPrompt(body, model)) : textPrompts(body, model, vocab);

        String maxField = !Jsons.absent(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        long asked = Jsons.integer(body, maxField, 1, maxLimit, -1); // the limit: --max-tokens-limit, at most the context
        int longest = 0;
        for (int[] p : prompts) {
            longest = Math.max(longest, p.length);
        }
        int maxTokens;
        if (asked > 0) {
            maxTokens = (int) asked;
            if ((long) longest + maxTokens > ctx) {
                throw ApiError.contextOverflow("this model's context is " + ctx + " tokens, but the request needs "
                        + ((long) longest + maxTokens) + ": " + longest + " in the prompt and " + maxTokens + " for " + maxField
                        + "; shorten the prompt or lower " + maxField);
            }
        } else {
            if (longest >= ctx) {
                throw ApiError.contextOverflow("this model's context is " + ctx + " tokens, but the prompt has " + longest
                        + " tokens (and at least 1 must be left to generate); shorten the prompt");
            }
            maxTokens = Math.min(maxLimit, ctx - longest);
        }

        float temperature = (float) Jsons.number(body, "temperature", 0, 2, 1);
        double topP = Jsons.number(body, "top_p", 0, 1, 1);
        if (topP == 0) {
            temperature = 0; // only the most likely token is left
            topP = 1;
        }
        int topK = (int) Jsons.integer(body, "top_k", 0, vocab, 0);
        float minP = (float) Jsons.number(body, "min_p", 0, 1, 0);
        float freq = (float) Jsons.number(body, "frequency_penalty", -2, 2, 0);
        float presence = (float) Jsons.number(body, "presence_penalty", -2, 2, 0);
        float repeat = (float) Jsons.number(body, "repeat_penalty", 0.01, 10, 1);
        int lastN = (int) Jsons.integer(body, "repeat_last_n", -1, ctx, 64);
        long seed = Jsons.absent(body, "seed") ? SEEDS.nextLong() & 0xffffffffL
                : Jsons.integer(body, "seed", Long.MIN_VALUE, Long.MAX_VALUE, 0);
        int n = (int) Jsons.integer(body, "n", 1, ServeOptions.MAX_CHOICES, 1);
        long bestOf = Jsons.integer(body, "best_of", 1, ServeOptions.MAX_CHOICES, n);
        if (bestOf != n) {
            throw ApiError.invalid("best_of", "best_of other than n is not supported; leave it out");
        }
        if ((long) n * prompts.size() > MAX_PROMPTS) {
            throw ApiError.invalid("n", "n x prompts must be at most " + MAX_PROMPTS + ", got " + n * prompts.size());
        }
        boolean stream = Jsons.bool(body, "stream", false);
        boolean includeUsage = false;
        if (stream && !Jsons.absent(body, "stream_options")) {
            JsonNode so = body.get("stream_options");
            if (!so.isObject()) {
                throw ApiError.invalid("stream_options", "stream_options must be an object, e.g. {\"include_usage\": true}");
            }
            includeUsage = Jsons.bool(so, "include_usage", false);
        }
        SamplerParams sampler = new SamplerParams(temperature, topK, (float) topP, minP, repeat, lastN, freq, presence, seed);
        GenerateOptions o = new GenerateOptions(maxTokens, sampler, stops(body), Jsons.bool(body, "ignore_eos", false))
                .withLogitBias(logitBias(body, vocab))
                .withLogprobs(logprobs(body, chat));
        return new CompletionRequest(chat, prompts, o, n, stream, includeUsage);
    }

    private static void refuseUnsupported(ObjectNode body, boolean chat) {
        JsonNode tools = body.get("tools");
        if (tools != null && !tools.isNull() && !(tools.isArray() && tools.isEmpty())) {
            throw ApiError.invalid("tools", "tools (function calling) are not supported by this server; leave them out");
        }
        JsonNode fn = body.get("functions");
        if (fn != null && !fn.isNull() && !(fn.isArray() && fn.isEmpty())) {
            throw ApiError.invalid("functions", "functions (function calling) are not supported by this server; leave them out");
        }
        JsonNode rf = body.get("response_format");
        if (rf != null && !rf.isNull()) {
            String type = rf.isObject() ? Jsons.string(rf, "type", "text") : null;
            if (!"text".equals(type)) {
                throw ApiError.invalid("response_format", "only response_format {\"type\": \"text\"} is supported");
            }
        }
        if (!chat) {
            if (Jsons.bool(body, "echo", false)) {
                throw ApiError.invalid("echo", "echo is not supported by this server; leave it out");
            }
            String suffix = Jsons.string(body, "suffix", null);
            if (suffix != null && !suffix.isEmpty()) {
                throw ApiError.invalid("suffix", "suffix (insertion) is not supported by this server; leave it out");
            }
        }
    }

    private static int[] chatPrompt(ObjectNode body, Model model) {
        JsonNode ms = body.get("messages");
        if (ms == null || !ms.isArray() || ms.isEmpty()) {
            throw ApiError.invalid("messages", "messages must be a non-empty array of {\"role\": ..., \"content\": ...}");
        }
        List<ChatTemplate.Message> messages = new ArrayList<>();
        for (int i = 0; i < ms.size(); i++) {
            JsonNode m = ms.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject()) {
                throw ApiError.invalid(where, where + " must be an object with role and content");
            }
            String role = Jsons.string(m, "role", null);
            if (role == null || role.isBlank()) {
                throw ApiError.invalid(where + ".role", where + ".role must be a string such as system, user or assistant");
            }
            if (role.equals("developer")) {
                role = "system"; // OpenAI's newer name for the system role
            }
            messages.add(new ChatTemplate.Message(role, content(m.get("content"), where + ".content")));
        }
        try {
            return model.chatTokens(messages);
        } catch (CriaException | IllegalArgumentException e) {
            throw ApiError.invalid("messages", "the chat template could not render these messages: " + e.getMessage());
        }
    }

    /** A message's text: a string, null (empty), or an array of text parts. */
    private static String content(JsonNode c, String where) {
        if (c == null || c.isNull()) {
            return "";
        }
        if (c.isTextual()) {
            return c.asText();
        }
        if (!c.isArray()) {
            throw ApiError.invalid(where, where + " must be a string or an array of {\"type\": \"text\", \"text\": ...} parts");
        }
        StringBuilder b = new StringBuilder();
        for (int j = 0; j < c.size(); j++) {
            JsonNode part = c.get(j);
            String type = part.isObject() ? Jsons.string(part, "type", null) : null;
            if (!"text".equals(type)) {
                throw ApiError.invalid(where + "[" + j + "]", "only text content parts are supported, got " + Jsons.shorten(part.toString()));
            }
            String text = Jsons.string(part, "text", null);
            if (text == null) {
                throw ApiError.invalid(where + "[" + j + "].text", where + "[" + j + "].text must be a string");
            }
            b.append(text);
        }
        return b.toString();
    }

    /** prompt: a string, an array of strings, an array of token ids, or an array of such arrays. */
    private static List<int[]> textPrompts(ObjectNode body, Model model, int vocab) {
        JsonNode p = body.get("prompt");
        if (p == null || p.isNull()) {
            throw ApiError.invalid("prompt", "prompt is required: a string, an array of strings or an array of token ids");
        }
        List<int[]> out = new ArrayList<>();
        if (p.isTextual()) {
            out.add(encode(model, p.asText(), "prompt"));
        } else if (p.isArray() && !p.isEmpty() && p.get(0).isNumber()) {
            out.add(ids(p, vocab, "prompt"));
        } else if (p.isArray() && !p.isEmpty()) {
            if (p.size() > MAX_PROMPTS) {
                throw ApiError.invalid("prompt", "at most " + MAX_PROMPTS + " prompts per request, got " + p.size());
            }
            for (int i = 0; i < p.size(); i++) {
                JsonNode e = p.get(i);
                String where = "prompt[" + i + "]";
                if (e.isTextual()) {
                    out.add(encode(model, e.asText(), where));
                } else if (e.isArray() && !e.isEmpty()) {
                    out.add(ids(e, vocab, where));
                } else {
                    throw ApiError.invalid(where, where + " must be a string or a non-empty array of token ids");
                }
            }
        } else {
            throw ApiError.invalid("prompt", "prompt must be a string, an array of strings or a non-empty array of token ids");
        }
        return out;
    }

    private static int[] encode(Model model, String text, String where) {
        int[] ids = model.tokenizer().encode(text, true, true);
        if (ids.length == 0) {
            throw ApiError.invalid(where, where + " is empty and the vocabulary adds no BOS token: there is nothing to continue");
        }
        return ids;
    }

    /** Token ids from a JSON array, each checked against the vocabulary. */
    static int[] ids(JsonNode a, int vocab, String where) {
        int[] ids = new int[a.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = a.get(i);
            if (!t.canConvertToInt() || !t.isIntegralNumber() || t.asInt() < 0 || t.asInt() >= vocab) {
                throw ApiError.invalid(where, where + "[" + i + "] must be a token id from 0 to " + (vocab - 1) + ", got "
                        + Jsons.shorten(t.toString()));
            }
            ids[i] = t.asInt();
        }
        return ids;
    }

    private static List<String> stops(ObjectNode body) {
        if (Jsons.absent(body, "stop")) {
            return List.of();
        }
        JsonNode s = body.get("stop");
        List<String> out = new ArrayList<>();
        if (s.isTextual()) {
            out.add(s.asText());
        } else if (s.isArray()) {
            if (s.size() > MAX_STOP) {
                throw ApiError.invalid("stop", "at most " + MAX_STOP + " stop strings, got " + s.size());
            }
            for (JsonNode e : s) {
                if (!e.isTextual()) {
                    throw ApiError.invalid("stop", "stop must be a string or an array of strings, got " + Jsons.shorten(s.toString()));
                }
                out.add(e.asText());
            }
        } else {
            throw ApiError.invalid("stop", "stop must be a string or an array of strings, got " + Jsons.shorten(s.toString()));
        }
        out.removeIf(String::isEmpty); // an empty stop string would end every generation at once: ignored
        return out;
    }

    private static Map<Integer, Float> logitBias(ObjectNode body, int vocab) {
        if (Jsons.absent(body, "logit_bias")) {
            return Map.of();
        }
        JsonNode lb = body.get("logit_bias");
        if (!lb.isObject()) {
            throw ApiError.invalid("logit_bias", "logit_bias must be an object of token id -> bias, e.g. {\"50256\": -100}");
        }
        Map<Integer, Float> out = new HashMap<>();
        for (var it = lb.fields(); it.hasNext(); ) {
            var e = it.next();
            int id;
            try {
                id = Integer.parseInt(e.getKey().trim());
            } catch (NumberFormatException x) {
                throw ApiError.invalid("logit_bias", "logit_bias keys must be token ids, got \"" + Jsons.shorten(e.getKey()) + "\"");
            }
            if (id < 0 || id >= vocab) {
                throw ApiError.invalid("logit_bias", "logit_bias token id " + id + " is outside the vocabulary (0.." + (vocab - 1) + ")");
            }
            JsonNode v = e.getValue();
            if (!v.isNumber() || !(v.asDouble() >= -100 && v.asDouble() <= 100)) {
                throw ApiError.invalid("logit_bias", "logit_bias values must be numbers from -100 to 100, got " + Jsons.shorten(v.toString())
                        + " for token " + id);
            }
            out.put(id, (float) v.asDouble());
        }
        return out;
    }

    /** -1: none; else the alternatives per token. Chat: logprobs true + top_logprobs; completions: logprobs N. */
    private static int logprobs(ObjectNode body, boolean chat) {
        int max = GenerateOptions.MAX_TOP_LOGPROBS;
        if (chat) {
            boolean want = Jsons.bool(body, "logprobs", false);
            int top = (int) Jsons.integer(body, "top_logprobs", 0, max, 0);
            if (!want && !Jsons.absent(body, "top_logprobs")) {
                throw ApiError.invalid("top_logprobs", "top_logprobs needs \"logprobs\": true");
            }
            return want ? top : -1;
        }
        return (int) Jsons.integer(body, "logprobs", 0, max, -1);
    }
}
