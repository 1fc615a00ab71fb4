// Standard output that remembers why a write failed: the PrintWriter picocli hands the verbs swallows the reason.
package cria.cli;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;

/**
 * Wraps the process's standard output. Writes pass straight through; the first IOException is
 * kept (and still thrown, so the PrintWriter above sets its error flag), so that {@link Main}
 * can tell, once a verb ends, that its output was lost and why ("No space left on device"), and
 * say so in one line instead of exiting 0. Closing does not close the underlying stream.
 */
final class StdoutGuard extends FilterOutputStream {
    private volatile IOException failure;

    StdoutGuard(OutputStream out) {
        super(out);
    }

    @Override
    public void write(int b) throws IOException {
        try {
            out.write(b);
        } catch (IOException e) {
            throw remember(e);
        }
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        try {
            out.write(b, off, len); // whole, not byte by byte as FilterOutputStream would
        } catch (IOException e) {
            throw remember(e);
        }
    }

    @Override
    public void flush() throws IOException {
        try {
            out.flush();
        } catch (IOException e) {
            throw remember(e);
        }
    }

    @Override
    public void close() throws IOException {
        flush(); // standard output stays open for whoever writes after us
    }

    /** The first write failure, or null. */
    IOException failure() {
        return failure;
    }

    /** True when the reader went away (`cria ... | head -1`): EPIPE, which the JVM turns into an IOException. */
    static boolean isBrokenPipe(IOException e) {
        return e != null && e.getMessage() != null && e.getMessage().contains("Broken pipe");
    }

    private IOException remember(IOException e) {
        if (failure == null) {
            failure = e;
        }
        return e;
    }
}
