// The paged KV cache: fixed-size pages from one pool, a page table per sequence; backends hold the memory.
package cria.backend;

import cria.CriaException;
import java.util.Arrays;

/**
 * Keys and values of every layer for many sequences, in pages of {@link #pageSize()} positions
 * taken from one pool. A sequence's page table maps its logical page i (positions
 * {@code i*pageSize ..}) to a physical page. Memory layout (the same on every backend), for K
 * and for V separately: element {@code ((layer * pages + page) * pageSize + slot) * kvDim + d}.
 * Pages are reference-counted so that sequences may share the pages of a common prompt prefix
 * ({@link #sharePrefix}). A shared page is read-only: no batch entry may write into it
 * ({@link #checkBatch} refuses), and the operations that would leave a sequence about to write
 * into one ({@link #sharePrefix} of a partly filled page, {@link #truncate} into a shared page)
 * give that sequence its own copy of the page first (copy on write).
 * <p>Bookkeeping here is plain Java; subclasses own the storage (off-heap or device memory) and
 * copy bytes within it ({@link #copyKeysAndValues}).
 */
public abstract class KvCache implements AutoCloseable {

    /** Element type of the cache. */
    public enum Type {
        F16(2), F32(4);

        private final int bytes;

        Type(int bytes) {
            this.bytes = bytes;
        }

        public int bytes() {
            return bytes;
        }
    }

    /**
     * Geometry of a cache. {@code contextLength} bounds one sequence. Every
     * size derived from these numbers is computed in long and must fit what holds it (the page
     * table is a Java array; element indices are longs): a geometry that does not is refused here,
     * before anything is allocated. Callers that take these numbers from people check them first
     * and say what to change; this is the backstop.
     */
    public record Config(int layers, int kvDim, Type type, int pageSize, int pages, int maxSequences, int contextLength) {
        /** The most entries a page table may have (a Java array; the JVM's limit is a little below Integer.MAX_VALUE). */
        public static final long MAX_TABLE = Integer.MAX_VALUE - 8;

        public Config {
            if (layers <= 0 || kvDim <= 0 || pageSize <= 0 || pages <= 0 || maxSequences <= 0 || contextLength <= 0
                    || type == null) {
                throw new IllegalArgumentException("bad KV cache geometry: " + this);
            }
            if ((long) maxSequences * pagesPerSequence(contextLength, pageSize) > MAX_TABLE) {
                throw new IllegalArgumentException("KV cache page table too large: " + this);
            }
            try {
                Math.multiplyExact(Math.multiplyExact(Math.multiplyExact(2L * layers, pages), (long) pageSize),
                        Math.multiplyExact((long) kvDim, type.bytes()));
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("KV cache too large: " + this);
            }
        }

        private static long pagesPerSequence(long positions, long pageSize) {
            return (positions + pageSize - 1) / pageSize;
        }

        /** Pages one sequence may need at most. */
        public int maxPagesPerSequence() {
            return (int) pagesPerSequence(contextLength, pageSize);
        }

        /** Bytes of K plus V. */
        public long bytes() {
            return 2L * layers * pages * pageSize * kvDim * type.bytes();
        }

        /** Bytes of K plus V that a cache of these shapes takes for {@code positions} positions in pages of {@code pageSize}. */
        public static long bytesFor(int layers, int kvDim, Type type, long positions, int pageSize) {
            long pages = pagesPerSequence(positions, pageSize);
            try {
                return Math.multiplyExact(Math.multiplyExact(Math.multiplyExact(2L * layers, pages), (long) pageSize),
                        Math.multiplyExact((long) kvDim, type.bytes()));
            } catch (ArithmeticException e) {
                return Long.MAX_VALUE;
            }
        }

        /** A cache for one sequence of {@code ctx} positions. */
        public static Config single(int layers, int kvDim, Type type, int ctx) {
            int pageSize = Math.min(64, ctx);
            return new Config(layers, kvDim, type, pageSize, (int) pagesPerSequence(ctx, pageSize), 1, ctx);
        }
    }

    protected final Config config;
    private final int[] freeStack;
    private int freeTop;
    private final int[] refCount;
    private final int[] table;
    private final int[] pagesHeld;
    private final boolean[] live;
    private long version;

    protected KvCache(Config config) {
        this.config = config;
        this.freeStack = new int[config.pages()];
        for (int i = 0; i < config.pages(); i++) {
            freeStack[i] = config.pages() - 1 - i;
        }
        this.freeTop = config.pages();
        this.refCount = new int[config.pages()];
        this.table = new int[config.maxSequences() * config.maxPagesPerSequence()];
        this.pagesHeld = new int[config.maxSequences()];
        this.live = new boolean[config.maxSequences()];
    }

