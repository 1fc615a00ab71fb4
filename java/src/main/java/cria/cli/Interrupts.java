// Ctrl-C: during generation stop cleanly and say so; at any other time say so in one line and exit 130.
package cria.cli;

import java.io.PrintStream;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.IntConsumer;

/** Catches SIGINT while a verb generates; the verb polls {@link #requested()} and ends politely. */
final class Interrupts implements AutoCloseable {
    private final AtomicBoolean requested = new AtomicBoolean();
    private final Object previous;

    Interrupts() {
        Object prev = null;
        try {
            sun.misc.Signal sig = new sun.misc.Signal("INT");
            prev = sun.misc.Signal.handle(sig, s -> {
                if (requested.getAndSet(true)) {
                    Runtime.getRuntime().halt(130); // a second Ctrl-C: stop now
                }
            });
        } catch (IllegalArgumentException | UnsupportedOperationException | LinkageError e) {
            // no signal support here: Ctrl-C keeps its default meaning
        }
        this.previous = prev;
    }

    /**
     * For the whole process (see {@link Main#main}): the first Ctrl-C prints "cria: interrupted"
     * on {@code err} and exits 130. Without it the JVM ends silently on SIGINT, which after a
     * minute of model loading looks like a crash. A verb that can stop politely (generate)
     * installs its own handler over this one and puts this one back when it is done. Returns
     * false where signals cannot be caught (then Ctrl-C keeps the JVM's meaning).
     */
    static boolean exitOnInterrupt(PrintStream err) {
        return onInterrupt(exitAction(err, Runtime.getRuntime()::exit)) != null;
    }

    /** What {@link #exitOnInterrupt} does on Ctrl-C, with the exit given (tests pass one that records). */
    static Runnable exitAction(PrintStream err, IntConsumer exit) {
        return () -> {
            err.println("cria: interrupted");
            err.flush();
            exit.accept(130); // 128 + SIGINT, as the shell reports a C tool stopped by Ctrl-C
        };
    }

    /**
     * Makes SIGINT run {@code action} (on the JVM's signal thread). Returns the handler it
     * replaced, for {@link #restore}, or null when signals cannot be caught here.
     */
    static sun.misc.SignalHandler onInterrupt(Runnable action) {
        try {
            return sun.misc.Signal.handle(new sun.misc.Signal("INT"), s -> action.run());
        } catch (IllegalArgumentException | UnsupportedOperationException | LinkageError e) {
            return null;
        }
    }

    /** Puts back a handler that {@link #onInterrupt} returned. */
    static void restore(sun.misc.SignalHandler previous) {
        if (previous != null) {
            sun.misc.Signal.handle(new sun.misc.Signal("INT"), previous);
        }
    }

    boolean requested() {
        return requested.get();
    }

    void clear() {
        requested.set(false);
    }

    @Override
    public void close() {
        if (previous instanceof sun.misc.SignalHandler h) {
            sun.misc.Signal.handle(new sun.misc.Signal("INT"), h);
        }
    }
}
