// Writes GGUF v3 files: metadata in order, then each tensor's bytes, aligned; data is filled in place in a mapped file.
package cria.gguf;

import cria.CriaException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Builds a GGUF (version 3) file. Metadata is written in the order given; tensors in the order
 * added, each at an offset aligned to {@code general.alignment} (32 unless the metadata says
 * otherwise). The output is written to a temporary file beside the target, memory-mapped, so
 * that tensor bytes are produced straight into place, then renamed over the target: a failed
 * write never leaves a half-written model under the requested name.
 */
public final class GgufWriter {

    /** Produces a tensor's bytes into {@code dst} (exactly the tensor's byte size). */
    @FunctionalInterface
    public interface TensorFiller {
        void fill(MemorySegment dst) throws IOException;
    }

    /** Told before each tensor is filled (for progress bars). */
    @FunctionalInterface
    public interface Progress {
        void tensor(int index, int count, String name, long bytes);
    }

    private record Entry(String name, GgmlType type, long[] shape, long bytes, TensorFiller filler) {}

    private final Metadata metadata;
    private final List<Entry> tensors = new ArrayList<>();

    /** A writer for these metadata (kept by reference: later changes are written too). */
    public GgufWriter(Metadata metadata) {
        this.metadata = metadata;
    }

    /** The metadata that will be written (may still be changed before {@link #write}). */
    public Metadata metadata() {
        return metadata;
    }

    /** Adds a tensor; {@code shape[0]} is the row length (ggml order). */
    public void addTensor(String name, GgmlType type, long[] shape, TensorFiller filler) {
        long elements = 1;
        for (long d : shape) {
            elements = Math.multiplyExact(elements, d);
        }
        long bytes = type.rowBytes(shape[0]) * (shape[0] == 0 ? 0 : elements / shape[0]);
        tensors.add(new Entry(name, type, shape.clone(), bytes, filler));
    }

    /** Adds a tensor whose bytes are already in memory (copied when written). */
    public void addTensor(String name, GgmlType type, long[] shape, MemorySegment bytes) {
        addTensor(name, type, shape, dst -> MemorySegment.copy(bytes, 0, dst, 0, dst.byteSize()));
    }

    private long alignment() {
        GgufValue v = metadata.get(GgufFile.KEY_ALIGNMENT);
        Long a = v == null ? null : v.asLong();
        return a == null ? GgufFile.DEFAULT_ALIGNMENT : a;
    }

    /** Writes the file. */
    public void write(Path out) {
        write(out, null);
    }

