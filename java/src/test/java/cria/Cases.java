// Guards for test factories: a factory that yields no cases fails instead of passing with nothing tested.
package cria;

import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.opentest4j.AssertionFailedError;

/** Shared by every {@code @TestFactory} of the suite. */
public final class Cases {
    private Cases() {}

    /**
     * The factory's cases, or a failure naming {@code what} was expected when there are none (a
     * missing reference directory skips earlier, through {@link SharedData#require}; an empty
     * one is a broken setup, not a pass).
     */
    public static Stream<DynamicTest> nonEmpty(Stream<DynamicTest> tests, String what) {
        List<DynamicTest> list = tests.toList();
        if (list.isEmpty()) {
            throw new AssertionFailedError("no test cases: expected " + what + "; a factory that tests nothing must not pass");
        }
        return list.stream();
    }

    /** The items a factory makes its cases from, or a failure naming what was expected when there are none. */
    public static <T> List<T> require(List<T> items, String what) {
        if (items.isEmpty()) {
            throw new AssertionFailedError("no test cases: expected " + what + "; a factory that tests nothing must not pass");
        }
        return items;
    }

    /** {@link #nonEmpty(Stream, String)} for a list. */
    public static Stream<DynamicTest> nonEmpty(List<DynamicTest> tests, String what) {
        return nonEmpty(tests.stream(), what);
    }
}
