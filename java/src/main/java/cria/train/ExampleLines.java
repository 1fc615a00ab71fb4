// One line of a fine-tuning JSONL file to an Example: its kind told by its keys, every value checked, errors naming file and line.
package cria.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectReader;
import cria.CriaException;
import cria.tokenizer.ChatTemplate;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/** The parser of one line of {@link Examples}' format. */
final class ExampleLines {
    private ExampleLines() {}

    /** Parses one non-blank line; {@code shapes} is the "expected ..." part of the error for a line of no known shape. */
    static Example parse(String text, String name, int line, ObjectReader json, String shapes) {
        String where = name + ":" + line + ": ";
        JsonNode node;
        try {
            node = json.readTree(text);
        } catch (JsonProcessingException ex) {
            String why = ex.getOriginalMessage() == null ? "" : ex.getOriginalMessage().lines().findFirst().orElse("");
            throw new CriaException(where + "not valid JSON (" + why + "); " + shapes + " per line");
        }
        if (node == null || !node.isObject()) {
            throw new CriaException(where + shapes + "; got " + describe(node));
        }
        Set<String> keys = new TreeSet<>();
        node.fieldNames().forEachRemaining(keys::add);
        if (keys.equals(Set.of("text"))) {
            return Example.text(line, string(node, "text", where, false));
        }
        if (keys.equals(Set.of("prompt", "completion"))) {
            return Example.completion(line, string(node, "prompt", where, true), string(node, "completion", where, false));
        }
        if (keys.equals(Set.of("messages"))) {
            return Example.chat(line, messages(node.get("messages"), where));
        }
        if (keys.equals(Set.of("text", "label"))) {
            return Example.classification(line, string(node, "text", where, false), label(node.get("label"), where));
        }
        throw new CriaException(where + shapes + "; got " + describe(node));
    }

    // A string value; blank ones are refused unless allowed (an empty prompt is fine, an empty text trains nothing).
    private static String string(JsonNode node, String key, String where, boolean blankAllowed) {
        JsonNode v = node.get(key);
        if (!v.isTextual()) {
            throw new CriaException(where + "\"" + key + "\" must be a string; got " + describe(v));
        }
        if (!blankAllowed && v.textValue().isBlank()) {
            throw new CriaException(where + "\"" + key + "\" is empty");
        }
        return v.textValue();
    }

    // A label: a string, a whole number or a boolean (0/1 and true/false labels are common), without surrounding spaces.
    private static String label(JsonNode v, String where) {
        String s;
        if (v.isTextual()) {
            s = v.textValue().strip();
        } else if (v.isIntegralNumber() || v.isBoolean()) {
            s = v.asText();
        } else {
            throw new CriaException(where + "\"label\" must be a string (or a whole number); got " + describe(v));
        }
        if (s.isEmpty()) {
            throw new CriaException(where + "\"label\" is empty");
        }
        return s;
    }

    private static List<ChatTemplate.Message> messages(JsonNode arr, String where) {
        if (!arr.isArray() || arr.isEmpty()) {
            throw new CriaException(where + "\"messages\" must be a non-empty array of {\"role\",\"content\"} objects; got " + describe(arr));
        }
        List<ChatTemplate.Message> out = new ArrayList<>(arr.size());
        boolean assistant = false;
        for (int i = 0; i < arr.size(); i++) {
            JsonNode m = arr.get(i);
            Set<String> keys = new TreeSet<>();
            if (m.isObject()) {
                m.fieldNames().forEachRemaining(keys::add);
            }
            if (!keys.equals(Set.of("role", "content")) || !m.get("role").isTextual() || !m.get("content").isTextual()
                    || m.get("role").textValue().isBlank()) {
                throw new CriaException(where + "message " + (i + 1) + " must be {\"role\": string, \"content\": string}; got " + describe(m));
            }
            String role = m.get("role").textValue();
            assistant |= role.equals("assistant");
            out.add(new ChatTemplate.Message(role, m.get("content").textValue()));
        }
        if (!assistant) {
            throw new CriaException(where + "no message has the role \"assistant\"; a chat trains on the assistant's turns");
        }
        return out;
    }

    /** A short description of a JSON value for an error: an object by its keys, else its type. */
    static String describe(JsonNode v) {
        if (v == null || v.isMissingNode()) {
            return "nothing";
        }
        if (v.isObject()) {
            StringBuilder sb = new StringBuilder("{");
            Iterator<String> it = v.fieldNames();
            while (it.hasNext()) {
                sb.append('"').append(it.next()).append('"').append(it.hasNext() ? "," : "");
            }
            return sb.append('}').toString();
        }
        if (v.isArray()) {
            return "an array";
        }
        if (v.isTextual()) {
            return "a string";
        }
        if (v.isNumber()) {
            return "a number";
        }
        if (v.isBoolean()) {
            return "a boolean";
        }
        return "null";
    }
}
