// The documents of one text file tokenized in parallel: BOS + ids per document, in file order, for TokenData.
package cria.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import cria.CriaException;
import cria.tokenizer.Tokenizer;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * One file's documents as token ids: the file is cut into chunks of whole lines, the chunks are
 * tokenized on all cores (the tokenizer is thread-safe) and kept in file order, so the result is
 * the same as tokenizing line by line.
 */
final class Documents {
    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** One chunk's documents: BOS + ids each, and where each document starts in {@code tokens}. */
    private record Chunk(int[] tokens, int[] starts, int end) {}

    private final List<Chunk> chunks;
    private final long docs;

    private Documents(List<Chunk> chunks) {
        this.chunks = chunks;
        long d = 0;
        for (Chunk c : chunks) {
            d += c.starts.length;
        }
        this.docs = d;
    }

    /** Number of (non-blank) documents. */
    long docs() {
        return docs;
    }

    /**
     * Tokenizes {@code text}, telling {@code progress} of {@code doneBefore + bytes done} of {@code total}
     * after each chunk (on this thread).
     */
    static Documents run(byte[] text, String name, boolean jsonl, Tokenizer tok, TokenData.Progress progress, long doneBefore, long total) {
        int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
        int target = Math.clamp(text.length / (8L * threads), 16 << 10, 1 << 20);
        List<int[]> ranges = new ArrayList<>(); // {start, end, first line number}
        int line = 1;
        int start = TokenData.startsWithBom(text) ? 3 : 0;
        int chunkStart = start;
        int chunkLine = 1;
        for (int i = start; i < text.length; i++) {
            if (text[i] == '\n') {
                line++;
                if (i + 1 - chunkStart >= target) {
                    ranges.add(new int[] {chunkStart, i + 1, chunkLine});
                    chunkStart = i + 1;
                    chunkLine = line;
                }
            }
        }
        if (chunkStart < text.length) {
            ranges.add(new int[] {chunkStart, text.length, chunkLine});
        }
        List<Chunk> out = new ArrayList<>(ranges.size());
        if (ranges.size() <= 1 || threads == 1) {
            for (int[] r : ranges) {
                out.add(chunk(text, r[0], r[1], r[2], name, jsonl, tok));
                progress.tokenized(doneBefore + r[1], total);
            }
            return new Documents(out);
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, ranges.size()), r -> {
            Thread t = new Thread(r, "cria-tokenize");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<Chunk>> futures = new ArrayList<>(ranges.size());
            for (int[] r : ranges) {
                futures.add(pool.submit(() -> chunk(text, r[0], r[1], r[2], name, jsonl, tok)));
            }
            for (Future<Chunk> f : futures) {
                Chunk c = f.get();
                out.add(c);
                progress.tokenized(doneBefore + c.end, total);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CriaException("tokenizing " + name + " was interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new IllegalStateException(e.getCause());
        } finally {
            pool.shutdownNow();
        }
        return new Documents(out);
    }

    /** Told each non-blank document of a run of lines, with the line number it stands on. */
    @FunctionalInterface
    private interface DocumentSink {
        void accept(int line, String doc);
    }

    // The documents of the lines in [from, to), the first of which is line number 'line', in order.
    private static void documents(byte[] text, int from, int to, int line, String name, boolean jsonl, DocumentSink sink) {
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        for (int s = from; s < to; line++) {
            int e = s;
            while (e < to && text[e] != '\n') {
                e++;
            }
            int next = e + 1;
            if (e > s && text[e - 1] == '\r') {
                e--;
            }
            String doc = document(text, s, e, line, name, jsonl, utf8);
            s = next;
            if (doc != null && !doc.isBlank()) {
                sink.accept(line, doc);
            }
        }
    }

    /** A chunk being filled: BOS + ids per document. */
    private static final class ChunkBuilder implements DocumentSink {
        private final String name;
        private final Tokenizer tok;
        private int[] tokens;
        private int n;
        private int[] starts = new int[16];
        private int docs;

        ChunkBuilder(String name, Tokenizer tok, int bytes) {
            this.name = name;
            this.tok = tok;
            this.tokens = new int[Math.max(16, bytes / 3)];
        }

        @Override
        public void accept(int line, String doc) {
            int[] ids = tok.encode(doc, false, false);
            if (n + 1L + ids.length > TokenData.MAX_TOKENS) {
                throw new CriaException(name + " line " + line + ": more than " + TokenData.MAX_TOKENS + " tokens in one part of the file;"
                        + " split the data into smaller files");
            }
            if (n + 1 + ids.length > tokens.length) {
                tokens = Arrays.copyOf(tokens, (int) Math.min(TokenData.MAX_TOKENS, Math.max(2L * tokens.length, n + 1L + ids.length)));
            }
            if (docs == starts.length) {
                starts = Arrays.copyOf(starts, 2 * docs);
            }
            starts[docs++] = n;
            tokens[n++] = tok.bos();
            System.arraycopy(ids, 0, tokens, n, ids.length);
            n += ids.length;
        }
    }

    // Tokenizes the lines in [from, to), the first of which is line number 'line'.
    private static Chunk chunk(byte[] text, int from, int to, int line, String name, boolean jsonl, Tokenizer tok) {
        ChunkBuilder b = new ChunkBuilder(name, tok, to - from);
        documents(text, from, to, line, name, jsonl, b);
        return new Chunk(Arrays.copyOf(b.tokens, b.n), Arrays.copyOf(b.starts, b.docs), to);
    }

    /** The documents of {@code text} as strings, in file order, blank ones skipped: what {@link #run} tokenizes. */
    static List<String> texts(byte[] text, String name, boolean jsonl) {
        List<String> out = new ArrayList<>();
        documents(text, 0, text.length, 1, name, jsonl, (line, doc) -> out.add(doc));
        return out;
    }

    // The text of one line: the line itself, or the "text" of its JSON object; null for a blank JSONL line.
    private static String document(byte[] text, int s, int e, int line, String name, boolean jsonl, CharsetDecoder utf8) {
        String str;
        try {
            str = utf8.decode(ByteBuffer.wrap(text, s, e - s)).toString();
        } catch (CharacterCodingException ex) {
            throw new CriaException(name + " line " + line + ": not valid UTF-8; save the file as UTF-8");
        }
        if (!jsonl) {
            return str;
        }
        if (str.isBlank()) {
            return null;
        }
        JsonNode node;
        try {
            node = JSON.readTree(str);
        } catch (JsonProcessingException ex) {
            String why = ex.getOriginalMessage() == null ? "" : ex.getOriginalMessage().lines().findFirst().orElse("");
            throw new CriaException(name + " line " + line + ": not valid JSON (" + why + "); each line must be an object such as"
                    + " {\"text\": \"...\"}");
        }
        JsonNode t = node == null ? null : node.get("text");
        if (node == null || !node.isObject() || t == null || !t.isTextual()) {
            throw new CriaException(name + " line " + line + ": expected a JSON object with a \"text\" string, such as {\"text\": \"...\"};"
                    + " fix or remove the line");
        }
        return t.textValue();
    }

    /** The documents {@code from .. to-1}, concatenated (each BOS + ids). */
    int[] slice(long from, long to) {
        long a = position(from);
        long b = position(to);
        if (b - a > TokenData.MAX_TOKENS) {
            throw new CriaException("the token stream would have " + (b - a) + " tokens, more than the " + TokenData.MAX_TOKENS
                    + " one stream can hold; use less text");
        }
        int[] out = new int[(int) (b - a)];
        long pos = 0;
        for (Chunk c : chunks) {
            long lo = Math.max(a, pos);
            long hi = Math.min(b, pos + c.tokens.length);
            if (lo < hi) {
                System.arraycopy(c.tokens, (int) (lo - pos), out, (int) (lo - a), (int) (hi - lo));
            }
            pos += c.tokens.length;
        }
        return out;
    }

    // Where document d starts in the concatenation of all chunks (the total length for d == docs).
    private long position(long d) {
        long pos = 0;
        long seen = 0;
        for (Chunk c : chunks) {
            if (d < seen + c.starts.length) {
                return pos + c.starts[(int) (d - seen)];
            }
            seen += c.starts.length;
            pos += c.tokens.length;
        }
        return pos;
    }
}
