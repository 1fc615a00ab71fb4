// An HTTP error in OpenAI's shape: a status and {"error": {"message", "type", "param", "code"}}.
package cria.serve;

import com.fasterxml.jackson.databind.node.ObjectNode;

/** Thrown by request handling; {@link OpenAiServer} turns it into the response. */
final class ApiError extends RuntimeException {
    final int status;
    final String type;
    final String code;
    final String param;
    /** Seconds for a Retry-After header; 0: none. */
    final int retryAfter;

    ApiError(int status, String type, String code, String param, String message, int retryAfter) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.code = code;
        this.param = param;
        this.retryAfter = retryAfter;
    }

    /** 400: a value that is missing, of the wrong type or out of range; {@code param} names the field. */
    static ApiError invalid(String param, String message) {
        return new ApiError(400, "invalid_request_error", "invalid_value", param, message, 0);
    }

    /** 400: the body is not JSON, or not a JSON object. */
    static ApiError malformed(String message) {
        return new ApiError(400, "invalid_request_error", "invalid_json", null, message, 0);
    }

    /** 400: the prompt and the tokens asked for do not fit the context. */
    static ApiError contextOverflow(String message) {
        return new ApiError(400, "invalid_request_error", "context_length_exceeded", "messages", message, 0);
    }

    /** 401: no key, or not the server's key. */
    static ApiError unauthorized() {
        return new ApiError(401, "invalid_request_error", "invalid_api_key", null,
                "missing or wrong API key: send it as 'Authorization: Bearer KEY' or 'X-Api-Key: KEY'", 0);
    }

    /** 404: no such endpoint. */
    static ApiError notFound(String method, String path) {
        return new ApiError(404, "invalid_request_error", "not_found", null, "no endpoint " + method + " " + path
                + "; this server has /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models, /tokenize, /detokenize, "
                + "/health and /metrics", 0);
    }

    /** 405: the endpoint exists but not for this method. */
    static ApiError methodNotAllowed(String method, String path, String allowed) {
        return new ApiError(405, "invalid_request_error", "method_not_allowed", null,
                method + " is not allowed on " + path + "; use " + allowed, 0);
    }

    /** 413: the body is larger than the server accepts. */
    static ApiError tooLarge(long limit) {
        return new ApiError(413, "invalid_request_error", "request_too_large", null,
                "the request body is larger than this server's limit of " + limit + " bytes (--max-body)", 0);
    }

    /** 429: the engine's queue is full. */
    static ApiError busy(String message) {
        return new ApiError(429, "server_busy", "queue_full", null, message, 1);
    }

    /** 503: the model is still loading, or the server is shutting down. */
    static ApiError unavailable(String code, String message) {
        return new ApiError(503, "server_error", code, null, message, 1);
    }

    /** 500: an unexpected failure (the message says what; the server goes on). */
    static ApiError internal(String message) {
        return new ApiError(500, "server_error", "internal_error", null, message, 0);
    }

    /**
     * An HTTP request the web server could not parse (request line, header lines, sizes), which
     * never reached a route: {@code status} is the web server's (400, 414, 505, ...); {@code detail}
     * its reason, or null.
     */
    static ApiError unparsed(int status, String detail) {
        String why = detail == null ? "" : " (" + detail + ")";
        return switch (status) {
            case 400 -> new ApiError(400, "invalid_request_error", "malformed_http", null,
                    "the request is not valid HTTP/1.1" + why + ": send a request line 'METHOD /path HTTP/1.1', "
                    + "header lines 'Name: value' and an empty line", 0);
            case 413 -> new ApiError(413, "invalid_request_error", "request_too_large", null,
                    "the request is larger than this server accepts" + why, 0);
            case 414 -> new ApiError(414, "invalid_request_error", "uri_too_long", null,
                    "the request line is longer than this server reads" + why + "; send long inputs in a POST body", 0);
            case 431 -> new ApiError(431, "invalid_request_error", "headers_too_large", null,
                    "the request's header lines are larger than this server reads" + why, 0);
            case 505 -> new ApiError(505, "invalid_request_error", "http_version_not_supported", null,
                    "this server speaks HTTP/1.1" + why, 0);
            case 503 -> new ApiError(503, "server_error", "server_busy", null,
                    "the server cannot take this connection now" + why + "; try again shortly", 1);
            default -> new ApiError(status, status >= 500 ? "server_error" : "invalid_request_error", "http_error", null,
                    "the request could not be handled (HTTP " + status + ")" + why, 0);
        };
    }

    /** The JSON body. */
    ObjectNode body() {
        ObjectNode root = Jsons.MAPPER.createObjectNode();
        ObjectNode e = root.putObject("error");
        e.put("message", getMessage());
        e.put("type", type);
        e.put("param", param);
        e.put("code", code);
        return root;
    }
}
