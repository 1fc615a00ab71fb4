// Ctrl-C during generation: stop cleanly and say so, instead of dying mid-line.
package cria.cli;

import java.util.concurrent.atomic.AtomicBoolean;

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
