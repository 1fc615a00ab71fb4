// Opening the files the verbs write: what a path may name, and one-line errors for every way a write can fail.
package cria.cli;

import cria.CriaException;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * The rules every verb that writes a file follows, in one place.
 *
 * <ul>
 *   <li>Nothing but a regular file is ever deleted, truncated or replaced. A verb that replaces
 *       or appends ({@link Kind#FILE}: batch --out, quantize, synth) refuses anything else, so
 *       that {@code --out /dev/null} or a named pipe stays what it was.</li>
 *   <li>A verb that only streams bytes out ({@link Kind#STREAM}: logits, tensor, charts, reports)
 *       may also write into an existing character device or pipe ({@code -o /dev/stdout},
 *       {@code -o /dev/null}), opened without truncation, as the shell's {@code >} would; a
 *       block device, socket or folder is refused (writing a disk image by accident is not
 *       something to allow).</li>
 *   <li>A symbolic link is followed to what it names, as the shell's {@code >} follows it: the
 *       link itself is never deleted or replaced, and what it points at must pass the same
 *       rules. A link to nothing is refused rather than creating a file in some other place.</li>
 *   <li>A missing folder is an error, not created (except where a verb asks for it).</li>
 * </ul>
 *
 * The checks run before the work starts (before a model loads), so that a bad path costs
 * nothing; the open and the writes translate every {@link IOException} into one line naming
 * the path and the cause. A file swapped for something else between the check and the open
 * is not guarded against: the checks protect the user from mistakes, not from a race with
 * another user's process.
 */
final class OutputFiles {
    private OutputFiles() {}

    /** How a verb uses its output path. */
    enum Kind {
        /** Replaced, truncated, appended to or read back: a regular file (or a new one) only. */
        FILE,
        /** Written once from the start: a regular file, or an existing character device or pipe. */
        STREAM
    }

    /** Writes the content of an output stream; may throw IOException, which becomes one line. */
    @FunctionalInterface
    interface Body {
        void write(OutputStream out) throws IOException;
    }

    /**
     * Checks that {@code path} can be written as {@code kind} and throws a one-line
     * CriaException if not; {@code option} names it in the message (e.g. "--out").
     * Returns true when the path names an existing regular file (through links).
     */
    static boolean check(Path path, String option, Kind kind) {
        return check(path, option, kind, false);
    }

    /** As {@link #check(Path, String, Kind)}; with {@code makeFolders}, a missing folder is not an error. */
    static boolean check(Path path, String option, Kind kind, boolean makeFolders) {
        BasicFileAttributes link = attributes(path, LinkOption.NOFOLLOW_LINKS);
        BasicFileAttributes target = link != null && link.isSymbolicLink() ? attributes(path) : link;
        if (link != null && target == null) {
            throw new CriaException(path + " is a link to a missing file; " + option + " needs a file path (give the link's target)");
        }
        if (target != null) {
            if (target.isDirectory()) {
                throw new CriaException(path + " is a directory; " + option + " needs a file path");
            }
            if (!target.isRegularFile() && !(kind == Kind.STREAM && isStreamDevice(path))) {
                throw new CriaException(path + " is not a regular file; " + option + " needs a file path"
                        + (kind == Kind.FILE ? "" : " (or a character device or pipe)"));
            }
            if (!Files.isWritable(path)) {
                throw new CriaException(path + ": permission denied (the file is not writable)");
            }
            return target.isRegularFile();
        }
        Path parent = path.toAbsolutePath().getParent();
        if (parent == null) {
            return false;
        }
        BasicFileAttributes dir = attributes(parent);
        if (dir == null) {
            if (makeFolders) {
                return false;
            }
            throw new CriaException(path + ": folder " + parent + " does not exist; create it first or give another path");
        }
        if (!dir.isDirectory()) {
            throw new CriaException(path + ": " + parent + " is not a folder");
        }
        if (!Files.isWritable(parent)) {
            throw new CriaException(path + ": permission denied (cannot create files in " + parent + ")");
        }
        return false;
    }

    /**
     * Checks {@code path}, opens it (truncating a regular file, never a device or pipe), runs
     * {@code body} on a buffered stream and closes it; any failure is one line naming the path.
     */
    static void write(Path path, String option, Kind kind, Body body) {
        write(path, option, kind, false, body);
    }

    /** As {@link #write(Path, String, Kind, Body)}; with {@code makeFolders}, missing folders are created. */
    static void write(Path path, String option, Kind kind, boolean makeFolders, Body body) {
        boolean regular = check(path, option, kind, makeFolders);
        try {
            if (makeFolders) {
                Path parent = path.toAbsolutePath().getParent();
                if (parent != null) {
                    Files.createDirectories(parent);
                }
            }
            // An existing device or pipe is opened as it is: truncation means nothing to it, and
            // CREATE would race a deletion into making a regular file in /dev.
            OutputStream raw = regular || !Files.exists(path)
                    ? Files.newOutputStream(path, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)
                    : Files.newOutputStream(path, StandardOpenOption.WRITE);
            try (OutputStream out = new BufferedOutputStream(raw, 1 << 16)) {
                body.write(out);
            }
        } catch (IOException e) {
            throw failed(path, e);
        }
    }

    /** The one-line error for a failed open or write of {@code path}. */
    static CriaException failed(Path path, IOException e) {
        return new CriaException(path + ": " + cause(path, e));
    }

    /** Why a write of {@code path} failed, in words, without the path (which the caller names). */
    static String cause(Path path, IOException e) {
        if (e instanceof NoSuchFileException) {
            return "cannot create the file: folder " + path.toAbsolutePath().getParent() + " does not exist";
        }
        String why = reason(e);
        if ("Is a directory".equals(why)) {
            return "is a directory; give a file path";
        }
        return why.equals("permission denied") ? why : "cannot write: " + why;
    }

    /** The operating system's reason for {@code e}, on one line ("No space left on device", "permission denied"). */
    static String reason(IOException e) {
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof NoSuchFileException) {
            return "no such file or folder";
        }
        if (e instanceof NotDirectoryException) {
            return "a part of the path is not a folder";
        }
        String why = e instanceof FileSystemException fse && fse.getReason() != null ? fse.getReason() : e.getMessage();
        return why == null || why.isBlank() ? e.getClass().getSimpleName() : Main.oneLine(why);
    }

    private static BasicFileAttributes attributes(Path p, LinkOption... options) {
        try {
            return Files.readAttributes(p, BasicFileAttributes.class, options);
        } catch (IOException e) {
            return null;
        }
    }

    /** True for a character device or a FIFO (after links): the things a stream may be written into. */
    private static boolean isStreamDevice(Path p) {
        try {
            int mode = (Integer) Files.getAttribute(p, "unix:mode");
            int type = mode & 0170000;
            return type == 0020000 || type == 0010000; // S_IFCHR, S_IFIFO
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException | ClassCastException e) {
            return false; // cannot tell: treat it as the unsafe kind
        }
    }
}
