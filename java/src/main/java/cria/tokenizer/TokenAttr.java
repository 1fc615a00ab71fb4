// Token attributes (bit flags, llama.cpp's values) and their mapping from tokenizer.ggml.token_type.
package cria.tokenizer;

/** Attribute bits of a token; a token may carry several (a control token that also right-strips). */
public final class TokenAttr {
    public static final int UNDEFINED = 0;
    public static final int UNKNOWN = 1;
    public static final int UNUSED = 1 << 1;
    public static final int NORMAL = 1 << 2;
    public static final int CONTROL = 1 << 3;
    public static final int USER_DEFINED = 1 << 4;
    public static final int BYTE = 1 << 5;
    public static final int NORMALIZED = 1 << 6;
    /** Whitespace before the token is swallowed when it is parsed as special. */
    public static final int LSTRIP = 1 << 7;
    /** Whitespace after the token is swallowed when it is parsed as special. */
    public static final int RSTRIP = 1 << 8;
    public static final int SINGLE_WORD = 1 << 9;

    private TokenAttr() {}

    /** The attribute for a GGUF token type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte). */
    static int fromType(int type) {
        return switch (type) {
            case 1 -> NORMAL;
            case 2 -> UNKNOWN;
            case 3 -> CONTROL;
            case 4 -> USER_DEFINED;
            case 5 -> UNUSED;
            case 6 -> BYTE;
            default -> UNDEFINED;
        };
    }
}
