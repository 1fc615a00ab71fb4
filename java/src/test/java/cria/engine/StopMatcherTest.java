// Stop strings across token boundaries: held back while they might match, cut when they do.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class StopMatcherTest {
    @Test
    void holdsBackAPossibleStartAndCutsAtTheMatch() {
        StopMatcher m = new StopMatcher(List.of("</end>"));
        assertEquals("hello ", m.add("hello <"));
        assertEquals("", m.add("/en"));
        assertFalse(m.stopped());
        assertEquals("", m.add("d>tail"));
        assertTrue(m.stopped());
        assertEquals("", m.add("more"));
    }

    @Test
    void releasesHeldTextWhenItStopsLookingLikeAStop() {
        StopMatcher m = new StopMatcher(List.of("STOP", "xy"));
        assertEquals("ab", m.add("abST"));
        assertEquals("STart ", m.add("art x")); // "x" may start "xy"
        assertEquals("x", m.add("x"));          // "xx": the first x cannot, the second still may
        assertEquals("x", m.flush());
    }

    @Test
    void earliestOfSeveralStopsWins() {
        StopMatcher m = new StopMatcher(List.of("cd", "bc"));
        assertEquals("a", m.add("abcd"));
        assertTrue(m.stopped());
    }

    @Test
    void noStopsPassesEverythingThrough() {
        StopMatcher m = new StopMatcher(List.of());
        assertEquals("<abc", m.add("<abc"));
    }
}
