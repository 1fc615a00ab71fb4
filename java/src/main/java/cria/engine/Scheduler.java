// The one generation loop: admits sequences, packs their tokens into forward steps, checks the context, samples.
package cria.engine;

import cria.CriaException;
import cria.backend.Batch;
import cria.backend.DeviceSampler;
import cria.backend.KvCache;
import cria.model.Llama;
import cria.sample.SamplerParams;
import java.util.ArrayList;
import java.util.List;

/**
 * Owns the KV cache, the {@link Batch}, the activations and the host logits of one
 * {@link Session} or {@link BatchGenerator}, and runs their sequences: each {@link #step()} takes
 * the one decode token of every generating sequence, then chunks of waiting prompts in the order
 * they were queued, up to the batch size; runs {@code Llama.forward}; and hands every logits row
 * to its sequence: sampled (on the host, or on the device when the settings allow and the row is
 * the step's only one), given to a sink, or kept as the last logits. A session is this loop with
 * one sequence driven by the caller's thread; a batch engine is the same loop with many, driven
 * by its worker thread. The context is checked here and only here ({@link #check}, and the
 * room left after each sample), so both give the same errors and stop at the same place.
 * <p>Not thread-safe. Nothing is allocated per step: the batch, the scratch, the logits and the
 * row table are sized once.
 */
final class Scheduler implements AutoCloseable {
    private final Model model;
    private final Llama llama;
    private final KvCache cache;
    private final Batch batch;
    private final Llama.Scratch scratch;
    private final float[] logits;
    private final int vocab;
    private final int contextLength;
    private final List<Sequence> active = new ArrayList<>();
    private final List<Sequence> ended;
    /** The sequence of each logits row of the step being run. */
    private final Sequence[] rows;
    private final int[] pick = new int[1];
    private final double[] uniform = new double[1];
    private int promptEntries;
    private int sampled;

    /**
     * @param batchSize     entries per forward step
     * @param maxLogits     logits rows per step at most (one per generating sequence, or every entry of an evalAll)
     * @param contextLength positions one sequence may hold
     */
    Scheduler(Model model, KvCache.Config cacheConfig, int batchSize, int maxLogits, int contextLength) {
        this.model = model;
        this.llama = model.llama();
        this.vocab = model.config().vocab();
        this.contextLength = contextLength;
        this.cache = model.backend().kvCache(cacheConfig);
        try {
            this.batch = new Batch(batchSize);
            this.scratch = llama.newScratch(batchSize, maxLogits);
            this.logits = new float[scratch.maxLogits() * vocab];
        } catch (RuntimeException | Error e) {
            cache.close();
            throw e;
        }
        this.rows = new Sequence[scratch.maxLogits()];
        this.ended = new ArrayList<>(cacheConfig.maxSequences());
    }

    KvCache cache() {
        return cache;
    }

    int contextLength() {
        return contextLength;
    }

    /** Opens a sequence in the cache for a {@link Sequence} (or subclass) to hold. */
    int newSequenceId() {
        return cache.newSequence();
    }

    /** Takes a sequence out of the loop and gives its pages back. */
    void free(Sequence s) {
        deactivate(s);
        cache.freeSequence(s.id);
    }

    /**
     * The context check: {@code n} tokens after {@code position} must fit the context, and every
     * token must be in the vocabulary.
     *
     * @throws CriaException saying what does not fit
     */
    void check(int position, int[] tokens, int off, int n) {
        long needed = (long) position + n;
        if (needed > contextLength) {
            throw new CriaException("the input does not fit the context: " + needed + " tokens needed, the context holds "
                    + contextLength + "; raise --ctx or shorten the input");
        }
        for (int i = off; i < off + n; i++) {
            int t = tokens[i];
            if (t < 0 || t >= vocab) {
                throw new CriaException("token id " + t + " is outside the vocabulary (0.." + (vocab - 1) + ")");
            }
        }
    }

    /**
     * Queues {@code tokens[off, off + n)} to be evaluated after the sequence's cached positions
     * (a token that waited is replaced), reserving their pages; the sequence joins the loop.
     *
     * @throws CriaException when they do not fit the context or the pool, or a token is outside the vocabulary
     */
    void feed(Sequence s, int[] tokens, int off, int n) {
        check(s.position, tokens, off, n);
        cache.reserve(s.id, s.position + n);
        s.queue(tokens, off, n);
        s.decoding = false;
        if (n > 0) {
            activate(s);
        }
    }

    /** Takes a sequence out of the loop and keeps its pages (a prefix others may share). */
    void park(Sequence s) {
        deactivate(s);
    }

    /** Keeps the first {@code positions} cached positions of {@code s} and forgets the rest. */
    void truncate(Sequence s, int positions) {
        cache.truncate(s.id, positions);
        s.position = positions;
        s.length = positions;
        deactivate(s);
    }

    /** True while {@code s} has tokens waiting or generates. */
    boolean isActive(Sequence s) {
        return s.active;
    }

    /** Generating sequences that ended in the last step, in the order of their rows. */
    List<Sequence> ended() {
        return ended;
    }

    /** Prompt entries (not decode tokens) of the last step. */
    int promptEntries() {
        return promptEntries;
    }

    /** Rows sampled in the last step. */
    int sampled() {
        return sampled;
    }

