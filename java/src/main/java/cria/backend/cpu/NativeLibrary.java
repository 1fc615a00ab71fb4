// Finds the native CPU library: -Dcria.native.dir, or the copy inside the jar, extracted once into a private per-user cache.
package cria.backend.cpu;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Set;

/**
 * Where libcria comes from. With {@code -Dcria.native.dir=DIR} (the launcher and the tests set it
 * to the build's target/native) it is {@code DIR/libcria.so}. Otherwise it is the resource
 * {@code cria/native/<os>-<arch>/libcria.so} of the jar, which the build puts there, written once
 * to {@code ~/.cache/cria/native/<sha-256>-libcria.so} (or {@code $XDG_CACHE_HOME}, or
 * {@code -Dcria.cache.dir}).
 *
 * <p>The cache is trusted only as far as nobody else can write it: its folders must belong to the
 * user and be closed to others (they are made 0700), and a cached file is loaded only if it is a
 * regular file (not a link) of this user, writable by nobody else, with exactly the jar's bytes.
 * Anything else is replaced or, when the folder itself cannot be trusted, a private temporary
 * folder is used instead. Several JVMs starting at once each write their own temporary file and
 * rename it into place atomically: the bytes are the same, whoever wins.
 */
final class NativeLibrary {
    private NativeLibrary() {}

    /** The largest library accepted from the jar (the real one is a few hundred KiB). */
    private static final long MAX_BYTES = 64L << 20;

    /** The library file, or null and the reason it is not there. */
    record Found(Path path, String why) {}

    /** {@code <os>-<arch>} as the build names it ({@code uname -s}-{@code uname -m}, lower case): linux-x86_64, linux-aarch64. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String o = os.startsWith("linux") ? "linux" : os.startsWith("mac") ? "darwin" : os.startsWith("windows") ? "windows" : os.replace(' ', '_');
        String a = switch (arch) {
            case "amd64", "x86_64", "x86-64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> arch;
        };
        return o + "-" + a;
    }

    /** The resource path of this host's library inside the jar. */
    static String resource() {
        return "cria/native/" + platform() + "/libcria.so";
    }

    /** Finds (and, from the jar, extracts) the library; never throws. */
    static Found locate() {
        String dir = System.getProperty("cria.native.dir");
        if (dir != null) {
            Path p = Path.of(dir, "libcria.so");
            if (!Files.isRegularFile(p) || p.toFile().length() == 0) {
                return new Found(null, "native library not found (" + p + ", from -Dcria.native.dir); build it with make");
            }
            return new Found(p, null);
        }
        byte[] lib;
        try (InputStream in = NativeLibrary.class.getClassLoader().getResourceAsStream(resource())) {
            if (in == null) {
                return new Found(null, "this Cria jar has no native library for " + platform());
            }
            lib = in.readNBytes((int) MAX_BYTES + 1);
        } catch (IOException e) {
            return new Found(null, "cannot read the native library from the jar: " + e.getMessage());
        }
        if (lib.length == 0 || lib.length > MAX_BYTES) {
            return new Found(null, "the jar's native library for " + platform() + " is empty or too large");
        }
        try {
            return new Found(extract(lib, cacheDir()), null);
        } catch (IOException | RuntimeException e) {
            try {
                Path p = extract(lib, privateTempDir());
                p.toFile().deleteOnExit(); // after its folder's registration, so deleted before it
                return new Found(p, null);
            } catch (IOException | RuntimeException e2) {
                return new Found(null, "cannot write the native library to a cache folder: " + message(e));
            }
        }
    }

    /** Writes {@code lib} into {@code dir} under its content hash, unless a trusted identical copy is there. */
    static Path extract(byte[] lib, Path dir) throws IOException {
        Path target = dir.resolve(sha256(lib) + "-libcria.so");
        UserPrincipal me = Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS);
        if (trusted(target, lib, me)) {
            return target;
        }
        Path tmp = Files.createTempFile(dir, ".libcria-", ".tmp"); // 0600 on POSIX, created exclusively
        try {
            Files.write(tmp, lib);
            posix(tmp, "r-x------");
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
        if (!trusted(target, lib, me)) {
            throw new IOException(target + " changed while it was written");
        }
        return target;
    }

