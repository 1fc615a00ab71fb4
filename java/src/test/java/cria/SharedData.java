// Locates ../shared (llama.cpp reference data beside the checkout) for tests, which skip clearly without it.
package cria;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/**
 * The reference data folder: {@code -Dcria.shared=DIR}, else {@code ../shared} beside the
 * checkout. Tests that need it call {@link #require()} and are skipped, with a message saying
 * why, on a fresh clone that has no such folder.
 */
public final class SharedData {
    private SharedData() {}

    /** The folder, or null when absent. */
    public static Path dir() {
        String p = System.getProperty("cria.shared");
        Path d = p != null ? Path.of(p) : Path.of(System.getProperty("user.dir")).resolve("../shared").normalize();
        return Files.isDirectory(d.resolve("models")) ? d : null;
    }

    private static final String ABSENT = "reference data ../shared is absent (it sits beside the checkout on CI and dev machines)";
    private static boolean told;

    /** The folder; skips the calling test when it is absent (saying so once on the console). */
    public static Path require() {
        Path d = dir();
        if (d == null) {
            synchronized (SharedData.class) {
                if (!told) {
                    told = true;
                    System.out.println("[skipped] tests that compare with llama.cpp: " + ABSENT);
                }
            }
        }
        Assumptions.assumeTrue(d != null, "skipped: " + ABSENT);
        return d;
    }

    /** A file under the folder; skips the test when the folder or the file is absent. */
    public static Path require(String relative) {
        Path f = require().resolve(relative);
        Assumptions.assumeTrue(Files.exists(f), "skipped: " + f + " is absent");
        return f;
    }
}
