// AttnSpec: the plain spec, the first key a window lets a query see, and the one-line refusals of bad values.
package cria.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class AttnSpecTest {
    @Test
    void plainIsOneOverRootHeadSizeWithoutWindowOrCap() {
        AttnSpec s = AttnSpec.plain(64);
        assertEquals(0.125f, s.scale());
        assertEquals(0, s.window());
        assertEquals(0f, s.softcap());
        assertTrue(s.isPlain(64));
        assertFalse(s.isPlain(16));
        assertFalse(s.withWindow(4).isPlain(64));
        assertFalse(new AttnSpec(0.125f, 0, 50f).isPlain(64));
    }

    /** llama.cpp's standard window: key k is masked for a query at p when p - k >= W. */
    @Test
    void aWindowShowsTheLastWPositionsTheQueryIncluded() {
        AttnSpec w3 = AttnSpec.plain(8).withWindow(3);
        assertEquals(0, w3.firstKey(0));
        assertEquals(0, w3.firstKey(2));
        assertEquals(1, w3.firstKey(3));
        assertEquals(97, w3.firstKey(99));
        assertEquals(5, AttnSpec.plain(8).withWindow(1).firstKey(5));
        assertEquals(0, AttnSpec.plain(8).firstKey(1_000_000));
        assertEquals(0, AttnSpec.plain(8).withWindow(Integer.MAX_VALUE).firstKey(Integer.MAX_VALUE - 1));
    }

    @Test
    void badValuesAreRefused() {
        for (float scale : new float[] {0f, -1f, Float.NaN, Float.POSITIVE_INFINITY}) {
            assertThrows(IllegalArgumentException.class, () -> new AttnSpec(scale, 0, 0));
        }
        assertThrows(IllegalArgumentException.class, () -> new AttnSpec(1f, -1, 0));
        for (float cap : new float[] {-1f, Float.NaN, Float.POSITIVE_INFINITY}) {
            assertThrows(IllegalArgumentException.class, () -> new AttnSpec(1f, 0, cap));
        }
        assertThrows(IllegalArgumentException.class, () -> AttnSpec.plain(0));
    }
}
