// The one exception type for expected failures (bad file, bad option, missing model, no GPU, ...).
package cria;

/**
 * An expected failure that a person can act on: a corrupt file, an unknown type, a missing model,
 * no usable GPU, not enough memory. The message is one line saying what is wrong, where, and what
 * to do; the command line prints it without a stack trace and exits with code 1.
 * Unexpected failures (bugs) use ordinary exceptions and keep their stack traces.
 */
public class CriaException extends RuntimeException {
    /** An expected failure; {@code message} is one line: what is wrong, where, what to do. */
    public CriaException(String message) {
        super(message);
    }

    /** An expected failure with the exception that revealed it. */
    public CriaException(String message, Throwable cause) {
        super(message, cause);
    }
}