    public Config config() {
        return config;
    }

    public int pageSize() {
        return config.pageSize();
    }

    public int kvDim() {
        return config.kvDim();
    }

    /** Pages not held by any sequence. */
    public int freePages() {
        return freeTop;
    }

    /** Pages needed to hold {@code positions} positions (0 or more). */
    public int pagesFor(int positions) {
        if (positions < 0) {
            throw new IllegalArgumentException("negative number of positions: " + positions);
        }
        return (int) (((long) positions + config.pageSize() - 1) / config.pageSize());
    }

    /** Opens a sequence; returns its id. */
    public int newSequence() {
        for (int s = 0; s < live.length; s++) {
            if (!live[s]) {
                live[s] = true;
                pagesHeld[s] = 0;
                return s;
            }
        }
        throw new IllegalStateException("all " + live.length + " sequences of the KV cache are in use");
    }

    /** Releases a sequence and the pages only it held. */
    public void freeSequence(int seq) {
        truncate(seq, 0);
        live[seq] = false;
    }

    /** Number of positions a sequence can hold without taking more pages. */
    public int capacity(int seq) {
        return (int) Math.min(Integer.MAX_VALUE, (long) pagesHeld[seq] * config.pageSize());
    }

    /** True when {@link #reserve} of {@code positions} for {@code seq} would succeed. */
    public boolean canReserve(int seq, int positions) {
        return positions >= 0 && positions <= config.contextLength() && pagesFor(positions) - pagesHeld[seq] <= freeTop;
    }

    /**
     * Makes sure the sequence has pages for positions {@code [0, positions)}.
     *
     * @throws CriaException when the context length is exceeded or the pool is out of pages
     */
    public void reserve(int seq, int positions) {
        checkLive(seq);
        if (positions < 0) {
            // a negative need is an overflow upstream: reserving nothing would let the sequence
            // write into pages it does not hold (another sequence's)
            throw new IllegalArgumentException("cannot reserve " + positions + " positions for sequence " + seq);
        }
        if (positions > config.contextLength()) {
            throw new CriaException("context full: " + positions + " positions needed but the context holds "
                    + config.contextLength() + "; raise --ctx or shorten the prompt");
        }
        int need = pagesFor(positions);
        if (need - pagesHeld[seq] > freeTop) {
            throw outOfPages(need);
        }
        if (pagesHeld[seq] >= need) {
            return; // the page table is unchanged: a device copy of it stays valid
        }
        int base = seq * config.maxPagesPerSequence();
        while (pagesHeld[seq] < need) {
            int p = freeStack[--freeTop];
            refCount[p] = 1;
            table[base + pagesHeld[seq]++] = p;
        }
        version++;
    }

    /**
     * Keeps only positions {@code [0, positions)}, returning whole pages beyond to the pool. When
     * the page holding position {@code positions} (the next one written) is kept and shared, the
     * sequence gets its own copy of it, so that its next writes do not change the other sharers.
     *
     * @throws CriaException when that copy needs a page and the pool has none (the truncation is done; the page stays shared and read-only)
     */
    public void truncate(int seq, int positions) {
        checkLive(seq);
        if (positions < 0) {
            throw new IllegalArgumentException("cannot truncate sequence " + seq + " to " + positions + " positions");
        }
        int keep = pagesFor(positions);
        int base = seq * config.maxPagesPerSequence();
        if (pagesHeld[seq] > keep) {
            while (pagesHeld[seq] > keep) {
                release(table[base + --pagesHeld[seq]]);
            }
            version++;
        }
        if (positions % config.pageSize() != 0 && keep <= pagesHeld[seq] && refCount[table[base + keep - 1]] > 1) {
            ownCopy(seq, keep - 1);
        }
    }

    /**
     * Makes {@code dst} (an open sequence holding no pages) start with positions
     * {@code [0, positions)} of {@code src}: the full pages among them are shared (reference
     * counted, not copied; read-only while shared), a partly filled last page is copied, since
     * {@code dst} writes its next position into it. {@code dst} then continues at
     * {@code positions}; releasing either sequence leaves the other's pages intact.
     *
     * @throws IllegalArgumentException when {@code dst} holds pages or {@code src} holds fewer than {@code positions}
     * @throws CriaException            when the copy of the last page needs a page and the pool has none (nothing changed)
     */
    public void sharePrefix(int src, int dst, int positions) {
        checkLive(src);
        checkLive(dst);
        if (src == dst || pagesHeld[dst] != 0 || positions < 0 || positions > capacity(src)) {
            throw new IllegalArgumentException("cannot share " + positions + " positions of sequence " + src + " (holding "
                    + capacity(src) + ") with sequence " + dst + " (holding " + capacity(dst) + ")");
        }
        int pages = pagesFor(positions);
        boolean partial = positions % config.pageSize() != 0;
        if (partial && freeTop == 0) {
            throw outOfPages(pages);
        }
        int sb = src * config.maxPagesPerSequence();
        int db = dst * config.maxPagesPerSequence();
        for (int i = 0; i < pages; i++) {
            int p = table[sb + i];
            refCount[p]++;
            table[db + i] = p;
        }
        pagesHeld[dst] = pages;
        version++;
        if (partial) {
            ownCopy(dst, pages - 1);
        }
    }

