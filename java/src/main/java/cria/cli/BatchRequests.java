// Reading `cria batch` input lines: JSON objects with a prompt or messages and optional sampling settings.
package cria.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.engine.GenerateOptions;
import cria.sample.SamplerParams;
import cria.tokenizer.ChatTemplate;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** One input line parsed (or the reason it could not be). */
record BatchRequests(String key, JsonNode id, String prompt, List<ChatTemplate.Message> messages, GenerateOptions options,
                     String error) {

    static final Set<String> FIELDS = Set.of("id", "prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "min_p",
            "seed", "stop", "repeat_penalty", "frequency_penalty", "presence_penalty", "repeat_last_n");

    /** The resume key of a line: its id as JSON text, or its line number when it has none. */
    static String keyOf(JsonNode id, int lineNo) {
        return id != null && !id.isNull() ? "id:" + id : "line:" + lineNo;
    }

    /** Parses line {@code lineNo} (1-based) with {@code defaults} for whatever it does not say. */
    static BatchRequests parse(String line, int lineNo, GenerateOptions defaults) {
        JsonNode node;
        try {
            node = Json.STRICT.readTree(line);
        } catch (JsonProcessingException e) {
            return failed(null, lineNo, "line " + lineNo + ": not valid JSON: " + Main.oneLine(e.getOriginalMessage()));
        }
        if (node == null || !node.isObject()) {
            return failed(null, lineNo, "line " + lineNo + ": expected a JSON object");
        }
        JsonNode id = node.get("id");
        if (id != null && !(id.isTextual() || id.isIntegralNumber())) {
            return failed(null, lineNo, "line " + lineNo + ": id must be a string or an integer");
        }
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!FIELDS.contains(f)) {
                return failed(id, lineNo, "unknown field '" + f + "' (known: " + String.join(", ", new java.util.TreeSet<>(FIELDS)) + ")");
            }
        }
        JsonNode prompt = node.get("prompt");
        JsonNode messages = node.get("messages");
        if ((prompt == null) == (messages == null)) {
            return failed(id, lineNo, "give either 'prompt' or 'messages'");
        }
        String promptText = null;
        List<ChatTemplate.Message> msgs = null;
        if (prompt != null) {
            if (!prompt.isTextual()) {
                return failed(id, lineNo, "'prompt' must be a string");
            }
            promptText = prompt.asText();
        } else {
            if (!messages.isArray() || messages.isEmpty()) {
                return failed(id, lineNo, "'messages' must be a non-empty array of {\"role\", \"content\"} objects");
            }
            msgs = new ArrayList<>();
            for (JsonNode m : messages) {
                if (!m.isObject() || !m.path("role").isTextual() || !m.path("content").isTextual()) {
                    return failed(id, lineNo, "each message needs a string 'role' and a string 'content'");
                }
                msgs.add(new ChatTemplate.Message(m.get("role").asText(), m.get("content").asText()));
            }
        }
        try {
            SamplerParams sp = defaults.sampler();
            int maxTokens = defaults.maxTokens();
            List<String> stop = defaults.stop();
            for (Map.Entry<String, JsonNode> e : (Iterable<Map.Entry<String, JsonNode>>) ((ObjectNode) node)::fields) {
                JsonNode v = e.getValue();
                switch (e.getKey()) {
                    case "max_tokens" -> maxTokens = integer(e.getKey(), v);
                    case "temperature" -> sp = sp.withTemperature(number(e.getKey(), v));
                    case "top_p" -> sp = sp.withTopP(number(e.getKey(), v));
                    case "top_k" -> sp = sp.withTopK(integer(e.getKey(), v));
                    case "min_p" -> sp = sp.withMinP(number(e.getKey(), v));
                    case "seed" -> sp = sp.withSeed(seed(v));
                    case "repeat_penalty" -> sp = sp.withRepeatPenalty(number(e.getKey(), v));
                    case "frequency_penalty" -> sp = sp.withFrequencyPenalty(number(e.getKey(), v));
                    case "presence_penalty" -> sp = sp.withPresencePenalty(number(e.getKey(), v));
                    case "repeat_last_n" -> sp = sp.withRepeatLastN(integer(e.getKey(), v));
                    case "stop" -> stop = stops(v);
                    default -> { }
                }
            }
            if (maxTokens < 0) {
                throw new IllegalArgumentException("'max_tokens' must not be negative");
            }
            return new BatchRequests(keyOf(id, lineNo), id, promptText, msgs, new GenerateOptions(maxTokens, sp.validate(), stop, false), null);
        } catch (IllegalArgumentException e) {
            return failed(id, lineNo, e.getMessage());
        }
    }

    /** A line that could not be read at all (e.g. not UTF-8): an error result keyed by its line number. */
    static BatchRequests invalid(int lineNo, String why) {
        return failed(null, lineNo, why);
    }

    private static BatchRequests failed(JsonNode id, int lineNo, String why) {
        return new BatchRequests(keyOf(id, lineNo), id, null, null, null, why);
    }

    private static final java.math.BigInteger TWO_64 = java.math.BigInteger.ONE.shiftLeft(64);

    /**
     * A seed: any integer that fits 64 bits, signed or unsigned (2^63 .. 2^64-1 keep their bits);
     * anything wider is an error rather than silently cut to its low bits.
     */
    private static long seed(JsonNode v) {
        if (v.isIntegralNumber()) {
            if (v.canConvertToLong()) {
                return v.asLong();
            }
            java.math.BigInteger b = v.bigIntegerValue();
            if (b.signum() > 0 && b.compareTo(TWO_64) < 0) {
                return b.longValue();
            }
        }
        throw new IllegalArgumentException("'seed' must be an integer of at most 64 bits (-2^63 to 2^64-1)");
    }

    private static int integer(String key, JsonNode v) {
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new IllegalArgumentException("'" + key + "' must be an integer from " + Integer.MIN_VALUE + " to " + Integer.MAX_VALUE);
        }
        return v.asInt();
    }

    private static float number(String key, JsonNode v) {
        if (!v.isNumber() || !Float.isFinite((float) v.asDouble())) {
            throw new IllegalArgumentException("'" + key + "' must be a finite number");
        }
        return (float) v.asDouble();
    }

    private static List<String> stops(JsonNode v) {
        List<String> out = new ArrayList<>();
        if (v.isTextual()) {
            out.add(v.asText());
        } else if (v.isArray()) {
            for (JsonNode s : v) {
                if (!s.isTextual()) {
                    throw new IllegalArgumentException("'stop' must be a string or an array of strings");
                }
                out.add(s.asText());
            }
        } else {
            throw new IllegalArgumentException("'stop' must be a string or an array of strings");
        }
        for (String s : out) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("'stop' strings must not be empty");
            }
        }
        return out;
    }
}
