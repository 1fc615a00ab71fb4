// The paged KV cache's bookkeeping: reservations, release, page reuse, and the limits it refuses.
package cria.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class KvCacheTest {

    private static HostKvCache cache(int pages, int sequences, int maxPositions) {
        return new HostKvCache(new KvCache.Config(2, 8, KvCache.Type.F32, 4, pages, sequences, maxPositions));
    }

    @Test
    void reservationsTakePagesAndReleaseGivesThemBack() {
        try (HostKvCache c = cache(10, 3, 16)) {
            int a = c.newSequence();
            int b = c.newSequence();
            c.reserve(a, 9);                       // 3 pages of 4
            assertEquals(7, c.freePages());
            assertEquals(12, c.capacity(a));
            c.reserve(a, 5);                       // already held: nothing taken
            assertEquals(7, c.freePages());
            c.reserve(b, 16);
            assertEquals(3, c.freePages());
            Set<Integer> pagesA = new HashSet<>();
            Set<Integer> pagesB = new HashSet<>();
            for (int p = 0; p < 12; p++) {
                pagesA.add(c.page(a, p));
            }
            for (int p = 0; p < 16; p++) {
                pagesB.add(c.page(b, p));
            }
            pagesA.retainAll(pagesB);
            assertTrue(pagesA.isEmpty(), "two sequences never share a page they did not share on purpose");
            c.truncate(a, 4);
            assertEquals(5, c.freePages());
            c.freeSequence(a);
            assertEquals(6, c.freePages());
            int again = c.newSequence();
            assertEquals(a, again, "a freed sequence slot is reused");
            assertEquals(0, c.capacity(again));
        }
    }

    @Test
    void negativeOrImpossibleReservationsAreRefused() {
        try (HostKvCache c = cache(4, 2, 12)) {
            int s = c.newSequence();
            assertThrows(IllegalArgumentException.class, () -> c.reserve(s, -1));
            assertThrows(IllegalArgumentException.class, () -> c.reserve(s, Integer.MIN_VALUE));
            assertThrows(IllegalArgumentException.class, () -> c.pagesFor(-5));
            assertFalse(c.canReserve(s, -1));
            CriaException ctx = assertThrows(CriaException.class, () -> c.reserve(s, 13));
            assertTrue(ctx.getMessage().contains("context"), ctx.getMessage());
            c.reserve(s, 12);
            int t = c.newSequence();
            CriaException pool = assertThrows(CriaException.class, () -> c.reserve(t, 8));
            assertTrue(pool.getMessage().contains("pages"), pool.getMessage());
            assertThrows(IllegalStateException.class, c::newSequence, "only two sequences");
            assertThrows(IllegalArgumentException.class, () -> c.reserve(7, 1), "a sequence that does not exist");
            c.freeSequence(t);
            assertThrows(IllegalArgumentException.class, () -> c.reserve(t, 1), "a sequence that was freed");
            assertEquals(Integer.MAX_VALUE / 4 + 1, c.pagesFor(Integer.MAX_VALUE), "no int overflow near the top");
        }
    }

    @Test
    void aBatchMayOnlyTouchPagesItsOwnSequenceHolds() {
        try (HostKvCache c = cache(8, 2, 32)) {
            int a = c.newSequence();
            int b = c.newSequence();
            c.reserve(a, 5);
            c.reserve(b, 4);
            Batch ok = new Batch(4);
            ok.add(1, 7, a, true);
            ok.add(1, 3, b, true);
            c.checkBatch(ok);
            for (int[] bad : new int[][] {{a, 8}, {b, 4}, {a, -1}, {5, 0}, {-1, 0}}) {
                Batch batch = new Batch(1);
                batch.add(1, bad[1], bad[0], true);
                assertThrows(IllegalArgumentException.class, () -> c.checkBatch(batch), "sequence " + bad[0] + " position " + bad[1]);
            }
            c.freeSequence(b);
            assertThrows(IllegalArgumentException.class, () -> c.checkBatch(ok), "b was freed: its pages are not its own any more");
        }
    }

    @Test
    void geometriesThatOverflowAreRefusedBeforeAllocating() {
        // parallel x context beyond a Java array of page-table entries
        assertThrows(IllegalArgumentException.class,
                () -> new KvCache.Config(1, 8, KvCache.Type.F16, 1, 1, 1 << 20, Integer.MAX_VALUE));
        // bytes beyond a long
        assertThrows(IllegalArgumentException.class,
                () -> new KvCache.Config(1 << 16, 1 << 24, KvCache.Type.F32, 1 << 16, Integer.MAX_VALUE, 1, 16));
        assertThrows(IllegalArgumentException.class, () -> new KvCache.Config(1, 8, KvCache.Type.F16, 0, 1, 1, 16));
        KvCache.Config single = KvCache.Config.single(2, 8, KvCache.Type.F16, Integer.MAX_VALUE);
        assertEquals(Integer.MAX_VALUE / 64 + 1, single.pages(), "pages of a huge single context, without wrapping");
        assertNotEquals(Long.MAX_VALUE, KvCache.Config.bytesFor(2, 8, KvCache.Type.F16, Integer.MAX_VALUE, 64));
        assertEquals(Long.MAX_VALUE, KvCache.Config.bytesFor(1 << 16, 1 << 24, KvCache.Type.F32, Long.MAX_VALUE / 2, 64));
    }
}