    /** Gives {@code seq} a private copy of its logical page {@code i} (shared until now). */
    private void ownCopy(int seq, int i) {
        if (freeTop == 0) {
            throw outOfPages(pagesHeld[seq]);
        }
        int at = seq * config.maxPagesPerSequence() + i;
        int shared = table[at];
        int own = freeStack[--freeTop];
        refCount[own] = 1;
        copyPage(shared, own);
        table[at] = own;
        release(shared);
        version++;
    }

    private void release(int page) {
        if (--refCount[page] == 0) {
            freeStack[freeTop++] = page;
        }
    }

    private CriaException outOfPages(int need) {
        return new CriaException("KV cache out of pages: sequence needs " + need + " pages, " + freeTop
                + " free of " + config.pages() + "; lower --parallel or raise the cache size");
    }

    /** How many sequences hold physical page {@code page} (0 when it is free). */
    public int holders(int page) {
        return refCount[page];
    }

    /**
     * Copies every layer's keys and values of physical page {@code from} into page {@code to}
     * (queued on the device before any later step, on a GPU).
     */
    private void copyPage(int from, int to) {
        long elem = config.type().bytes();
        long bytes = (long) config.pageSize() * config.kvDim() * elem;
        for (int l = 0; l < config.layers(); l++) {
            copyKeysAndValues(index(l, from, 0) * elem, index(l, to, 0) * elem, bytes);
        }
    }

    /**
     * Copies {@code bytes} bytes at byte offset {@code src} to byte offset {@code dst}, in the keys
     * and in the values storage alike (the two share one layout). On a GPU: queued on the stream.
     */
    protected abstract void copyKeysAndValues(long src, long dst, long bytes);

    private void checkLive(int seq) {
        if (seq < 0 || seq >= live.length || !live[seq]) {
            throw new IllegalArgumentException("sequence " + seq + " is not open in this KV cache");
        }
    }

    /**
     * Checks that every entry of a batch writes and reads only pages its own sequence holds: an
     * open sequence, a position in {@code [0, capacity)}, in a page no other sequence shares
     * (every entry writes its keys and values at its position). Called before every forward
     * step, so that no bookkeeping mistake upstream can make one sequence write into another's
     * pages (or native code read outside the cache).
     *
     * @throws IllegalArgumentException naming the first entry that does not fit
     */
    public void checkBatch(Batch batch) {
        for (int i = 0; i < batch.size(); i++) {
            int seq = batch.sequence(i);
            int pos = batch.position(i);
            if (seq < 0 || seq >= live.length || !live[seq] || pos < 0 || pos >= (long) pagesHeld[seq] * config.pageSize()) {
                throw new IllegalArgumentException("batch entry " + i + " (sequence " + seq + ", position " + pos
                        + ") lies outside the pages its sequence holds (" + (seq >= 0 && seq < live.length ? capacity(seq) : 0)
                        + " positions)");
            }
            if (refCount[page(seq, pos)] != 1) {
                throw new IllegalArgumentException("batch entry " + i + " (sequence " + seq + ", position " + pos
                        + ") would write into a page shared with another sequence");
            }
        }
    }

    /** Physical page holding position {@code pos} of {@code seq}. */
    public int page(int seq, int pos) {
        return table[seq * config.maxPagesPerSequence() + pos / config.pageSize()];
    }

    /** The flat page table: sequence s's pages at {@code [s * maxPagesPerSequence, ...)}. */
    public int[] pageTable() {
        return table;
    }

    /** Changes whenever a page table changes (backends that mirror it on a device re-upload then). */
    public long version() {
        return version;
    }

    /** Element index of (layer, page, slot, 0) in the K or V storage. */
    public long index(int layer, int page, int slot) {
        return (((long) layer * config.pages() + page) * config.pageSize() + slot) * config.kvDim();
    }

    /** Element index of position {@code pos} of {@code seq} in {@code layer}. */
    public long positionIndex(int layer, int seq, int pos) {
        return index(layer, page(seq, pos), pos % config.pageSize());
    }

    @Override
    public String toString() {
        return "KvCache" + config + " free=" + freeTop + " held=" + Arrays.toString(pagesHeld);
    }

    @Override
    public abstract void close();
}
