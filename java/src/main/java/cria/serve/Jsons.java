// The server's JSON mapper and the typed, bounded field readers every endpoint uses.
package cria.serve;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;

/** Reading request fields: each reader names the field in its 400 when the value is of the wrong type or out of range. */
final class Jsons {
    private Jsons() {}

    /** Shared, thread-safe; nesting bounded so that a body of brackets cannot exhaust the stack. */
    static final ObjectMapper MAPPER = JsonMapper.builder(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(64).build()).build()).build();

    /** The body as a JSON object, or a 400 saying what is wrong with it. */
    static ObjectNode object(byte[] body) {
        if (body.length == 0) {
            throw ApiError.malformed("the request has no body; send a JSON object");
        }
        JsonNode n;
        try {
            n = MAPPER.readTree(body);
        } catch (JsonProcessingException e) {
            String why = e.getOriginalMessage();
            throw ApiError.malformed("the body is not valid JSON: " + (why == null ? "" : why.lines().findFirst().orElse("")));
        } catch (java.io.IOException e) {
            throw ApiError.malformed("the body is not valid JSON");
        }
        if (n == null || !n.isObject()) {
            throw ApiError.malformed("the body must be a JSON object, e.g. {\"model\": \"m\", \"messages\": [...]}");
        }
        return (ObjectNode) n;
    }

    /** The compact JSON text of {@code n} in UTF-8. */
    static byte[] bytes(JsonNode n) {
        try {
            return MAPPER.writeValueAsBytes(n);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The compact JSON text of {@code n}. */
    static String text(JsonNode n) {
        return new String(bytes(n), StandardCharsets.UTF_8);
    }

    /** True when the field is absent or JSON null. */
    static boolean absent(JsonNode o, String field) {
        JsonNode v = o.get(field);
        return v == null || v.isNull();
    }

    static double number(JsonNode o, String field, double min, double max, double dflt) {
        if (absent(o, field)) {
            return dflt;
        }
        JsonNode v = o.get(field);
        if (!v.isNumber()) {
            throw ApiError.invalid(field, field + " must be a number, got " + v);
        }
        double d = v.asDouble();
        if (!(d >= min && d <= max)) {
            throw ApiError.invalid(field, field + " must be between " + fmt(min) + " and " + fmt(max) + ", got " + v);
        }
        return d;
    }

    static long integer(JsonNode o, String field, long min, long max, long dflt) {
        if (absent(o, field)) {
            return dflt;
        }
        JsonNode v = o.get(field);
        if (!v.isIntegralNumber() && !(v.isNumber() && v.asDouble() == Math.rint(v.asDouble()))) {
            throw ApiError.invalid(field, field + " must be an integer, got " + v);
        }
        if (!v.canConvertToLong() && v.isIntegralNumber()) {
            throw ApiError.invalid(field, field + " must be between " + min + " and " + max + ", got " + v);
        }
        double d = v.asDouble();
        long l = v.isIntegralNumber() ? v.asLong() : (long) d;
        if (l < min || l > max || (!v.isIntegralNumber() && Math.abs(d) > 9e15)) {
            throw ApiError.invalid(field, field + " must be between " + min + " and " + max + ", got " + v);
        }
        return l;
    }

    static boolean bool(JsonNode o, String field, boolean dflt) {
        if (absent(o, field)) {
            return dflt;
        }
        JsonNode v = o.get(field);
        if (!v.isBoolean()) {
            throw ApiError.invalid(field, field + " must be true or false, got " + v);
        }
        return v.asBoolean();
    }

    static String string(JsonNode o, String field, String dflt) {
        if (absent(o, field)) {
            return dflt;
        }
        JsonNode v = o.get(field);
        if (!v.isTextual()) {
            throw ApiError.invalid(field, field + " must be a string, got " + shorten(v.toString()));
        }
        return v.asText();
    }

    /** A value for an error message: at most 80 characters. */
    static String shorten(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }

    private static String fmt(double d) {
        return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : Double.toString(d);
    }
}
