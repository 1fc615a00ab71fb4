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
 * context checks as a session. Prompt prefixes are not shared between sequences yet (each holds
 * its own pages; {@link KvCache#sharePrefix} is the mechanism for it).
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
     */
    public record Options(int parallel, int contextLength, int batchSize, int cachePositions, KvCache.Type kvType) {
        /** 8 sequences of up to 2048 positions, 512 tokens per step, a pool of parallel x context positions, F16 cache. */
        public static Options defaults() {
            return new Options(8, 2048, 512, 0, KvCache.Type.F16);
        }
    }

    /** Aggregate counters (read them after {@link #close()} or as a snapshot). */
    public record Stats(long steps, long promptTokens, long generatedTokens, long busyNanos, long decodeSteps,
                        long decodeTokens, long decodeNanos) {
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
        if (options.parallel() < 1 || options.contextLength() < 2 || options.batchSize() < 1 || options.cachePositions() < 0) {
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
        long tableEntries = (long) options.parallel() * ((options.contextLength() + (long) PAGE - 1) / PAGE);
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
        // many sequences driven by a worker thread: the same loop a Session runs with one
        this.loop = new Scheduler(model, new KvCache.Config(c.layers(), c.kvDim(), options.kvType(), PAGE, (int) pages,
                options.parallel(), options.contextLength()), rows, options.parallel(), options.contextLength());
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
            queue.add(new Pending(prompt.clone(), options, listener, f));
            queue.notifyAll();
        }
        return f;
    }

    /** Requests queued or running. */
    public int inFlight() {
        synchronized (queue) {
            return queue.size() + running.size();
        }
    }

    /** Counters so far (safe to call from any thread). */
    public synchronized Stats stats() {
        return new Stats(steps, promptTokens, generatedTokens, busyNanos, decodeSteps, decodeTokens, decodeNanos);
    }

    private void work() {
        try {
            while (true) {
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
     * next request waits for pages to be freed.
     */
    private boolean admit() {
        while (true) {
            Pending p;
            synchronized (queue) {
                p = queue.peek();
                if (p == null || running.size() >= options.parallel()) {
                    return true;
                }
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
            if (cache.pagesFor(need) > cache.freePages()) {
                return false; // wait for a running sequence to finish
            }
            synchronized (queue) {
                queue.poll();
            }
            Running r = new Running(p, loop.newSequenceId(), need + 1);
            cache.reserve(r.id, need);
            loop.feed(r, p.prompt, 0, p.prompt.length);
            r.stream = new TokenStream(model.tokenizer(), vocab, p.options, p.listener, r.tokens, r.length);
            running.add(r);
        }
    }

    private void step() {
        long t0 = System.nanoTime();
        loop.step();
        List<Sequence> ended = loop.ended();
        for (int i = 0; i < ended.size(); i++) {
            finish((Running) ended.get(i));
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
        loop.free(r);
        if (r.failure != null) {
            r.req.result.completeExceptionally(r.failure);
            return;
        }
        long end = System.nanoTime();
        r.req.result.complete(r.stream.result(r.req.prompt.length, r.firstLogits - r.admitted, end - r.firstLogits));
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
