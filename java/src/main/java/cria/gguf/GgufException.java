// A GGUF file that cannot be read: what is wrong and where, in one line.
package cria.gguf;

import cria.CriaException;

/** Thrown when a GGUF file is truncated, corrupt, hostile or uses something Cria does not know. */
public final class GgufException extends CriaException {
    /** {@code message}: one line naming the file, what is wrong, and where. */
    public GgufException(String message) {
        super(message);
    }
}
