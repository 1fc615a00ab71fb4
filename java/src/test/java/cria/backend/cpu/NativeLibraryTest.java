// The native library's cache: extracted once by content hash, trusted only when nobody else could have written it.
package cria.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NativeLibraryTest {
    @TempDir
    Path tmp;

    private static final byte[] LIB = "not really an ELF file, but bytes to keep".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    private Path privateDir(String name) throws IOException {
        Path d = tmp.resolve(name);
        Files.createDirectories(d);
        Files.setPosixFilePermissions(d, PosixFilePermissions.fromString("rwx------"));
        return d;
    }

    @Test
    void extractedOnceUnderItsHashReadableOnlyByItsOwner() throws IOException {
        Path dir = privateDir("cache");
        Path p = NativeLibrary.extract(LIB, dir);
        assertEquals(NativeLibrary.sha256(LIB) + "-libcria.so", p.getFileName().toString());
        assertArrayEquals(LIB, Files.readAllBytes(p));
        assertEquals("r-x------", PosixFilePermissions.toString(Files.getPosixFilePermissions(p)));
        long modified = Files.getLastModifiedTime(p).toMillis();
        assertEquals(p, NativeLibrary.extract(LIB, dir));
        assertEquals(modified, Files.getLastModifiedTime(p).toMillis(), "a trusted copy is reused, not rewritten");
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temporary files are left behind");
        }
    }

    @Test
    void aCopyNobodyCanVouchForIsReplaced() throws IOException {
        Path dir = privateDir("cache");
        Path target = dir.resolve(NativeLibrary.sha256(LIB) + "-libcria.so");
        // other bytes under the right name
        Files.write(target, "evil".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        assertArrayEquals(LIB, Files.readAllBytes(NativeLibrary.extract(LIB, dir)));
        // the right bytes, but writable by others (someone could change them between check and load)
        Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rwxrwxrwx"));
        NativeLibrary.extract(LIB, dir);
        assertEquals("r-x------", PosixFilePermissions.toString(Files.getPosixFilePermissions(target)));
        // a link to a file someone else controls: the link is replaced, its target left alone
        Path theirs = tmp.resolve("theirs.so");
        Files.write(theirs, LIB);
        Files.delete(target);
        Files.createSymbolicLink(target, theirs);
        Path p = NativeLibrary.extract(LIB, dir);
        assertTrue(Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS), "a regular file now, not a link");
        assertArrayEquals(LIB, Files.readAllBytes(theirs), "the link's target was not touched");
    }

    @Test
    void aCacheFolderOthersCanWriteIsRefused() throws IOException {
        String old = System.getProperty("cria.cache.dir");
        try {
            Path base = privateDir("base");
            System.setProperty("cria.cache.dir", base.toString());
            Path dir = NativeLibrary.cacheDir();
            assertEquals(base.resolve("native"), dir);
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)), "made private");
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
            assertThrows(IOException.class, NativeLibrary::cacheDir);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwxrwx---"));
            assertThrows(IOException.class, NativeLibrary::cacheDir);
            Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwx------"));
            Path open = tmp.resolve("open");
            Files.createDirectories(open);
            Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxrwxrwx"));
            System.setProperty("cria.cache.dir", open.resolve("cria").toString());
            assertThrows(IOException.class, NativeLibrary::cacheDir, "a folder above that others may write");
        } finally {
            if (old == null) {
                System.clearProperty("cria.cache.dir");
            } else {
                System.setProperty("cria.cache.dir", old);
            }
        }
    }

    @Test
    void manyExtractingAtOnceAllGetTheSameGoodFile() throws Exception {
        Path dir = privateDir("race");
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<Path>> fs = new ArrayList<>();
            for (int i = 0; i < 32; i++) {
                fs.add(pool.submit(() -> NativeLibrary.extract(LIB, dir)));
            }
            Set<Path> got = new HashSet<>();
            for (Future<Path> f : fs) {
                got.add(f.get());
            }
            assertEquals(1, got.size());
            assertArrayEquals(LIB, Files.readAllBytes(got.iterator().next()));
        } finally {
            pool.shutdown();
        }
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count());
        }
    }

    @Test
    void platformNamesMatchTheBuilds() {
        String p = NativeLibrary.platform();
        assertFalse(p.contains(" "), p);
        assertEquals("cria/native/" + p + "/libcria.so", NativeLibrary.resource());
        if (System.getProperty("os.arch").equals("amd64")) {
            assertEquals("linux-x86_64", p);
        }
    }
}
