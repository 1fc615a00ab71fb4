package cria.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** CRIA_PREFETCH: the values native/cpu.c reads pass silently; anything else gets one line naming the valid ones. */
class PrefetchModeTest {
    @Test
    void validValuesAndUnsetSayNothing() {
        assertNull(NativeKernels.prefetchProblem(null));
        for (String v : new String[] {"l2", "l1", "off"}) {
            assertNull(NativeKernels.prefetchProblem(v), v);
        }
    }

    @Test
    void otherValuesGetOneLineNamingTheValidOnes() {
        for (String v : new String[] {"L2", "", "on", "l3", " l2"}) {
            String line = NativeKernels.prefetchProblem(v);
            assertTrue(line != null && !line.contains("\n") && line.contains("CRIA_PREFETCH=" + v + " ")
                    && line.contains("[l2, l1, off]"), v + " -> " + line);
        }
    }
}