    /** Writes the file, reporting each tensor to {@code progress} (may be null). */
    public void write(Path out, Progress progress) {
        long alignment = alignment();
        byte[] header = header(alignment);
        long dataStart = GgufFile.alignUp(header.length, alignment);
        long total = dataStart;
        long[] offsets = new long[tensors.size()];
        for (int i = 0; i < tensors.size(); i++) {
            offsets[i] = total - dataStart;
            total += GgufFile.alignUp(tensors.get(i).bytes, alignment);
        }
        Path abs = target(out);
        Path dir = abs.getParent();
        Path tmp = null;
        try {
            if (dir != null) {
                Files.createDirectories(dir);
            }
            tmp = Files.createTempFile(dir, "." + abs.getFileName() + ".", ".tmp");
            tmp.toFile().deleteOnExit(); // Ctrl-C (exit 130) mid-write leaves no hidden model-sized file behind
            try {
                Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
            } catch (UnsupportedOperationException ignored) {
                // not a POSIX file system: keep the default permissions
            }
            // The file is written through a mapping: a disk that fills up part-way would fault on a
            // page write, so the space is checked first (and a fault still becomes one line below).
            long usable = Files.getFileStore(tmp).getUsableSpace();
            if (usable >= 0 && usable < total) {
                throw new CriaException(out + ": cannot write: " + (total >> 20) + " MiB needed but only " + (usable >> 20)
                        + " MiB free on that disk");
            }
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.READ, StandardOpenOption.WRITE);
                 Arena arena = Arena.ofShared()) {
                MemorySegment seg = ch.map(FileChannel.MapMode.READ_WRITE, 0, total, arena);
                MemorySegment.copy(header, 0, seg, ValueLayout.JAVA_BYTE, 0, header.length);
                for (int i = 0; i < tensors.size(); i++) {
                    Entry e = tensors.get(i);
                    if (progress != null) {
                        progress.tensor(i, tensors.size(), e.name, e.bytes);
                    }
                    e.filler.fill(seg.asSlice(dataStart + offsets[i], e.bytes));
                }
                seg.force();
            }
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            tmp = null;
        } catch (InternalError e) {
            // what the JVM makes of a fault on a mapped page (the disk filled up or went away)
            throw new CriaException(out + ": cannot write: the disk refused a page of the file (full or gone?)");
        } catch (IOException e) {
            String why = e instanceof FileSystemException f && f.getReason() != null ? f.getReason() : e.getMessage();
            throw new CriaException(out + ": cannot write: "
                    + (e instanceof AccessDeniedException ? "permission denied" : why));
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // best effort: the temporary file is hidden and named after the target
                }
            }
        }
    }

    /**
     * The file to rename the finished model over. Only a regular file is ever replaced: renaming
     * over a device node or a named pipe would delete it (run as root, {@code /dev/null}). A
     * symbolic link is followed, as a plain {@code open} would follow it, so the link stays and
     * the file it names gets the new model; a link to nothing is refused. Public for writers
     * that build a file in place and rename it themselves (pruning).
     */
    public static Path target(Path out) {
        Path abs = out.toAbsolutePath();
        if (Files.isSymbolicLink(abs)) {
            try {
                abs = abs.toRealPath();
            } catch (IOException e) {
                throw new CriaException(out + " is a link to a missing file; give the path of a file to write");
            }
        }
        if (Files.isDirectory(abs)) {
            throw new CriaException(out + " is a directory; give the path of a file to write");
        }
        if (Files.exists(abs, LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(abs, LinkOption.NOFOLLOW_LINKS)) {
            throw new CriaException(out + " is not a regular file; give the path of a file to write (it is replaced when complete)");
        }
        return abs;
    }

    private byte[] header(long alignment) {
        LeBytes b = new LeBytes();
        b.u32(GgufFile.MAGIC);
        b.u32(3);
        b.u64(tensors.size());
        b.u64(metadata.size());
        for (Map.Entry<String, GgufValue> kv : metadata.asMap().entrySet()) {
            b.string(kv.getKey());
            b.u32(kv.getValue().type().id());
            writeValue(b, kv.getValue());
        }
        long offset = 0;
        for (Entry e : tensors) {
            b.string(e.name);
            b.u32(e.shape.length);
            for (long d : e.shape) {
                b.u64(d);
            }
            b.u32(e.type.id());
            b.u64(offset);
            offset += GgufFile.alignUp(e.bytes, alignment);
        }
        return b.toByteArray();
    }

    private static void writeValue(LeBytes b, GgufValue v) {
        if (v.isArray()) {
            writeArray(b, v);
            return;
        }
        Object o = v.value();
        switch (v.type()) {
            case UINT8, INT8 -> b.write((Byte) o);
            case UINT16, INT16 -> b.u16((Short) o);
            case UINT32, INT32 -> b.u32((Integer) o);
            case UINT64, INT64 -> b.u64((Long) o);
            case FLOAT32 -> b.u32(Float.floatToRawIntBits((Float) o));
            case FLOAT64 -> b.u64(Double.doubleToRawLongBits((Double) o));
            case BOOL -> b.write(((Boolean) o) ? 1 : 0);
            case STRING -> b.string((String) o);
            case ARRAY -> throw new IllegalStateException();
        }
    }

    private static void writeArray(LeBytes b, GgufValue v) {
        b.u32(v.elementType().id());
        int n = v.length();
        b.u64(n);
        Object a = v.value();
        for (int i = 0; i < n; i++) {
            switch (v.elementType()) {
                case UINT8, INT8 -> b.write(((byte[]) a)[i]);
                case UINT16, INT16 -> b.u16(((short[]) a)[i]);
                case UINT32, INT32 -> b.u32(((int[]) a)[i]);
                case UINT64, INT64 -> b.u64(((long[]) a)[i]);
                case FLOAT32 -> b.u32(Float.floatToRawIntBits(((float[]) a)[i]));
                case FLOAT64 -> b.u64(Double.doubleToRawLongBits(((double[]) a)[i]));
                case BOOL -> b.write(((boolean[]) a)[i] ? 1 : 0);
                case STRING -> b.string(((String[]) a)[i]);
                case ARRAY -> writeArray(b, ((GgufValue[]) a)[i]);
            }
        }
    }

    /** A growable little-endian byte buffer. */
    private static final class LeBytes extends ByteArrayOutputStream {
        LeBytes() {
            super(1 << 16);
        }

        void u16(int v) {
            write(v);
            write(v >>> 8);
        }

        void u32(int v) {
            u16(v);
            u16(v >>> 16);
        }

        void u64(long v) {
            u32((int) v);
            u32((int) (v >>> 32));
        }

        void string(String s) {
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            u64(bytes.length);
            write(bytes, 0, bytes.length);
        }
    }
}