    /**
     * The backend's own sampler when it has one and these settings allow it (no penalties, greedy or
     * top-k within its range): only token ids then cross to the host. {@code -Dcria.deviceSampling=false} turns it off.
     */
    DeviceSampler deviceSampler(GenerateOptions o) {
        if (!(model.backend() instanceof DeviceSampler ds) || "false".equals(System.getProperty("cria.deviceSampling"))) {
            return null;
        }
        SamplerParams p = o.sampler();
        boolean penalties = p.repeatPenalty() != 1f || p.frequencyPenalty() != 0f || p.presencePenalty() != 0f;
        boolean hostOnly = !o.logitBias().isEmpty() || o.wantsLogprobs();
        return !penalties && !hostOnly && ds.supports(p.temperature(), p.topK()) ? ds : null;
    }

    /**
     * Runs one forward step over the active sequences and hands out its logits rows. Returns
     * false (and runs nothing) when no sequence has work.
     */
    boolean step() {
        batch.clear();
        ended.clear();
        promptEntries = 0;
        sampled = 0;
        int n = active.size();
        for (int i = 0; i < n; i++) {
            Sequence s = active.get(i);
            s.inStep = 0;
            if (s.decoding && s.waiting() > 0 && !batch.isFull()) { // decode tokens first, one each
                add(s, 1);
            }
        }
        for (int i = 0; i < n && !batch.isFull(); i++) {
            Sequence s = active.get(i);
            if (!s.decoding && s.waiting() > 0) { // then prompt chunks, in arrival order
                int room = batch.batchSize() - batch.size();
                if (s.sink != null) {
                    room = Math.min(room, scratch.maxLogits() - batch.logitCount());
                }
                int k = Math.min(s.waiting(), room);
                add(s, k);
                promptEntries += k;
            }
        }
        if (batch.size() == 0) {
            return false;
        }
        llama.forward(batch, cache, scratch);
        int m = batch.logitCount();
        boolean onDevice = m == 1 && rows[0].stream != null && rows[0].deviceSampler != null;
        if (m > 0 && !onDevice) {
            model.backend().download(scratch.logits(), m, logits);
        }
        for (int i = 0; i < n; i++) {
            Sequence s = active.get(i);
            s.position += s.inStep;
        }
        long now = System.nanoTime();
        for (int j = 0; j < m; j++) {
            Sequence s = rows[j];
            int pos = batch.position(batch.logitRow(j));
            if (!onDevice && s.last != null && pos == s.length - 1) {
                System.arraycopy(logits, j * vocab, s.last, 0, vocab);
            }
            if (s.stream != null) {
                if (s.firstLogits == 0) {
                    s.firstLogits = now;
                }
                sample(s, onDevice ? null : logits, j * vocab);
            } else if (s.sink != null) {
                System.arraycopy(logits, j * vocab, s.one, 0, vocab);
                s.sink.accept(pos - s.sinkBase, s.one);
            }
        }
        for (int i = active.size() - 1; i >= 0; i--) { // evaluations that are done leave the loop
            Sequence s = active.get(i);
            if (s.stream == null && s.waiting() == 0) {
                s.active = false;
                active.remove(i);
            }
        }
        return true;
    }

    private void add(Sequence s, int k) {
        for (int i = 0; i < k; i++) {
            int pos = s.position + i;
            boolean want = s.sink != null || pos == s.length - 1;
            if (want) {
                rows[batch.logitCount()] = s;
            }
            batch.add(s.tokens[pos], pos, s.id, want);
        }
        s.inStep = k;
    }

    /**
     * The one place that samples: the next token of a generating sequence from host logits
     * {@code host[off, off + vocab)}, or, when {@code host} is null, on the device from logits
     * row 0. The token joins the sequence (waiting to be evaluated); the sequence goes on while
     * its stream wants more and the context has room, else it ends. What its listener throws
     * ends it alone ({@link Sequence#failure}).
     */
    void sample(Sequence s, float[] host, int off) {
        TokenStream st = s.stream;
        boolean more;
        try {
            int before = st.count();
            more = host != null ? st.next(host, off) : st.nextToken(sampleOnDevice(s));
            sampled++;
            if (st.count() > before) {
                s.append(st.last());
            }
            if (more && s.position >= contextLength) { // no room for the token just sampled
                st.finish(Generation.FinishReason.LENGTH);
                more = false;
            }
            if (more) {
                cache.reserve(s.id, s.length); // a page only when the token starts one (a batch request holds its pages already)
            }
        } catch (RuntimeException e) {
            s.failure = e;
            more = false;
        }
        if (more) {
            s.decoding = true;
            activate(s);
        } else {
            s.decoding = false;
            if (s.active) {
                deactivate(s);
                ended.add(s);
            }
        }
    }

    private int sampleOnDevice(Sequence s) {
        SamplerParams p = s.stream.options().sampler();
        if (p.isGreedy()) {
            s.deviceSampler.argmax(scratch.logits(), 1, vocab, pick);
        } else {
            uniform[0] = s.stream.sampler().drawUniform();
            s.deviceSampler.sample(scratch.logits(), 1, vocab, p.temperature(), p.topK(), p.topP(), p.minP(), uniform, pick);
        }
        return pick[0];
    }

    private void activate(Sequence s) {
        if (!s.active) {
            s.active = true;
            active.add(s);
        }
    }

    private void deactivate(Sequence s) {
        if (s.active) {
            s.active = false;
            active.remove(s);
        }
    }

    /** Frees the KV cache. */
    @Override
    public void close() {
        cache.close();
    }
}
