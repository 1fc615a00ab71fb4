// Continuous batching: many sequences decoded together over one paged KV cache, each with its own settings and callback.
package cria.engine;

import cria.CriaException;
import cria.backend.KvCache;
import cria.model.Llama;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Runs many generations at once. Each forward step carries the one decode token of every running
 * sequence plus chunks of new prompts (continuous batching), so the weights are read once per
 * step for all of them. Sequences take pages from one KV pool; a sequence is admitted only when
 * pages for its whole length (prompt + max tokens, within the context) are free, so memory is
 * never over-committed and nothing is ever evicted. Every sequence samples with its own
 * {@link TokenStream}, exactly as a lone {@link Session} does: both run the same loop
 * ({@link Scheduler}), so batching changes speed, never text, and a request meets the same
 * context checks as a session.
 *
 * <p><b>Shared prefixes.</b> A prompt that starts like a sequence already in the cache (running,
 * or finished recently and kept) takes that prefix's pages instead of computing it again
 * ({@link KvCache#sharePrefix}: full pages are shared read-only, a partial last page is copied),
 * so a system prompt common to many requests is computed once. Finished sequences keep their
 * evaluated positions (up to {@code parallel} of them, least recently used first out) while the
 * pool has room; admission evicts them before it ever waits. A request whose prompt extends a
 * prefix another sequence is still computing waits for it rather than computing it twice.
 * Positions computed by another sequence are the ones this sequence would have computed: the
 * text is the same either way.
 *
 * <p><b>Limits and cancelling.</b> {@link Options#maxQueue} bounds the requests waiting for a
 * slot: beyond it, {@link #submit} fails at once with a {@link QueueFullException}. Cancelling the
 * future {@link #submit} returned ({@code cancel(true)}) drops a queued request, or ends a running
 * one before the next step and frees its pages; its listener is not called after that step.
 *
 * <p>{@link #submit} may be called from any thread; the work runs on one scheduler thread, which
 * also calls the listeners. {@link #close()} finishes what was submitted, then stops.
 */
public final class BatchGenerator implements AutoCloseable {

    /**
     * @param parallel       sequences in flight at most
     * @param contextLength  positions one sequence may hold
     * @param batchSize    entries per forward step (decode tokens plus prompt chunks)
     * @param cachePositions positions of the shared KV pool (0: parallel x contextLength)
     * @param kvType         KV cache element type
     * @param maxQueue       requests that may wait for a slot beyond those running (0: no limit)
     */
    public record Options(int parallel, int contextLength, int batchSize, int cachePositions, KvCache.Type kvType, int maxQueue) {
        /** Options with no limit on the queue. */
        public Options(int parallel, int contextLength, int batchSize, int cachePositions, KvCache.Type kvType) {
            this(parallel, contextLength, batchSize, cachePositions, kvType, 0);
        }

        /** 8 sequences of up to 2048 positions, 512 tokens per step, a pool of parallel x context positions, F16 cache, no queue limit. */
        public static Options defaults() {
            return new Options(8, 2048, 512, 0, KvCache.Type.F16, 0);
        }
    }

    /** A request refused because {@link Options#maxQueue} requests already wait: try again later. */
    public static final class QueueFullException extends CriaException {
        QueueFullException(int waiting) {
            super("the server is busy: " + waiting + " requests are already waiting; try again later");
        }
    }

    /**
     * Aggregate counters (read them after {@link #close()} or as a snapshot).
     *
     * @param promptTokens       prompt tokens evaluated (not those taken from a shared prefix)
     * @param promptTokensReused prompt tokens taken from a shared prefix instead of being evaluated
     * @param queued             requests waiting for a slot
     * @param running            sequences in the loop
     * @param kvPagesTotal       pages of the KV pool
     * @param kvPagesUsed        pages held by any sequence (running or kept as a prefix)
     * @param kvPagesCached      pages held only by kept prefixes (freed when a request needs them); when
     *                           nothing runs, {@code kvPagesUsed == kvPagesCached}
     */
    public record Stats(long steps, long promptTokens, long generatedTokens, long busyNanos, long decodeSteps,
                        long decodeTokens, long decodeNanos, long promptTokensReused, int queued, int running,
                        int kvPagesTotal, int kvPagesUsed, int kvPagesCached) {
        /** Tokens per second of the steps that carried only decode tokens (llama-batched-bench's S_TG). */
        public double decodeTokensPerSecond() {
            return decodeNanos == 0 ? 0 : decodeTokens * 1e9 / decodeNanos;
        }
    }

    private static final int PAGE = 16;
    /** The most sequences one batch engine runs at once (each takes a logits row and a page-table row). */
    public static final int MAX_PARALLEL = 4096;

    private final Model model;
    private final Options options;
    private final Scheduler loop;
    private final KvCache cache;
    private final int vocab;
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private final List<Running> running = new ArrayList<>();
    /** Finished sequences kept for their prefixes, least recently used first. */
    private final ArrayDeque<Sequence> kept = new ArrayDeque<>();
    private final int keepLimit;
    private long promptTokensReused;
    private volatile int runningCount;
    private volatile int pagesUsed;
    private volatile int pagesCached;
    private final Thread worker;
    private volatile boolean closing;
    private volatile Throwable failure;
    private long steps;
    private long promptTokens;
    private long generatedTokens;
    private long busyNanos;
    private long decodeSteps;
    private long decodeTokens;
    private long decodeNanos;

    private record Pending(int[] prompt, GenerateOptions options, TokenListener listener, CompletableFuture<Generation> result) {}

    /** A request in the loop: its sequence and where its result goes. */
    private static final class Running extends Sequence {
        final Pending req;
        final long admitted = System.nanoTime();

        Running(Pending req, int id, int capacity) {
            super(id, capacity);
            this.req = req;
        }
    }

    /**
     * Opens the engine: allocates the shared KV pool and the activations once, and starts the
     * scheduler thread. Close it (before the model) to finish what was submitted and free them.
     *
     * @throws CriaException when an option is out of range or the pool would not fit this machine's memory
     */
    public BatchGenerator(Model model, Options options) {
        this.model = model;
        Llama llama = model.llama();
        this.options = options;
        this.vocab = model.config().vocab();
        if (options.parallel() < 1 || options.contextLength() < 2 || options.batchSize() < 1 || options.cachePositions() < 0
                || options.maxQueue() < 0) {
            throw new CriaException("batch options must be positive (cache positions 0 or more): " + options);
        }
        if (options.parallel() > MAX_PARALLEL) {
            throw new CriaException(options.parallel() + " parallel sequences are more than the " + MAX_PARALLEL
                    + " one batch engine runs; lower --parallel");
        }
        // Sizes from the caller, checked in long against the page table and the machine before
        // anything is allocated (parallel x context easily overflows an int).
        long positions = options.cachePositions() > 0 ? options.cachePositions() : (long) options.parallel() * options.contextLength();
        long pages = (positions + PAGE - 1) / PAGE;
        long tableEntries = 2L * options.parallel() * ((options.contextLength() + (long) PAGE - 1) / PAGE);
        if (pages > MemoryBudget.MAX_ARRAY || tableEntries > MemoryBudget.MAX_ARRAY) {
            throw new CriaException("a KV pool of " + positions + " positions for " + options.parallel() + " sequences of "
                    + options.contextLength() + " is too large; lower --parallel, --ctx or --cache-tokens");
        }
        var c = model.config();
        int rows = Math.max(options.batchSize(), options.parallel());
        long kvBytes = KvCache.Config.bytesFor(c.layers(), c.kvDim(), options.kvType(), positions, PAGE);
        MemoryBudget.check(model, MemoryBudget.sum(kvBytes, llama.scratchBytes(rows, options.parallel())),
                (long) options.parallel() * vocab, "a KV pool of " + positions + " positions with " + options.parallel()
                        + " sequences and steps of " + rows + " tokens", "lower --parallel, --ctx, --cache-tokens or --batch-size");
        // many sequences driven by a worker thread: the same loop a Session runs with one; the cache
        // has a sequence slot per running request and per kept prefix
        this.keepLimit = options.parallel();
        this.loop = new Scheduler(model, new KvCache.Config(c.layers(), c.kvDim(), options.kvType(), PAGE, (int) pages,
                options.parallel() + keepLimit, options.contextLength()), rows, options.parallel(), options.contextLength());
        this.cache = loop.cache();
        this.worker = new Thread(this::work, "cria-batch");
        this.worker.setDaemon(true);
        this.worker.start();
    }

    /** Tokenizes {@code prompt} (BOS as the vocabulary asks, special tokens parsed) and submits it. */
    public CompletableFuture<Generation> submit(String prompt, GenerateOptions options, TokenListener listener) {
        return submit(model.tokenizer().encode(prompt, true, true), options, listener);
    }

    /**
     * Queues a generation. The future completes with the {@link Generation}, or exceptionally
     * with a {@link CriaException} when the request cannot run (empty prompt, prompt longer than
     * the context, with the message a {@link Session} gives; more pages than the whole pool), or
     * with what its listener threw (the other requests go on).
     */
    public CompletableFuture<Generation> submit(int[] prompt, GenerateOptions options, TokenListener listener) {
        CompletableFuture<Generation> f = new CompletableFuture<>();
        if (closing) {
            f.completeExceptionally(new IllegalStateException("batch generator is closed"));
            return f;
        }
        synchronized (queue) {
            int waiting = queue.size() + Math.max(0, runningCount - this.options.parallel());
            if (this.options.maxQueue() > 0 && queue.size() >= this.options.maxQueue()) {
                f.completeExceptionally(new QueueFullException(waiting));
                return f;
            }
            queue.add(new Pending(prompt.clone(), options, listener, f));
            queue.notifyAll();
        }
        return f;
    }

    /** Requests queued or running. */
    public int inFlight() {
        synchronized (queue) {
            return queue.size() + runningCount;
        }
    }

    /** Counters so far (safe to call from any thread). */
    public Stats stats() {
        int queued;
        synchronized (queue) {
            queued = queue.size();
        }
        synchronized (this) {
            return new Stats(steps, promptTokens, generatedTokens, busyNanos, decodeSteps, decodeTokens, decodeNanos,
                    promptTokensReused, queued, runningCount, cache.config().pages(), pagesUsed, pagesCached);
        }
    }

    private void work() {
        try {
            while (true) {
                dropCancelled();
                if (!admit() && running.isEmpty()) {
                    // Every page is free when nothing runs, and no request is queued that needs more
                    // than the pool: waiting here would never end. Fail loudly instead of spinning.
                    throw new IllegalStateException("internal error: the KV cache holds " + cache.freePages() + " free pages of "
                            + cache.config().pages() + " with no sequence running, too few for the next request");
                }
                if (running.isEmpty()) {
                    synchronized (queue) {
                        if (queue.isEmpty()) {
                            if (closing) {
                                return;
                            }
                            queue.wait(50);
                        }
                    }
                    continue;
                }
                step();
            }
        } catch (Throwable t) {
            failure = t;
            synchronized (queue) {
                for (Pending p : queue) {
                    p.result.completeExceptionally(t);
                }
                queue.clear();
            }
            for (Running r : running) {
                r.req.result.completeExceptionally(t);
            }
        }
    }

    /**
     * Moves queued requests into the running set while sequences and pages allow; false when the
     * next request waits for pages to be freed or for a prefix another sequence is computing.
     */
    private boolean admit() {
        boolean changed = false;
        try {
            while (true) {
                Pending p;
                synchronized (queue) {
                    p = queue.peek();
                    if (p == null || running.size() >= options.parallel()) {
                        return true;
                    }
                }
                if (p.result.isDone()) { // cancelled while queued
                    synchronized (queue) {
                        queue.poll();
                    }
                    continue;
                }
                int ctx = options.contextLength();
                // The pages a sequence may ever use: its prompt and max tokens, clamped to the context,
                // in long: a max_tokens near 2^31 must not wrap around to a negative need.
                int need = (int) Math.min(ctx, (long) p.prompt.length + Math.max(1, p.options.maxTokens()));
                CriaException bad = null;
                if (p.prompt.length == 0) {
                    bad = new CriaException("empty prompt");
                } else {
                    try {
                        loop.check(0, p.prompt, 0, p.prompt.length);
                    } catch (CriaException e) {
                        bad = e;
                    }
                }
                if (bad == null && cache.pagesFor(need) > cache.config().pages()) {
                    bad = new CriaException("needs " + cache.pagesFor(need) + " KV pages, the whole pool has " + cache.config().pages());
                }
                if (bad != null) {
                    synchronized (queue) {
                        queue.poll();
                    }
                    p.result.completeExceptionally(bad);
                    continue;
                }
                // The longest prefix of the prompt that a sequence holds, leaving one token to evaluate
                // (its logits start the generation); a running sequence still computing a longer one is waited for.
                int limit = p.prompt.length - 1;
                Sequence donor = null;
                int common = 0;
                for (Running r : running) {
                    int planned = commonPrefix(r.tokens, r.length, p.prompt, limit);
                    if (planned >= PAGE && planned > r.position && planned > common) {
                        return false; // r computes this prefix now: share it once it is there
                    }
                    int c = Math.min(planned, r.position);
                    if (c > common) {
                        common = c;
                        donor = r;
                    }
                }
                for (Sequence k : kept) {
                    int c = commonPrefix(k.tokens, k.position, p.prompt, limit);
                    if (c > common) {
                        common = c;
                        donor = k;
                    }
                }
                if (common < PAGE) { // less than a page: computing it is cheaper than copying
                    common = 0;
                    donor = null;
                }
                // Pages this sequence takes from the pool: those beyond the shared full pages.
                int fresh = cache.pagesFor(need) - common / PAGE;
                while (fresh > cache.freePages() && evictOne(donor)) {
                    changed = true;
                }
                if (fresh > cache.freePages()) {
                    return false; // wait for a running sequence to finish
                }
                synchronized (queue) {
                    queue.poll();
                }
                Running r = new Running(p, loop.newSequenceId(), need + 1);
                if (donor != null) {
                    cache.sharePrefix(donor.id, r.id, common);
                    System.arraycopy(p.prompt, 0, r.tokens, 0, common);
                    r.position = common;
                    r.length = common;
                    if (donor instanceof Running == false) { // a kept prefix just used: most recent now
                        kept.remove(donor);
                        kept.addLast(donor);
                    }
                    synchronized (this) {
                        promptTokensReused += common;
                    }
                }
                cache.reserve(r.id, need);
                loop.feed(r, p.prompt, common, p.prompt.length - common);
                r.stream = new TokenStream(model.tokenizer(), vocab, p.options, p.listener, r.tokens, r.length);
                running.add(r);
                changed = true;
            }
        } finally {
            if (changed) {
                countPages();
            }
        }
    }

    /** Tokens {@code a[0, an)} and {@code b} have in common at their start, at most {@code limit}. */
    private static int commonPrefix(int[] a, int an, int[] b, int limit) {
        int n = Math.min(Math.min(an, b.length), limit);
        int i = 0;
        while (i < n && a[i] == b[i]) {
            i++;
        }
        return i;
    }

    /** Frees the least recently used kept prefix other than {@code spare}; false when there is none. */
    private boolean evictOne(Sequence spare) {
        for (var it = kept.iterator(); it.hasNext(); ) {
            Sequence k = it.next();
            if (k != spare) {
                it.remove();
                cache.freeSequence(k.id);
                return true;
            }
        }
        return false;
    }

    /** Ends running sequences whose futures were cancelled, before the next step. */
    private void dropCancelled() {
        boolean any = false;
        for (int i = running.size() - 1; i >= 0; i--) {
            Running r = running.get(i);
            if (r.req.result.isCancelled()) {
                running.remove(i);
                loop.park(r);
                keep(r);
                any = true;
            }
        }
        if (any) {
            countPages();
        }
    }

    private void step() {
        long t0 = System.nanoTime();
        loop.step();
        List<Sequence> ended = loop.ended();
        for (int i = 0; i < ended.size(); i++) {
            finish((Running) ended.get(i));
        }
        if (!ended.isEmpty()) {
            countPages();
        }
        synchronized (this) {
            long took = System.nanoTime() - t0;
            int prompts = loop.promptEntries();
            steps++;
            promptTokens += prompts;
            generatedTokens += loop.sampled();
            busyNanos += took;
            if (prompts == 0) {
                decodeSteps++;
                decodeTokens += loop.sampled();
                decodeNanos += took;
            }
        }
    }

    private void finish(Running r) {
        running.remove(r);
        if (r.failure != null) {
            loop.free(r);
            r.req.result.completeExceptionally(r.failure);
            return;
        }
        keep(r);
        long end = System.nanoTime();
        r.req.result.complete(r.stream.result(r.req.prompt.length, r.firstLogits - r.admitted, end - r.firstLogits));
    }

    /**
     * Keeps the evaluated positions of a sequence that left the loop as a prefix others may share
     * (pages reserved beyond them go back to the pool), or frees it when it holds less than a page.
     */
    private void keep(Running r) {
        loop.park(r);
        int positions = r.position;
        if (positions < PAGE) {
            cache.freeSequence(r.id);
            return;
        }
        try {
            cache.truncate(r.id, positions);
        } catch (CriaException e) { // no page for a private copy of a shared last page: just free it
            cache.freeSequence(r.id);
            return;
        }
        Sequence k = new Sequence(r.id, 1);
        k.tokens = r.tokens;
        k.position = positions;
        k.length = positions;
        kept.addLast(k);
        while (kept.size() > keepLimit) {
            cache.freeSequence(kept.pollFirst().id);
        }
    }

    /**
     * Publishes the running count and the page counts for {@link #stats()} (pages in use, and those
     * only kept prefixes hold); called after every change to either.
     */
    private void countPages() {
        int total = cache.config().pages();
        int used = total - cache.freePages();
        java.util.BitSet live = new java.util.BitSet(total);
        for (Running r : running) {
            int held = cache.pagesFor(cache.capacity(r.id));
            for (int i = 0; i < held; i++) {
                live.set(cache.page(r.id, i * PAGE));
            }
        }
        synchronized (this) { // one snapshot: "nothing running" is never read beside the pages it still held
            runningCount = running.size();
            pagesUsed = used;
            pagesCached = used - live.cardinality();
        }
    }

    /** Finishes everything submitted, then releases the cache. */
    @Override
    public void close() {
        closing = true;
        synchronized (queue) {
            queue.notifyAll();
        }
        try {
            worker.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        loop.close();
        if (failure instanceof RuntimeException re) {
            throw re;
        }
        if (failure instanceof Error err) {
            throw err;
        }
    }
}
