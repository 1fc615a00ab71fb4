// Training text as token streams: loads plain text or JSONL, tokenizes once (in parallel) and caches the ids beside the data.
package cria.train;

import cria.CriaException;
import cria.gguf.GgufFile;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import cria.tokenizer.Tokenizer;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The token streams a training run reads: a data file (and optionally a separate validation file)
 * tokenized once and cached.
 *
 * <h2>Input</h2>
 * Plain text with one document per line (blank lines skipped; a trailing {@code \r} and a leading
 * UTF-8 byte-order mark are dropped), or JSONL with one {@code {"text": "..."}} object per line
 * (other keys ignored). A file is JSONL when its name ends in {@code .jsonl} or {@code .json} or
 * its first non-blank character is an opening brace. Documents whose text is blank are skipped in both.
 *
 * <h2>Streams</h2>
 * Each document is tokenized with {@code encode(text, false, false)} and preceded by BOS; documents
 * are concatenated in file order, with no EOS. With a validation split {@code F} in [0, 0.5], the
 * last {@code ceil(F * D)} of the {@code D} documents (computed in double, as {@code math.ceil(F * D)}
 * in Python) form the validation stream and the rest the training stream; with a separate
 * validation file, all of its documents do. At least one training document must remain.
 *
 * <h2>Cache</h2>
 * The streams are saved to {@code <data file name>.cria-<16 hex digits>.tokens} in the data file's
 * directory or, when that directory is not writable, in a fallback directory. The hex digits are
 * the fingerprint: a 64-bit hash of the data file's bytes, the validation file's bytes (if any),
 * the vocabulary ({@link Vocabulary#fingerprint}), the validation split and the format version, so
 * a change to any of them selects a different file. The file is little-endian:
 * <pre>
 *   offset 0   8 bytes  ASCII "CRIATOKS"
 *   offset 8   int32    version = 1
 *   offset 12  int32    0 (reserved)
 *   offset 16  int64    fingerprint
 *   offset 24  int64    trainCount (tokens)
 *   offset 32  int64    valCount (tokens)
 *   offset 40  int32[trainCount]  training tokens, then int32[valCount] validation tokens
 * </pre>
 * In NumPy: {@code h = np.fromfile(p, '<i8', 5); ids = np.fromfile(p, '<i4', offset=40)}, training
 * tokens {@code ids[:h[3]]}, validation tokens {@code ids[h[3]:]}. The file is written to a temporary
 * file and renamed into place; a cache of the wrong size, header or token range is reported in one
 * line and rebuilt. Document counts are recovered from the cache by counting BOS tokens.
 */
public final class TokenData {
    /** The cache format version (and the version of the tokenizing rules above). */
    public static final int VERSION = 1;
    /** Bytes before the tokens in a cache file. */
    public static final int HEADER_BYTES = 40;
    /** The largest stream (Java arrays are int-indexed). */
    static final long MAX_TOKENS = Integer.MAX_VALUE - 8L;
    /** The largest input file: it is read whole into a byte array. */
    static final long MAX_FILE_BYTES = Integer.MAX_VALUE - 8L;
    private static final byte[] MAGIC = "CRIATOKS".getBytes(StandardCharsets.US_ASCII);
    private static final VarHandle LONG_LE = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /** Progress of tokenizing, and one-line notices (a damaged cache, a cache that could not be written). */
    @FunctionalInterface
    public interface Progress {
        /** Called on the loading thread as text is tokenized: bytes done so far of {@code bytesTotal}. */
        void tokenized(long bytesDone, long bytesTotal);

        /** A one-line notice for the person running the job; printed on standard error unless overridden. */
        default void notice(String line) {
            System.err.println(line);
        }

        /** Reports no progress (notices still go to standard error). */
        Progress NONE = (done, total) -> { };
    }

    /**
     * A tokenizer and the fingerprint of the vocabulary it was built from (every
     * {@code tokenizer.ggml.*} metadata value: tokens, scores, types, merges, special ids, flags).
     *
     * @param tokenizer   the tokenizer
     * @param fingerprint a 64-bit hash of the vocabulary, part of the cache's fingerprint
     */
    public record Vocabulary(Tokenizer tokenizer, long fingerprint) {
        /** The tokenizer of a model file's metadata, with its fingerprint. */
        public static Vocabulary of(Metadata md) {
            Tokenizer tok = Tokenizer.fromMetadata(md);
            long h = 0x6372696156434142L;
            for (Map.Entry<String, GgufValue> e : new TreeMap<>(md.asMap()).entrySet()) {
                if (e.getKey().startsWith("tokenizer.ggml.")) {
                    h = combine(h, hashString(e.getKey()));
                    h = combine(h, hashValue(e.getValue()));
                }
            }
            return new Vocabulary(tok, h);
        }

        /** Opens a GGUF file (a model or a vocabulary-only file) and takes its vocabulary. */
        public static Vocabulary open(Path gguf) {
            try (GgufFile f = GgufFile.open(gguf)) {
                return of(f.metadata());
            }
        }
    }

    private final String name;
    private final String valName;
    private final int[] train;
    private final int[] val;
    private final long trainDocs;
    private final long valDocs;
    private final long bytes;
    private final long valBytes;
    private final long fingerprint;
    private final Path cacheFile;
    private final boolean fromCache;

    private TokenData(String name, String valName, int[] train, int[] val, long trainDocs, long valDocs, long bytes, long valBytes,
            long fingerprint, Path cacheFile, boolean fromCache) {
        this.name = name;
        this.valName = valName;
        this.train = train;
        this.val = val;
        this.trainDocs = trainDocs;
        this.valDocs = valDocs;
        this.bytes = bytes;
        this.valBytes = valBytes;
        this.fingerprint = fingerprint;
        this.cacheFile = cacheFile;
        this.fromCache = fromCache;
    }

    /**
     * Loads the token streams of a data file, from its cache when one matches, else by tokenizing
     * (and then writing the cache).
     *
     * @param data       the training text (plain text or JSONL)
     * @param valData    a separate validation file, or null
     * @param valSplit   the fraction of documents held out for validation, in [0, 0.5]; must be 0 with {@code valData}
     * @param vocab      the vocabulary to tokenize with
     * @param fallbackCacheDir where to cache when the data's directory is not writable (created if needed), or null
     * @param progress   told of tokenizing progress and notices
     * @throws CriaException for a missing, empty, oversized or malformed file (naming the line), a bad split,
     *                       a vocabulary without BOS, or a split that leaves no training document
     */
    public static TokenData load(Path data, Path valData, double valSplit, Vocabulary vocab, Path fallbackCacheDir, Progress progress) {
        if (!(valSplit >= 0 && valSplit <= 0.5)) {
            throw new CriaException("validation split " + valSplit + " is outside [0, 0.5]; give a fraction such as 0.05");
        }
        if (valData != null && valSplit > 0) {
            throw new CriaException("both a validation file (" + valData + ") and a validation split (" + valSplit
                    + ") were given; use one of them");
        }
        Tokenizer tok = vocab.tokenizer();
        if (tok.bos() < 0) {
            throw new CriaException(tok.source() + ": the vocabulary has no BOS token, which training puts before each document;"
                    + " use a model whose vocabulary has one");
        }
        byte[] text = readInput(data, "data");
        byte[] valText = valData == null ? null : readInput(valData, "validation");
        boolean jsonl = isJsonl(data, text);
        boolean valJsonl = valData != null && isJsonl(valData, valText);

        long fp = combine(VERSION, hashBytes(text));
        fp = combine(fp, jsonl ? 1 : 0);
        fp = combine(fp, valText == null ? 0x5a5a : combine(hashBytes(valText), valJsonl ? 1 : 0));
        fp = combine(fp, vocab.fingerprint());
        fp = combine(fp, Double.doubleToLongBits(valSplit));
        String name = data.getFileName().toString();
        String valName = valData == null ? null : valData.getFileName().toString();
        String cacheName = name + ".cria-" + String.format("%016x", fp) + ".tokens";
        Path dir = data.toAbsolutePath().getParent();
        Path primary = dir.resolve(cacheName);
        Path fallback = fallbackCacheDir == null ? null : fallbackCacheDir.resolve(cacheName);
        long valBytes = valText == null ? 0 : valText.length;

        for (Path cache : new Path[] {primary, fallback}) {
            if (cache != null && Files.isRegularFile(cache)) {
                int[][] streams = readCache(cache, fp, tok, progress);
                if (streams != null) {
                    int bos = tok.bos();
                    return new TokenData(name, valName, streams[0], streams[1], count(streams[0], bos), count(streams[1], bos),
                            text.length, valBytes, fp, cache, true);
                }
            }
        }

        long total = text.length + valBytes;
        Documents main = Documents.run(text, name, jsonl, tok, progress, 0, total);
        if (main.docs() == 0) {
            throw new CriaException(data + " has no documents (every line is blank); give a file with one document per line");
        }
        int[] trainIds;
        int[] valIds;
        long trainDocs;
        long valDocs;
        if (valText != null) {
            Documents v = Documents.run(valText, valName, valJsonl, tok, progress, text.length, total);
            if (v.docs() == 0) {
                throw new CriaException(valData + " has no documents (every line is blank); give a validation file with one document per line");
            }
            trainIds = main.slice(0, main.docs());
            valIds = v.slice(0, v.docs());
            trainDocs = main.docs();
            valDocs = v.docs();
        } else {
            long d = main.docs();
            valDocs = heldOut(d, valSplit);
            trainDocs = d - valDocs;
            if (trainDocs < 1) {
                throw new CriaException(data + " has only " + d + " document" + (d == 1 ? "" : "s") + ": a validation split of " + valSplit
                        + " leaves none for training; use a smaller --val-split or more documents");
            }
            trainIds = main.slice(0, trainDocs);
            valIds = main.slice(trainDocs, d);
        }
        Path written = writeCache(fp, trainIds, valIds, primary, fallback, progress);
        return new TokenData(name, valName, trainIds, valIds, trainDocs, valDocs, text.length, valBytes, fp, written, false);
    }

    /**
     * The documents of a data file as text (plain lines, or the "text" of JSONL objects), in file
     * order, blank ones skipped: exactly the documents {@link #load} tokenizes.
     */
    public static List<String> documents(Path data) {
        byte[] text = readInput(data, "data");
        return Documents.texts(text, data.getFileName().toString(), isJsonl(data, text));
    }

    /**
     * The validation documents as text, one per line: those of {@code valData}, or the last
     * {@code ceil(valSplit · D)} of {@code data}'s D documents (as {@link #load} holds them out);
     * null when nothing is held out.
     */
    public static String validationText(Path data, Path valData, double valSplit) {
        List<String> docs;
        if (valData != null) {
            docs = documents(valData);
        } else {
            List<String> all = documents(data);
            docs = all.subList(all.size() - (int) heldOut(all.size(), valSplit), all.size());
        }
        return docs.isEmpty() ? null : String.join("\n", docs) + "\n";
    }

    /**
     * The training documents as text: all of {@code data}'s when validation comes from another
     * file, else all but the last {@code ceil(valSplit · D)} (the ones {@link #load} holds out).
     */
    public static List<String> trainingDocuments(Path data, Path valData, double valSplit) {
        List<String> all = documents(data);
        return valData != null ? all : all.subList(0, all.size() - (int) heldOut(all.size(), valSplit));
    }

    /** Documents held out for validation of {@code docs} with a split of {@code valSplit}: the last ceil(valSplit · docs). */
    static long heldOut(long docs, double valSplit) {
        return (long) Math.ceil(valSplit * docs);
    }

    /** The training stream (not copied: do not change it). */
    public int[] train() {
        return train;
    }

    /** The validation stream, empty when nothing is held out (not copied: do not change it). */
    public int[] validation() {
        return val;
    }

    /** Documents in the training stream. */
    public long trainDocuments() {
        return trainDocs;
    }

    /** Documents in the validation stream. */
    public long validationDocuments() {
        return valDocs;
    }

    /** Size of the data file in bytes (the separate validation file not included). */
    public long bytes() {
        return bytes;
    }

    /** The fingerprint of data, vocabulary, split and format (also in the cache file's name). */
    public long fingerprint() {
        return fingerprint;
    }

    /** The cache file read or written, or null when none could be written. */
    public Path cacheFile() {
        return cacheFile;
    }

    /** Whether the streams came from the cache (no tokenizing). */
    public boolean fromCache() {
        return fromCache;
    }

    /**
     * One line for people, e.g. {@code tinystories-lc.txt: 4,820 documents, 1.02M tokens (0.27 tokens/byte),
     * 241 held out (51,301 tokens)}.
     */
    public String summary() {
        StringBuilder sb = new StringBuilder(name).append(": ");
        if (valName == null) {
            long docs = trainDocs + valDocs;
            long tokens = (long) train.length + val.length;
            sb.append(String.format(Locale.ROOT, "%,d documents, %s tokens (%.2f tokens/byte), ", docs, tokens(tokens),
                    bytes == 0 ? 0.0 : (double) tokens / bytes));
            sb.append(valDocs == 0 ? "none held out" : String.format(Locale.ROOT, "%,d held out (%s tokens)", valDocs, tokens(val.length)));
        } else {
            sb.append(String.format(Locale.ROOT, "%,d documents, %s tokens (%.2f tokens/byte); validation %s: %,d documents (%s tokens)",
                    trainDocs, tokens(train.length), bytes == 0 ? 0.0 : (double) train.length / bytes, valName, valDocs, tokens(val.length)));
        }
        return sb.toString();
    }

    private static String tokens(long n) {
        return n < 1_000_000 ? String.format(Locale.ROOT, "%,d", n)
                : n < 1_000_000_000 ? String.format(Locale.ROOT, "%.2fM", n / 1e6) : String.format(Locale.ROOT, "%.2fB", n / 1e9);
    }

    private static long count(int[] stream, int id) {
        long n = 0;
        for (int t : stream) {
            if (t == id) {
                n++;
            }
        }
        return n;
    }

    // ---- input ----

    private static byte[] readInput(Path file, String what) {
        try {
            if (Files.isDirectory(file)) {
                throw new CriaException(file + " is a directory; give the " + what + " file itself");
            }
            long size = Files.size(file);
            if (size == 0) {
                throw new CriaException(file + " is empty; give a " + what + " file with one document per line");
            }
            if (size > MAX_FILE_BYTES) {
                throw new CriaException(file + " is " + size + " bytes; the " + what + " file may hold at most " + MAX_FILE_BYTES
                        + " bytes: split it or use less text");
            }
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new CriaException(file + ": no such " + what + " file; check the path");
        } catch (IOException e) {
            throw new CriaException(file + ": cannot read the " + what + " file (" + e.getMessage() + ")", e);
        }
    }

    /** JSONL by name (.jsonl, .json) or by content (the first non-blank character is '{'). */
    static boolean isJsonl(Path file, byte[] text) {
        String n = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (n.endsWith(".jsonl") || n.endsWith(".json")) {
            return true;
        }
        int i = startsWithBom(text) ? 3 : 0;
        while (i < text.length && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
            i++;
        }
        return i < text.length && text[i] == '{';
    }

    static boolean startsWithBom(byte[] b) {
        return b.length >= 3 && (b[0] & 0xff) == 0xEF && (b[1] & 0xff) == 0xBB && (b[2] & 0xff) == 0xBF;
    }

    // ---- cache ----

    // The streams of a cache file, or null (after a notice) when it is damaged or does not match.
    private static int[][] readCache(Path cache, long fp, Tokenizer tok, Progress progress) {
        try (FileChannel ch = FileChannel.open(cache, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer head = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            if (size < HEADER_BYTES || ch.read(head, 0) != HEADER_BYTES) {
                return damaged(cache, "it is " + size + " bytes, shorter than its header", progress);
            }
            head.flip();
            byte[] magic = new byte[8];
            head.get(magic);
            int version = head.getInt();
            head.getInt();
            long storedFp = head.getLong();
            long nTrain = head.getLong();
            long nVal = head.getLong();
            if (!Arrays.equals(magic, MAGIC) || version != VERSION || storedFp != fp) {
                return damaged(cache, "its header is not a version " + VERSION + " cache of this data", progress);
            }
            if (nTrain < 1 || nVal < 0 || nTrain > MAX_TOKENS || nVal > MAX_TOKENS) {
                return damaged(cache, "its header counts " + nTrain + " training and " + nVal + " validation tokens", progress);
            }
            long expected = HEADER_BYTES + 4 * (nTrain + nVal);
            if (size != expected) {
                return damaged(cache, "it is " + size + " bytes, not the " + expected + " its header implies", progress);
            }
            int[] t = new int[(int) nTrain];
            int[] v = new int[(int) nVal];
            readInts(ch, HEADER_BYTES, t);
            readInts(ch, HEADER_BYTES + 4 * nTrain, v);
            int n = tok.vocabSize();
            if (t[0] != tok.bos() || !inRange(t, n) || !inRange(v, n) || (v.length > 0 && v[0] != tok.bos())) {
                return damaged(cache, "it holds token ids this vocabulary of " + n + " tokens would not produce", progress);
            }
            return new int[][] {t, v};
        } catch (IOException e) {
            return damaged(cache, "it cannot be read (" + e.getMessage() + ")", progress);
        }
    }

    private static int[][] damaged(Path cache, String why, Progress progress) {
        progress.notice("token cache " + cache + " is damaged: " + why + "; tokenizing again");
        return null;
    }

    private static boolean inRange(int[] ids, int n) {
        for (int id : ids) {
            if (id < 0 || id >= n) {
                return false;
            }
        }
        return true;
    }

    private static void readInts(FileChannel ch, long pos, int[] out) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        int done = 0;
        while (done < out.length) {
            int n = Math.min(out.length - done, buf.capacity() / 4);
            buf.clear().limit(4 * n);
            while (buf.hasRemaining()) { // a read may return fewer bytes than asked
                if (ch.read(buf, pos + buf.position()) < 0) {
                    throw new IOException("unexpected end of file");
                }
            }
            buf.flip();
            buf.asIntBuffer().get(out, done, n);
            done += n;
            pos += 4L * n;
        }
    }

    // Writes the cache beside the data, else in the fallback directory; returns where, or null (with a notice).
    private static Path writeCache(long fp, int[] t, int[] v, Path primary, Path fallback, Progress progress) {
        IOException failed = null;
        for (Path target : new Path[] {primary, fallback}) {
            if (target == null || !writableDir(target.getParent())) {
                continue;
            }
            try {
                write(target, fp, t, v);
                return target;
            } catch (IOException e) {
                failed = e;
            }
        }
        progress.notice("could not cache the tokens (" + (failed == null ? primary.getParent() + " is read-only and no fallback cache directory was usable"
                : failed.getMessage()) + "); they will be tokenized again next time");
        return null;
    }

    // Writable for us and, since root ignores permission bits, not marked read-only for everyone (such as ../shared).
    private static boolean writableDir(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            return false;
        }
        if (!Files.isWritable(dir)) {
            return false;
        }
        PosixFileAttributeView posix = Files.getFileAttributeView(dir, PosixFileAttributeView.class);
        if (posix == null) {
            return true;
        }
        try {
            Set<PosixFilePermission> p = posix.readAttributes().permissions();
            return p.contains(PosixFilePermission.OWNER_WRITE) || p.contains(PosixFilePermission.GROUP_WRITE)
                    || p.contains(PosixFilePermission.OTHERS_WRITE);
        } catch (IOException e) {
            return true;
        }
    }

    private static void write(Path target, long fp, int[] t, int[] v) throws IOException {
        // a name of our own rather than createTempFile, whose owner-only permissions the cache would keep
        Path tmp = target.resolveSibling("." + target.getFileName() + "." + ProcessHandle.current().pid() + "." + System.nanoTime() + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW)) {
                ByteBuffer head = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
                head.put(MAGIC).putInt(VERSION).putInt(0).putLong(fp).putLong(t.length).putLong(v.length).flip();
                writeAll(ch, head);
                ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
                for (int[] ids : new int[][] {t, v}) {
                    for (int i = 0; i < ids.length; ) {
                        int n = Math.min(ids.length - i, buf.capacity() / 4);
                        buf.clear();
                        buf.asIntBuffer().put(ids, i, n);
                        buf.limit(4 * n);
                        writeAll(ch, buf);
                        i += n;
                    }
                }
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static void writeAll(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    // ---- hashing (fingerprints only need to agree within Cria; the peer reads the cache, it does not recompute them) ----

    /** A fast 64-bit hash of bytes: 8-byte little-endian words through SplitMix64's finalizer. */
    static long hashBytes(byte[] b) {
        long h = 0x243F6A8885A308D3L ^ (b.length * 0x9E3779B97F4A7C15L);
        int i = 0;
        for (; i + 8 <= b.length; i += 8) {
            h = Long.rotateLeft(h ^ Windows.mix((long) LONG_LE.get(b, i) + 0x632BE59BD9B4E019L), 23) * 0x9E3779B97F4A7C15L;
        }
        long tail = 0;
        for (int s = 0; i < b.length; i++, s += 8) {
            tail |= (b[i] & 0xffL) << s;
        }
        return Windows.mix(h ^ Windows.mix(tail + 0x632BE59BD9B4E019L));
    }

    static long combine(long h, long x) {
        return Windows.mix(h * 0x9E3779B97F4A7C15L + x + 0x632BE59BD9B4E019L);
    }

    private static long hashString(String s) {
        return hashBytes(s.getBytes(StandardCharsets.UTF_8));
    }

    private static long hashValue(GgufValue v) {
        long h = combine(v.type().ordinal(), v.elementType() == null ? -1 : v.elementType().ordinal());
        Object o = v.value();
        switch (o) {
            case String s -> h = combine(h, hashString(s));
            case String[] a -> {
                h = combine(h, a.length);
                for (String s : a) {
                    h = combine(h, hashString(s));
                }
            }
            case float[] a -> {
                for (float f : a) {
                    h = combine(h, Float.floatToRawIntBits(f));
                }
            }
            case int[] a -> {
                for (int x : a) {
                    h = combine(h, x);
                }
            }
            case long[] a -> {
                for (long x : a) {
                    h = combine(h, x);
                }
            }
            case GgufValue[] a -> {
                for (GgufValue x : a) {
                    h = combine(h, hashValue(x));
                }
            }
            default -> h = combine(h, hashString(v.display(Integer.MAX_VALUE)));
        }
        return h;
    }
}
