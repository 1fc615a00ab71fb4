// Skips a test with a reason that also reaches the console once per run (Surefire's summary shows only counts).
package cria.backend.cuda;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Assumptions;

/** {@code Skips.unless(cond, reason)}: a JUnit assumption that prints each distinct reason once. */
public final class Skips {
    private Skips() {}

    private static final Set<String> SAID = ConcurrentHashMap.newKeySet();

    /** Skips the calling test unless {@code ok}, printing "[skipped] reason" the first time the reason occurs. */
    public static void unless(boolean ok, String reason) {
        if (!ok) {
            if (SAID.add(reason)) {
                System.out.println("[skipped] " + reason);
            }
            Assumptions.abort(reason);
        }
    }
}
