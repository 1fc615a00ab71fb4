// The paged KV cache's bookkeeping: reservations, release, page reuse, and the limits it refuses.
package cria.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class KvCacheTest {

    private static HostKvCache cache(int pages, int sequences, int contextLength) {
        return new HostKvCache(new KvCache.Config(2, 8, KvCache.Type.F32, 4, pages, sequences, contextLength));
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

    /** The physical pages of {@code seq}'s first {@code positions} positions, in order. */
    static List<Integer> pages(KvCache c, int seq, int positions) {
        List<Integer> out = new ArrayList<>();
        for (int p = 0; p < positions; p += c.pageSize()) {
            out.add(c.page(seq, p));
        }
        return out;
    }

    /** Writes a value that names (sequence tag, position, layer, element) into K and V of one position. */
    static void write(HostKvCache c, int seq, int pos, int tag) {
        for (int l = 0; l < c.config().layers(); l++) {
            long at = c.positionIndex(l, seq, pos) * 4;
            for (int d = 0; d < c.kvDim(); d++) {
                float v = tag * 1e4f + pos * 100 + l * 10 + d;
                c.keys().set(ValueLayout.JAVA_FLOAT, at + 4L * d, v);
                c.values().set(ValueLayout.JAVA_FLOAT, at + 4L * d, -v);
            }
        }
    }

    /** True when position {@code pos} of {@code seq} holds what {@link #write} wrote with {@code tag}. */
    static boolean holds(HostKvCache c, int seq, int pos, int tag) {
        for (int l = 0; l < c.config().layers(); l++) {
            long at = c.positionIndex(l, seq, pos) * 4;
            for (int d = 0; d < c.kvDim(); d++) {
                float v = tag * 1e4f + pos * 100 + l * 10 + d;
                if (c.keys().get(ValueLayout.JAVA_FLOAT, at + 4L * d) != v || c.values().get(ValueLayout.JAVA_FLOAT, at + 4L * d) != -v) {
                    return false;
                }
            }
        }
        return true;
    }

    static Batch entry(int seq, int pos) {
        Batch b = new Batch(1);
        b.add(1, pos, seq, true);
        return b;
    }

    @Test
    void releasedPagesGoBackToThePoolAndAreTheOnesReusedNext() {
        try (HostKvCache c = cache(6, 3, 24)) {
            int a = c.newSequence();
            int b = c.newSequence();
            c.reserve(a, 8);                                   // pages for positions 0..7: exactly 2
            assertEquals(2, c.pagesFor(8));
            assertEquals(4, c.freePages());
            assertEquals(List.of(0, 1), pages(c, a, 8), "pages come from the pool in order");
            c.reserve(a, 9);                                   // one position more: one page more
            assertEquals(3, c.freePages());
            c.reserve(b, 12);
            assertEquals(0, c.freePages());
            for (int p = 0; p < 6; p++) {
                assertEquals(1, c.holders(p), "page " + p + " is held once");
            }
            List<Integer> freed = pages(c, a, 12).subList(1, 3);
            c.truncate(a, 4);                                  // keeps page 0 only
            assertEquals(2, c.freePages());
            assertEquals(4, c.capacity(a));
            for (int p : freed) {
                assertEquals(0, c.holders(p), "page " + p + " went back to the pool");
            }
            int d = c.newSequence();
            c.reserve(d, 8);
            assertEquals(Set.copyOf(freed), Set.copyOf(pages(c, d, 8)), "the freed pages are reused, and only they");
            assertEquals(0, c.freePages());
            CriaException full = assertThrows(CriaException.class, () -> c.reserve(a, 5), "the pool is empty");
            assertTrue(full.getMessage().contains("0 free of 6"), full.getMessage());
            assertEquals(4, c.capacity(a), "a refused reservation takes nothing");
            assertFalse(c.canReserve(a, 5));
            assertTrue(c.canReserve(a, 4));
            c.freeSequence(b);
            assertEquals(3, c.freePages());
            assertTrue(c.canReserve(a, 16));
            assertFalse(c.canReserve(a, 17), "one page more than the pool has free");
            assertFalse(c.canReserve(a, 25), "beyond the context");
        }
    }

    @Test
    void thePageTableVersionChangesExactlyWhenTheTableDoes() {
        try (HostKvCache c = cache(6, 2, 24)) {
            int a = c.newSequence();
            long v0 = c.version();
            c.reserve(a, 4);
            long v1 = c.version();
            assertNotEquals(v0, v1, "a new page: a device copy of the table must be refreshed");
            c.reserve(a, 3);
            c.truncate(a, 2);
            assertEquals(v1, c.version(), "nothing changed: the device copy stays valid");
            c.reserve(a, 5);
            assertNotEquals(v1, c.version());
            long v2 = c.version();
            c.truncate(a, 4);
            assertNotEquals(v2, c.version(), "a page given back");
        }
    }

    @Test
    void sharedPrefixPagesAreSharedCountedAndReadOnly() {
        try (HostKvCache c = cache(10, 3, 32)) {
            int src = c.newSequence();
            c.reserve(src, 10);                                // 3 pages, positions 0..9 written
            for (int p = 0; p < 10; p++) {
                write(c, src, p, 1);
            }
            int dst = c.newSequence();
            c.sharePrefix(src, dst, 9);                        // 2 full pages shared, the third (position 8) copied
            assertEquals(6, c.freePages(), "3 pages of src, one copy for dst");
            assertEquals(pages(c, src, 8), pages(c, dst, 8), "full pages are the same physical pages");
            assertNotEquals(c.page(src, 8), c.page(dst, 8), "the partly shared page is a copy");
            for (int p : pages(c, src, 8)) {
                assertEquals(2, c.holders(p));
            }
            assertEquals(1, c.holders(c.page(src, 8)));
            assertEquals(1, c.holders(c.page(dst, 8)));
            assertEquals(12, c.capacity(dst));
            for (int p = 0; p < 9; p++) {
                assertTrue(holds(c, dst, p, 1), "dst sees src's position " + p);
            }
            // dst continues at 9 in its own copy; src's position 9 is untouched
            c.checkBatch(entry(dst, 9));
            write(c, dst, 9, 2);
            assertTrue(holds(c, src, 9, 1));
            assertTrue(holds(c, dst, 9, 2));
            // a write into a shared page is refused for both sharers
            for (int[] bad : new int[][] {{src, 0}, {src, 7}, {dst, 3}, {dst, 4}}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.checkBatch(entry(bad[0], bad[1])));
                assertTrue(e.getMessage().contains("shared"), e.getMessage());
            }
            c.checkBatch(entry(src, 8));
            // releasing src keeps dst's pages: the shared ones now belong to dst alone
            List<Integer> shared = pages(c, dst, 8);
            c.freeSequence(src);
            assertEquals(7, c.freePages(), "only src's private page went back");
            for (int p : shared) {
                assertEquals(1, c.holders(p));
            }
            for (int p = 0; p < 10; p++) {
                assertTrue(holds(c, dst, p, p < 9 ? 1 : 2), "dst keeps position " + p);
            }
            c.checkBatch(entry(dst, 0));                       // no longer shared: writable
            c.freeSequence(dst);
            assertEquals(10, c.freePages(), "every page is back");
        }
    }

    @Test
    void sharingWholePagesCopiesNothingAndTruncatingIntoASharedPageCopiesIt() {
        try (HostKvCache c = cache(8, 3, 32)) {
            int src = c.newSequence();
            c.reserve(src, 12);
            for (int p = 0; p < 12; p++) {
                write(c, src, p, 1);
            }
            int dst = c.newSequence();
            c.sharePrefix(src, dst, 8);                        // exactly 2 pages: nothing copied
            assertEquals(5, c.freePages());
            assertEquals(pages(c, src, 8), pages(c, dst, 8));
            c.reserve(dst, 10);                                // dst's next page is its own
            assertEquals(4, c.freePages());
            assertNotEquals(c.page(src, 8), c.page(dst, 8));
            c.checkBatch(entry(dst, 8));
            // src rewinds into its second (shared) page: it gets a copy, dst keeps the original
            int sharedPage = c.page(src, 4);
            c.truncate(src, 6);
            assertEquals(sharedPage, c.page(dst, 4));
            assertNotEquals(sharedPage, c.page(src, 4), "src writes position 6 next: into its own copy");
            assertEquals(1, c.holders(sharedPage));
            assertEquals(2, c.holders(c.page(src, 0)), "the first page stays shared");
            assertEquals(4, c.freePages(), "src's third page went back, its copy of the second came out of the pool");
            for (int p = 0; p < 6; p++) {
                assertTrue(holds(c, src, p, 1), "the copy holds src's position " + p);
            }
            c.checkBatch(entry(src, 6));
            write(c, src, 6, 3);
            assertTrue(holds(c, dst, 6, 1), "dst does not see src's rewrite");
            // rewinding to a page boundary inside shared pages copies nothing: the next write needs a new page
            int third = c.newSequence();
            c.sharePrefix(dst, third, 8);
            int free = c.freePages();
            c.truncate(third, 4);
            assertEquals(free, c.freePages());
            assertEquals(c.page(dst, 0), c.page(third, 0));
            assertEquals(4, c.capacity(third));
        }
    }

    @Test
    void sharingIsRefusedWhenItCannotBeDoneSafely() {
        try (HostKvCache c = cache(4, 3, 32)) {
            int src = c.newSequence();
            int dst = c.newSequence();
            c.reserve(src, 10);                                // 3 of 4 pages
            assertThrows(IllegalArgumentException.class, () -> c.sharePrefix(src, dst, 13), "more than src holds");
            assertThrows(IllegalArgumentException.class, () -> c.sharePrefix(src, dst, -1));
            assertThrows(IllegalArgumentException.class, () -> c.sharePrefix(src, src, 4));
            assertThrows(IllegalArgumentException.class, () -> c.sharePrefix(src, 2, 4), "a sequence that is not open");
            c.reserve(dst, 1);
            assertThrows(IllegalArgumentException.class, () -> c.sharePrefix(src, dst, 4), "dst already holds pages");
            assertEquals(0, c.freePages());
            c.truncate(dst, 0);
            assertEquals(1, c.freePages());
            int third = c.newSequence();
            c.reserve(third, 4);                               // the last free page
            CriaException e = assertThrows(CriaException.class, () -> c.sharePrefix(src, dst, 6), "the copy of page 2 needs a free page");
            assertTrue(e.getMessage().contains("out of pages"), e.getMessage());
            assertEquals(0, c.capacity(dst), "a refused share changes nothing");
            assertEquals(1, c.holders(c.page(src, 0)));
            c.sharePrefix(src, dst, 8);                        // whole pages need no free page
            assertEquals(2, c.holders(c.page(src, 0)));
            assertEquals(0, c.freePages());
            CriaException t = assertThrows(CriaException.class, () -> c.truncate(dst, 5), "the copy on write needs a free page");
            assertTrue(t.getMessage().contains("out of pages"), t.getMessage());
            assertEquals(8, c.capacity(dst));
            assertThrows(IllegalArgumentException.class, () -> c.checkBatch(entry(dst, 5)), "so the page stays read-only");
            c.freeSequence(third);
            c.truncate(dst, 5);                                // now the copy has a page
            c.checkBatch(entry(dst, 5));
            assertEquals(1, c.holders(c.page(src, 4)));
            assertEquals(0, c.freePages());
        }
    }
}
