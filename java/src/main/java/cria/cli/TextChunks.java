// The chunks llama-perplexity scores: a text tokenized once (with BOS), cut into windows of ctx tokens that start with BOS.
package cria.cli;

import cria.CriaException;
import cria.engine.Session;
import cria.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The evaluation windows of llama.cpp's perplexity method, shared by {@code cria perplexity} and
 * {@code cria compare}: the text's tokens are cut into {@code count} chunks of {@code ctx}
 * tokens; a chunk's first token is replaced by BOS (when the tokenizer adds one); each chunk is
 * evaluated from an empty cache and positions {@code ctx/2 .. ctx-2} are scored, each predicting
 * the next token. Every model that scores the same {@code TextChunks} sees the same tokens.
 */
final class TextChunks {
    /** Receives one scored position: its index among the chunk's scored positions, the logits there, the next token. */
    @FunctionalInterface
    interface Scored {
        void accept(int index, float[] logits, int target);
    }

    private final int[] tokens;
    private final int ctx;
    private final int count;
    private final int bos;

    private TextChunks(int[] tokens, int ctx, int count, int bos) {
        this.tokens = tokens;
        this.ctx = ctx;
        this.count = count;
        this.bos = bos;
    }

    /** The text of {@code file}; a missing or unreadable file is a one-line error. */
    static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new CriaException(file + ": no such file");
        } catch (IOException e) {
            throw new CriaException(file + ": cannot read: " + e.getMessage());
        }
    }

    /**
     * Tokenizes {@code text} once and cuts it into chunks of {@code ctx} tokens, at most
     * {@code maxChunks} (negative: all). As llama.cpp, at least two chunks' worth of tokens are
     * needed; {@code file} names the text in that error.
     */
    static TextChunks of(Tokenizer tokenizer, String text, Path file, int ctx, int maxChunks) {
        checkCtx(ctx);
        int[] tokens = tokenizer.encode(text, true, false);
        if (tokens.length < 2L * ctx) {
            throw new CriaException(file + ": " + tokens.length + " tokens; at least 2 x " + ctx + " (-c) are needed");
        }
        int chunks = tokens.length / ctx;
        if (maxChunks >= 0) {
            chunks = Math.min(chunks, maxChunks);
        }
        int bos = tokenizer.bos() >= 0 && tokenizer.addsBos() ? tokenizer.bos() : -1;
        return new TextChunks(tokens, ctx, chunks, bos);
    }

    /** Refuses a chunk length that leaves nothing to score (called before a model loads, and again by {@link #of}). */
    static void checkCtx(int ctx) {
        if (ctx < 3) {
            // each window scores its second half, each position predicting the next token: fewer
            // than 3 positions leave nothing to score (and a perplexity of NaN)
            throw new CriaException("-c " + ctx + " is too short: perplexity needs windows of at least 3 tokens (e.g. -c 512)");
        }
    }

    /** Tokens per chunk. */
    int ctx() {
        return ctx;
    }

    /** Number of chunks. */
    int count() {
        return count;
    }

    /** The first scored position of a chunk. */
    int first() {
        return ctx / 2;
    }

    /** Scored positions per chunk: {@code first() .. ctx-2}. */
    int scoredPerChunk() {
        return ctx - 1 - first();
    }

    /** Scored positions in all chunks. */
    long scored() {
        return (long) count * scoredPerChunk();
    }

    /** Chunk {@code c}'s tokens, its first one replaced by BOS. */
    int[] chunk(int c) {
        int[] chunk = Arrays.copyOfRange(tokens, c * ctx, (c + 1) * ctx);
        if (bos >= 0) {
            chunk[0] = bos;
        }
        return chunk;
    }

    /**
     * Evaluates chunk {@code c} from an empty cache in {@code s} (a session opened with all
     * logits) and hands each scored position to {@code sink}, in order.
     */
    void eval(Session s, int c, Scored sink) {
        int[] chunk = chunk(c);
        int first = first();
        s.reset();
        s.evalAll(chunk, (i, logits) -> {
            if (i >= first && i < ctx - 1) {
                sink.accept(i - first, logits, chunk[i + 1]);
            }
        });
    }
}