    /** A regular file (not a link) of {@code me}, writable by nobody else, holding exactly {@code lib}. */
    private static boolean trusted(Path f, byte[] lib, UserPrincipal me) throws IOException {
        if (!Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)) {
            return false;
        }
        PosixFileAttributes a = attributes(f);
        if (a != null && (!a.owner().equals(me) || writableByOthers(a.permissions()))) {
            return false;
        }
        return Files.size(f) == lib.length && Arrays.equals(Files.readAllBytes(f), lib);
    }

    /**
     * The cache folder: {@code -Dcria.cache.dir}, {@code $XDG_CACHE_HOME/cria}, or
     * {@code ~/.cache/cria}, with {@code native/} below; made 0700 when new, and refused (an
     * IOException) unless both belong to this user and are closed to others, and the folder above
     * them is not writable by others.
     */
    static Path cacheDir() throws IOException {
        String prop = System.getProperty("cria.cache.dir");
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = prop != null ? Path.of(prop)
                : xdg != null && !xdg.isBlank() && Path.of(xdg).isAbsolute() ? Path.of(xdg, "cria")
                : Path.of(System.getProperty("user.home"), ".cache", "cria");
        Path dir = base.resolve("native");
        for (Path d : new Path[] {base, dir}) {
            if (!Files.exists(d, LinkOption.NOFOLLOW_LINKS)) {
                try {
                    Files.createDirectories(d, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
                } catch (UnsupportedOperationException e) {
                    throw new IOException("not a POSIX file system: " + d);
                }
            }
        }
        UserPrincipal me = whoAmI(dir);
        // whoever may write the folder above could swap ours for theirs after these checks
        Path above = base.toAbsolutePath().getParent();
        PosixFileAttributes up = above == null ? null : attributes(above);
        if (up != null && writableByOthers(up.permissions())) {
            throw new IOException(above + " is writable by other users");
        }
        for (Path d : new Path[] {base, dir}) {
            PosixFileAttributes a = attributes(d);
            if (a == null || !a.isDirectory() || a.isSymbolicLink() || !a.owner().equals(me) || writableByOthers(a.permissions())) {
                throw new IOException(d + " is not a private folder of this user");
            }
        }
        return dir;
    }

    /** A fresh 0700 folder in the system's temporary directory, removed when the JVM exits. */
    private static Path privateTempDir() throws IOException {
        Path d = Files.createTempDirectory("cria-native-");
        d.toFile().deleteOnExit();
        return d;
    }

    /** The user this JVM writes files as: the owner of a file it has just created. */
    private static UserPrincipal whoAmI(Path dir) throws IOException {
        Path probe = Files.createTempFile(dir, ".owner-", ".tmp");
        try {
            return Files.getOwner(probe, LinkOption.NOFOLLOW_LINKS);
        } finally {
            Files.deleteIfExists(probe);
        }
    }

    private static PosixFileAttributes attributes(Path p) throws IOException {
        PosixFileAttributeView v = Files.getFileAttributeView(p, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS);
        return v == null ? null : v.readAttributes();
    }

    private static boolean writableByOthers(Set<PosixFilePermission> p) {
        return p.contains(PosixFilePermission.GROUP_WRITE) || p.contains(PosixFilePermission.OTHERS_WRITE);
    }

    private static void posix(Path p, String perms) throws IOException {
        try {
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(perms));
        } catch (UnsupportedOperationException e) {
            // not POSIX: the folder checks above have already refused such a cache
        }
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String message(Exception e) {
        if (e instanceof AccessDeniedException) {
            return "permission denied (" + e.getMessage() + ")";
        }
        if (e instanceof FileSystemException f && f.getReason() != null) {
            return f.getFile() + ": " + f.getReason();
        }
        return String.valueOf(e.getMessage());
    }
}
