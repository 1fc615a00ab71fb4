// The progress bar: plain occasional lines for logs, in-place redraws on a terminal, and its number formats.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressTest {

    static final long SEC = 1_000_000_000L;

    @Test
    void logModePrintsAPlainLineEveryFewSecondsAndAFinalOne() {
        StringWriter sw = new StringWriter();
        AtomicLong now = new AtomicLong();
        Progress p = new Progress(new PrintWriter(sw), "quantize", 1000, "values", false, now::get);
        now.set(SEC);
        p.add(100);
        assertEquals("", sw.toString(), "nothing before 5 s");
        now.set(6 * SEC);
        p.status("blk.3.ffn_up.weight");
        p.add(200);
        String first = sw.toString();
        assertEquals(1, first.lines().count(), first);
        assertTrue(first.contains(" 30.0%") || first.contains(" 10.0%"), first);
        now.set(7 * SEC);
        p.add(300);
        assertEquals(1, sw.toString().lines().count(), "throttled");
        now.set(12 * SEC);
        p.add(400);
        p.finish();
        String all = sw.toString();
        assertFalse(all.contains("\r"), all);
        String last = all.lines().reduce((a, b) -> b).orElseThrow();
        assertTrue(last.contains("100.0%") && last.contains("1.00 k/1.00 k values") && last.contains("in 0:12"), last);
    }

    @Test
    void terminalModeRedrawsInPlaceWithRateAndEta() {
        StringWriter sw = new StringWriter();
        AtomicLong now = new AtomicLong();
        Progress p = new Progress(new PrintWriter(sw), "quantize", 4_000_000, "values", true, now::get);
        now.set(SEC);
        p.add(1_000_000);
        String s = sw.toString();
        assertTrue(s.startsWith("\rquantize [#####---------------]  25.0%"), s);
        assertTrue(s.contains("1.00 M values/s") && s.contains("ETA 0:03"), s);
        p.finish();
        assertTrue(sw.toString().endsWith(System.lineSeparator()), "the final line ends the bar");
    }

    @Test
    void formats() {
        assertEquals("999", Progress.si(999));
        assertEquals("1.23 M", Progress.si(1_234_567));
        assertEquals("0:59", Progress.clock(59.4));
        assertEquals("1:01:01", Progress.clock(3661));
    }
}
