// Loading training text: plain text and JSONL, BOS per document, validation split by documents, and the token cache.
package cria.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.SharedData;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import cria.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenDataTest {
    @TempDir
    Path dir;

    /** A SentencePiece vocabulary with byte fallback: any text tokenizes, a few pieces merge. */
    static Metadata vocab(float pieceScore) {
        List<String> t = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        List<Integer> ty = new ArrayList<>(List.of(2, 3, 3));
        for (int b = 0; b < 256; b++) {
            t.add(String.format("<0x%02X>", b));
            ty.add(6);
        }
        String[] pieces = {"▁", "o", "n", "e", "t", "w", "h", "l", "d", "r", "a", "b", "c", "▁o", "on", "ne", "▁one", "▁t", "tw",
            "▁tw", "▁two", "he", "ll", "lo", "▁he", "▁hel", "▁hello", "or", "▁w", "▁wor", "▁world"};
        for (String p : pieces) {
            t.add(p);
            ty.add(1);
        }
        float[] sc = new float[t.size()];
        for (int i = 3 + 256; i < sc.length; i++) {
            sc[i] = pieceScore * (i - 258); // longer (later) pieces score higher
        }
        Metadata md = new Metadata("test-spm.gguf");
        md.put("tokenizer.ggml.model", GgufValue.ofString("llama"));
        md.put("tokenizer.ggml.tokens", GgufValue.ofStrings(t.toArray(String[]::new)));
        md.put("tokenizer.ggml.scores", GgufValue.ofFloats(sc));
        md.put("tokenizer.ggml.token_type", GgufValue.ofInts(ty.stream().mapToInt(Integer::intValue).toArray()));
        md.put("tokenizer.ggml.bos_token_id", GgufValue.ofU32(1));
        md.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(2));
        return md;
    }

    private static final TokenData.Vocabulary VOCAB = TokenData.Vocabulary.of(vocab(0.1f));

    /** Counts tokenized bytes and keeps notices. */
    static final class Counting implements TokenData.Progress {
        long calls;
        long last;
        long total;
        final List<String> notices = new ArrayList<>();

        @Override
        public void tokenized(long done, long total) {
            assertTrue(done >= last && done <= total, done + " of " + total);
            calls++;
            last = done;
            this.total = total;
        }

        @Override
        public void notice(String line) {
            assertFalse(line.contains("\n"), "one line: " + line);
            notices.add(line);
        }
    }

    /** BOS + encode(doc, false, false) for each document, concatenated: the rule written out. */
    private static int[] expected(String... docs) {
        Tokenizer tok = VOCAB.tokenizer();
        return Stream.of(docs).flatMapToInt(d -> IntStream.concat(IntStream.of(tok.bos()), IntStream.of(tok.encode(d, false, false))))
                .toArray();
    }

    private Path file(String name, String text) throws IOException {
        return Files.writeString(dir.resolve(name), text, StandardCharsets.UTF_8);
    }

    private TokenData load(Path data, double split, Counting p) {
        return TokenData.load(data, null, split, VOCAB, dir.resolve("fallback"), p);
    }

    private List<Path> caches(Path d) throws IOException {
        if (!Files.isDirectory(d)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(d)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".tokens")).toList();
        }
    }

    @Test
    void plainTextIsOneDocumentPerNonBlankLineEachAfterBos() throws IOException {
        Path data = file("data.txt", "hello world\n\n   \none two\r\nworld");
        TokenData d = load(data, 0, new Counting());
        assertArrayEquals(expected("hello world", "one two", "world"), d.train());
        assertEquals(3, d.trainDocuments());
        assertEquals(0, d.validation().length);
        assertEquals(Files.size(data), d.bytes());
        assertEquals(1, d.train()[0]);
        assertTrue(d.train().length > 6, "text tokens after each BOS");
    }

    @Test
    void jsonlByNameOrContentTakesTheTextKey() throws IOException {
        String jsonl = "{\"text\": \"hello world\", \"id\": 1}\n\n{\"id\": 2, \"text\": \"one two\"}\n  {\"text\":\"world\"}\n";
        int[] want = expected("hello world", "one two", "world");
        assertArrayEquals(want, load(file("a.jsonl", jsonl), 0, new Counting()).train());
        assertArrayEquals(want, load(file("b.txt", "\n" + jsonl), 0, new Counting()).train(), "detected by the first non-blank '{'");
        assertArrayEquals(expected("x", "{\"text\": 1}"), load(file("c.txt", "x\n{\"text\": 1}\n"), 0, new Counting()).train(),
                "plain text stays plain when it does not start with '{'");
    }

    @Test
    void aBadJsonlLineIsNamedByItsNumber() throws IOException {
        String good = "{\"text\": \"one\"}\n";
        for (String bad : new String[] {"{\"text\": 5}", "not json", "[1, 2]", "{\"txt\": \"one\"}", "{\"text\": \"one\"} trailing",
            "\"one\""}) {
            Path f = file("bad.jsonl", good + "\n" + bad + "\n" + good);
            CriaException e = assertThrows(CriaException.class, () -> load(f, 0, new Counting()), bad);
            assertTrue(e.getMessage().startsWith("bad.jsonl line 3: "), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
        }
    }

    @Test
    void invalidUtf8IsNamedByLine() throws IOException {
        Path f = dir.resolve("latin1.txt");
        Files.write(f, new byte[] {'o', 'n', 'e', '\n', 't', 'w', (byte) 0xE9, '\n'});
        CriaException e = assertThrows(CriaException.class, () -> load(f, 0, new Counting()));
        assertTrue(e.getMessage().contains("line 2") && e.getMessage().contains("UTF-8"), e.getMessage());
    }

    @Test
    void validationSplitHoldsOutTheLastDocuments() throws IOException {
        String[] docs = new String[10];
        for (int i = 0; i < 10; i++) {
            docs[i] = "one two " + "hello ".repeat(i) + "world";
        }
        Path data = file("ten.txt", String.join("\n", docs) + "\n");
        TokenData d = load(data, 0.2, new Counting());
        assertEquals(8, d.trainDocuments());
        assertEquals(2, d.validationDocuments());
        assertArrayEquals(expected(java.util.Arrays.copyOfRange(docs, 0, 8)), d.train());
        assertArrayEquals(expected(docs[8], docs[9]), d.validation());

        TokenData q = load(data, 0.25, new Counting()); // ceil(2.5) = 3
        assertEquals(3, q.validationDocuments());
        assertArrayEquals(expected(docs[7], docs[8], docs[9]), q.validation());
        assertNotEquals(d.fingerprint(), q.fingerprint(), "the split is part of the fingerprint");

        TokenData small = load(data, 0.01, new Counting()); // ceil(0.1) = 1
        assertEquals(1, small.validationDocuments());
        assertTrue(small.summary().matches("ten\\.txt: 10 documents, [0-9,]+ tokens \\([0-9.]+ tokens/byte\\), 1 held out \\([0-9,]+ tokens\\)"),
                small.summary());
    }

    @Test
    void badSplitsAreRefused() throws IOException {
        Path one = file("one.txt", "one two\n");
        CriaException e = assertThrows(CriaException.class, () -> load(one, 0.5, new Counting()));
        assertTrue(e.getMessage().contains("leaves none for training"), e.getMessage());
        assertThrows(CriaException.class, () -> load(one, 0.6, new Counting()));
        assertThrows(CriaException.class, () -> load(one, -0.1, new Counting()));
        assertThrows(CriaException.class, () -> load(one, Double.NaN, new Counting()));
        Path val = file("val.txt", "world\n");
        assertThrows(CriaException.class, () -> TokenData.load(one, val, 0.1, VOCAB, null, new Counting()), "file and split");
    }

    @Test
    void aSeparateValidationFileIsAllValidation() throws IOException {
        Path train = file("train.txt", "one two\nhello\n");
        Path val = file("val.jsonl", "{\"text\": \"world\"}\n{\"text\": \"one\"}\n");
        Counting p = new Counting();
        TokenData d = TokenData.load(train, val, 0, VOCAB, null, p);
        assertArrayEquals(expected("one two", "hello"), d.train());
        assertArrayEquals(expected("world", "one"), d.validation());
        assertEquals(2, d.validationDocuments());
        assertEquals(Files.size(train) + Files.size(val), p.total);
        assertEquals(p.total, p.last, "progress ends at all bytes");
        assertTrue(d.summary().contains("validation val.jsonl: 2 documents"), d.summary());
    }

    @Test
    void aLargeFileCutIntoChunksGivesTheSameStreamsAsLineByLine() throws IOException {
        StoryCorpus gen = new StoryCorpus(3);
        List<String> docs = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        while (text.length() < 400_000) { // many 16 KB chunks, tokenized in parallel
            String story = gen.next();
            docs.add(story);
            text.append(story).append(docs.size() % 7 == 0 ? "\n\n" : "\n");
        }
        Path data = file("stories.txt", text.toString());
        Counting p = new Counting();
        TokenData d = load(data, 0.1, p);
        int nVal = (int) Math.ceil(0.1 * docs.size());
        assertArrayEquals(expected(docs.subList(0, docs.size() - nVal).toArray(String[]::new)), d.train());
        assertArrayEquals(expected(docs.subList(docs.size() - nVal, docs.size()).toArray(String[]::new)), d.validation());
        assertTrue(p.calls > 10, "progress after each chunk: " + p.calls);
        assertEquals(Files.size(data), p.last);

        // a bad line far into a JSONL file is still named by its own number
        StringBuilder jsonl = new StringBuilder();
        for (int i = 1; i <= 20_000; i++) {
            jsonl.append(i == 12_345 ? "{\"text\": [1]}" : "{\"text\": \"one two " + i + "\"}").append('\n');
        }
        Path bad = file("big.jsonl", jsonl.toString());
        CriaException e = assertThrows(CriaException.class, () -> load(bad, 0, new Counting()));
        assertTrue(e.getMessage().startsWith("big.jsonl line 12345: "), e.getMessage());
    }

    @Test
    void missingEmptyAndBlankFilesSayWhatIsWrong() throws IOException {
        CriaException e = assertThrows(CriaException.class, () -> load(dir.resolve("nope.txt"), 0, new Counting()));
        assertTrue(e.getMessage().contains("no such"), e.getMessage());
        e = assertThrows(CriaException.class, () -> load(file("empty.txt", ""), 0, new Counting()));
        assertTrue(e.getMessage().contains("is empty"), e.getMessage());
        e = assertThrows(CriaException.class, () -> load(file("blank.txt", "\n  \n\t\n"), 0, new Counting()));
        assertTrue(e.getMessage().contains("no documents"), e.getMessage());
        e = assertThrows(CriaException.class, () -> load(dir, 0, new Counting()));
        assertTrue(e.getMessage().contains("directory"), e.getMessage());
    }

    @Test
    void theCacheIsWrittenBesideTheDataAndReusedWithoutTokenizing() throws IOException {
        Path data = file("data.txt", "hello world\none two\nworld\n");
        Counting first = new Counting();
        TokenData a = load(data, 0.3, first);
        assertFalse(a.fromCache());
        assertEquals(Files.size(data), first.last, "tokenizing reports its bytes");
        Path cache = a.cacheFile();
        assertEquals(dir.resolve(String.format("data.txt.cria-%016x.tokens", a.fingerprint())), cache);
        assertEquals(List.of(cache), caches(dir));

        // the documented layout, read back by hand
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(cache)).order(ByteOrder.LITTLE_ENDIAN);
        byte[] magic = new byte[8];
        b.get(magic);
        assertEquals("CRIATOKS", new String(magic, StandardCharsets.US_ASCII));
        assertEquals(1, b.getInt());
        assertEquals(0, b.getInt());
        assertEquals(a.fingerprint(), b.getLong());
        assertEquals(a.train().length, b.getLong());
        assertEquals(a.validation().length, b.getLong());
        int[] all = new int[a.train().length + a.validation().length];
        b.asIntBuffer().get(all);
        assertArrayEquals(expected("hello world", "one two", "world"), all);
        assertEquals(40 + 4L * all.length, Files.size(cache));

        Counting second = new Counting();
        TokenData again = load(data, 0.3, second);
        assertTrue(again.fromCache());
        assertEquals(0, second.calls, "no tokenizing the second time");
        assertArrayEquals(a.train(), again.train());
        assertArrayEquals(a.validation(), again.validation());
        assertEquals(2, again.trainDocuments());
        assertEquals(1, again.validationDocuments());
        assertEquals(a.summary(), again.summary());
        assertEquals(List.of(), second.notices);
    }

    @Test
    void aChangeOfDataOrVocabularyTokenizesAgain() throws IOException {
        Path data = file("data.txt", "hello world\none two\n");
        TokenData a = load(data, 0, new Counting());

        Files.writeString(data, "hello world\none two\nworld\n");
        Counting changed = new Counting();
        TokenData b = load(data, 0, changed);
        assertFalse(b.fromCache());
        assertTrue(changed.calls > 0);
        assertNotEquals(a.fingerprint(), b.fingerprint());
        assertEquals(3, b.trainDocuments());

        Files.writeString(data, "hello world\none two\nworle\n"); // same size, one byte differs
        assertFalse(load(data, 0, new Counting()).fromCache());

        TokenData.Vocabulary other = TokenData.Vocabulary.of(vocab(0.2f)); // same tokens, other scores
        assertNotEquals(VOCAB.fingerprint(), other.fingerprint());
        assertEquals(VOCAB.fingerprint(), TokenData.Vocabulary.of(vocab(0.1f)).fingerprint(), "the same vocabulary, the same fingerprint");
        Counting revocab = new Counting();
        TokenData c = TokenData.load(data, null, 0, other, null, revocab);
        assertFalse(c.fromCache());
        assertTrue(revocab.calls > 0);
    }

    @Test
    void aDamagedCacheIsReportedAndRebuilt() throws IOException {
        Path data = file("data.txt", "hello world\none two\n");
        TokenData a = load(data, 0, new Counting());
        Path cache = a.cacheFile();
        byte[] good = Files.readAllBytes(cache);

        Files.write(cache, java.util.Arrays.copyOf(good, good.length - 4)); // truncated
        Counting p = new Counting();
        TokenData b = load(data, 0, p);
        assertFalse(b.fromCache());
        assertTrue(p.calls > 0);
        assertEquals(1, p.notices.size());
        assertTrue(p.notices.get(0).contains("damaged") && p.notices.get(0).contains(cache.toString()), p.notices.get(0));
        assertArrayEquals(good, Files.readAllBytes(cache), "rewritten whole");

        Files.write(cache, java.util.Arrays.copyOf(good, good.length + 4)); // a stray token at the end
        Counting longer = new Counting();
        assertFalse(load(data, 0, longer).fromCache());
        assertEquals(1, longer.notices.size(), longer.notices.toString());

        byte[] badId = good.clone();
        badId[40 + 4 * 2] = (byte) 0xFF; // a token id past the vocabulary
        badId[40 + 4 * 2 + 1] = (byte) 0x7F;
        Files.write(cache, badId);
        Counting q = new Counting();
        assertFalse(load(data, 0, q).fromCache());
        assertEquals(1, q.notices.size(), q.notices.toString());

        byte[] badMagic = good.clone();
        badMagic[0] = 'X';
        Files.write(cache, badMagic);
        assertFalse(load(data, 0, new Counting()).fromCache());
        assertTrue(load(data, 0, new Counting()).fromCache(), "and good again after the rebuild");
    }

    @Test
    void aReadOnlyDataDirectoryCachesInTheFallback() throws IOException {
        Path ro = Files.createDirectory(dir.resolve("ro"));
        Path data = Files.writeString(ro.resolve("data.txt"), "hello world\none two\n");
        PosixFileAttributeView view = Files.getFileAttributeView(ro, PosixFileAttributeView.class);
        Assumptions.assumeTrue(view != null, "skipped: no POSIX permissions on this file system");
        view.setPermissions(PosixFilePermissions.fromString("r-xr-xr-x"));
        try {
            Path fallback = dir.resolve("cache/cria");
            TokenData a = TokenData.load(data, null, 0, VOCAB, fallback, new Counting());
            assertEquals(fallback, a.cacheFile().getParent());
            assertEquals(List.of(), caches(ro), "nothing written beside read-only data");
            Counting p = new Counting();
            TokenData b = TokenData.load(data, null, 0, VOCAB, fallback, p);
            assertTrue(b.fromCache());
            assertEquals(0, p.calls);

            Counting none = new Counting();
            TokenData c = TokenData.load(data, null, 0, VOCAB, null, none);
            assertNull(c.cacheFile(), "no fallback: no cache");
            assertEquals(1, none.notices.size());
            assertTrue(none.notices.get(0).contains("tokenized again next time"), none.notices.get(0));
        } finally {
            view.setPermissions(PosixFilePermissions.fromString("rwxr-xr-x"));
        }
    }

    @Test
    void sharedStoriesMatchTheTokenizerAndLeaveTheSharedFolderAlone() throws IOException {
        Path text = SharedData.require("text/stories.txt");
        Path model = SharedData.require("models/stories260K.gguf");
        TokenData.Vocabulary v = TokenData.Vocabulary.open(model);
        Path fallback = dir.resolve("fallback");
        TokenData d = TokenData.load(text, null, 0, v, fallback, new Counting());
        assertEquals(fallback, d.cacheFile().getParent(), "../shared is read-only");
        List<String> docs = Files.readAllLines(text).stream().filter(s -> !s.isBlank()).toList();
        assertEquals(docs.size(), d.trainDocuments());
        Tokenizer tok = v.tokenizer();
        int[] want = docs.stream().flatMapToInt(s -> IntStream.concat(IntStream.of(tok.bos()), IntStream.of(tok.encode(s, false, false))))
                .toArray();
        assertArrayEquals(want, d.train());
    }
}
