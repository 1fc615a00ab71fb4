// A GGUF file mapped once into memory: parsed and validated header, metadata, tensor table, zero-copy tensor slices.
package cria.gguf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An open GGUF file (version 2 or 3). The whole file is memory-mapped once into a shared
 * {@link Arena}; metadata is parsed eagerly (it is small), tensor data is never copied:
 * {@link #data(GgufTensorInfo)} returns a slice of the mapping. Everything the file claims is
 * checked before it is believed (sizes, counts, offsets, overlaps, types, UTF-8), so a corrupt
 * or hostile file fails with a one-line {@link GgufException} instead of a crash or a giant
 * allocation. Close it to unmap; slices must not be used after that.
 */
public final class GgufFile implements AutoCloseable {
    /** "GGUF" read as a little-endian u32. */
    public static final int MAGIC = 0x46554747;
    public static final int DEFAULT_ALIGNMENT = 32;
    public static final String KEY_ALIGNMENT = "general.alignment";

    private final Path path;
    private final Arena arena;
    private final MemorySegment segment;
    private final int version;
    private final Metadata metadata;
    private final List<GgufTensorInfo> tensors;
    private final Map<String, GgufTensorInfo> byName;
    private final long alignment;
    private final long dataOffset;

    private GgufFile(Path path, Arena arena, MemorySegment segment, int version, Metadata metadata,
                     List<GgufTensorInfo> tensors, long alignment, long dataOffset) {
        this.path = path;
        this.arena = arena;
        this.segment = segment;
        this.version = version;
        this.metadata = metadata;
        this.tensors = Collections.unmodifiableList(tensors);
        Map<String, GgufTensorInfo> m = new LinkedHashMap<>();
        for (GgufTensorInfo t : tensors) {
            m.put(t.name(), t);
        }
        this.byName = m;
        this.alignment = alignment;
        this.dataOffset = dataOffset;
    }

    /**
     * Maps and parses a GGUF file.
     *
     * @throws GgufException when the file is missing, unreadable, not GGUF, or corrupt
     */
    public static GgufFile open(Path path) {
        return open(path, false);
    }

    /**
     * Maps and parses a GGUF file; {@code writable} maps it read-write, so that tensor data can be
     * changed in place (the file on disk changes with it; used to prune or factorize a working copy).
     *
     * @throws GgufException when the file is missing, unreadable, not GGUF, or corrupt
     */
    public static GgufFile open(Path path, boolean writable) {
        String name = path.toString();
        long size;
        try {
            if (Files.isDirectory(path)) {
                throw new GgufException(name + ": is a directory, not a GGUF file");
            }
            size = Files.size(path);
        } catch (NoSuchFileException e) {
            throw new GgufException(name + ": no such file");
        } catch (IOException e) {
            throw new GgufException(name + ": cannot read: " + e.getMessage());
        }
        if (size == 0) {
            throw new GgufException(name + ": empty file, not GGUF");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel ch = writable ? FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)
                : FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment seg = ch.map(writable ? FileChannel.MapMode.READ_WRITE : FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return parse(path, arena, seg);
        } catch (AccessDeniedException e) {
            arena.close();
            throw new GgufException(name + ": permission denied");
        } catch (IOException e) {
            arena.close();
            throw new GgufException(name + ": cannot map: " + e.getMessage());
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    private static GgufFile parse(Path path, Arena arena, MemorySegment seg) {
        GgufCursor in = new GgufCursor(seg, path.toString());
        int magic = in.u32("magic");
        if (magic != MAGIC) {
            throw in.fail(0, "not a GGUF file (magic " + printableMagic(seg) + ", expected \"GGUF\")");
        }
        int version = in.u32("version");
        if (version == 1) {
            throw in.fail(4, "GGUF version 1 is not supported; convert the model again with a recent llama.cpp");
        }
        if (version != 2 && version != 3) {
            String hint = (Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3)
                    ? "; the file looks big-endian, which Cria does not read"
                    : "; Cria reads versions 2 and 3";
            throw in.fail(4, "unsupported GGUF version " + Integer.toUnsignedString(version) + hint);
        }
        long tensorCount = in.u64("tensor count");
        long kvCount = in.u64("metadata count");
        // Each metadata entry takes at least 13 bytes (key length, type, a 1-byte value), each tensor info 32.
        if (kvCount < 0 || kvCount > in.remaining() / 13) {
            throw in.fail(16, "metadata count " + Long.toUnsignedString(kvCount) + " cannot fit in a file of " + seg.byteSize() + " bytes (truncated or corrupt)");
        }
        if (tensorCount < 0 || tensorCount > in.remaining() / 32) {
            throw in.fail(8, "tensor count " + Long.toUnsignedString(tensorCount) + " cannot fit in a file of " + seg.byteSize() + " bytes (truncated or corrupt)");
        }

        Metadata md = new Metadata(path.toString());
        for (long i = 0; i < kvCount; i++) {
            long at = in.position();
            String key = in.string("metadata key " + i);
            if (md.has(key)) {
                throw in.fail(at, "duplicate metadata key " + GgufValue.quote(key));
            }
            md.put(key, in.value(key));
        }

        long alignment = DEFAULT_ALIGNMENT;
        GgufValue av = md.get(KEY_ALIGNMENT);
        if (av != null) {
            Long a = av.asLong();
            if (a == null || a <= 0 || Long.bitCount(a) != 1 || a > (1 << 20)) {
                throw new GgufException(path + ": " + KEY_ALIGNMENT + " must be a power of two up to 1 MiB, got " + av.display(1));
            }
            alignment = a;
        }

        List<GgufTensorInfo> tensors = new ArrayList<>((int) tensorCount);
        Map<String, Boolean> names = new java.util.HashMap<>();
        for (long i = 0; i < tensorCount; i++) {
            long at = in.position();
            String name = in.string("tensor name " + i);
            if (names.put(name, Boolean.TRUE) != null) {
                throw in.fail(at, "duplicate tensor name " + GgufValue.quote(name));
            }
            int nDims = in.u32("dimension count of " + name);
            if (nDims < 1 || nDims > 4) {
                throw in.fail(at, "tensor " + GgufValue.quote(name) + " has " + Integer.toUnsignedString(nDims) + " dimensions (1 to 4 allowed)");
            }
            long[] shape = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++) {
                shape[d] = in.u64("dimension " + d + " of " + name);
                if (shape[d] < 0) {
                    throw in.fail(at, "tensor " + GgufValue.quote(name) + " dimension " + d + " is " + Long.toUnsignedString(shape[d]) + ", too large");
                }
                try {
                    elements = Math.multiplyExact(elements, shape[d]);
                } catch (ArithmeticException e) {
                    throw in.fail(at, "tensor " + GgufValue.quote(name) + " shape " + java.util.Arrays.toString(shape) + " overflows");
                }
            }
            int typeId = in.u32("type of " + name);
            GgmlType type = GgmlType.byId(Integer.toUnsignedLong(typeId));
            if (type == null) {
                throw in.fail(at, "tensor " + GgufValue.quote(name) + " has unknown type id " + Integer.toUnsignedString(typeId)
                        + "; this file needs a newer Cria or is corrupt");
            }
            if (shape[0] % type.blockSize() != 0) {
                throw in.fail(at, "tensor " + GgufValue.quote(name) + " of type " + type + " has rows of " + shape[0]
                        + " values, not a multiple of the block size " + type.blockSize());
            }
            long offset = in.u64("offset of " + name);
            if (offset < 0 || offset % alignment != 0) {
                throw in.fail(at, "tensor " + GgufValue.quote(name) + " offset " + Long.toUnsignedString(offset) + " is not a multiple of the alignment " + alignment);
            }
            long bytes;
            try {
                bytes = Math.multiplyExact(elements / type.blockSize(), (long) type.typeSize());
            } catch (ArithmeticException e) {
                throw in.fail(at, "tensor " + GgufValue.quote(name) + " is too large");
            }
            tensors.add(new GgufTensorInfo(name, type, shape, offset, bytes));
        }

        long dataOffset = alignUp(in.position(), alignment);
        long dataSize = seg.byteSize() - dataOffset;
        if (tensorCount > 0 && dataOffset > seg.byteSize()) {
            throw new GgufException(path + ": truncated: the tensor data would start at byte " + dataOffset + " but the file has " + seg.byteSize());
        }
        List<GgufTensorInfo> sorted = new ArrayList<>(tensors);
        sorted.sort(Comparator.comparingLong(GgufTensorInfo::offset));
        long end = 0;
        GgufTensorInfo prev = null;
        for (GgufTensorInfo t : sorted) {
            if (t.offset() > dataSize || t.byteSize() > dataSize - t.offset()) {
                throw new GgufException(path + ": tensor " + GgufValue.quote(t.name()) + " (" + t.byteSize() + " bytes at data offset "
                        + t.offset() + ") lies past the end of the file (data section: " + Math.max(0, dataSize) + " bytes); the file is truncated or corrupt");
            }
            if (prev != null && t.offset() < end && t.byteSize() > 0) {
                throw new GgufException(path + ": tensors " + GgufValue.quote(prev.name()) + " and " + GgufValue.quote(t.name()) + " overlap");
            }
            if (t.byteSize() > 0) {
                end = t.offset() + t.byteSize();
                prev = t;
            }
        }
        return new GgufFile(path, arena, seg, version, md, tensors, alignment, dataOffset);
    }

    private static String printableMagic(MemorySegment seg) {
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < 4 && i < seg.byteSize(); i++) {
            int b = seg.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i) & 0xff;
            if (b >= 0x20 && b < 0x7f) {
                sb.append((char) b);
            } else {
                sb.append(String.format("\\x%02x", b));
            }
        }
        return sb.append('"').toString();
    }

    static long alignUp(long x, long alignment) {
        return (x + alignment - 1) / alignment * alignment;
    }

    /** The file's path, as given. */
    public Path path() {
        return path;
    }

    /** The GGUF version (2 or 3). */
    public int version() {
        return version;
    }

    /** The key/value metadata, in file order. */
    public Metadata metadata() {
        return metadata;
    }

    /** The tensor table, in file order. */
    public List<GgufTensorInfo> tensors() {
        return tensors;
    }

    /** The tensor with this name, or null. */
    public GgufTensorInfo tensor(String name) {
        return byName.get(name);
    }

    /** The tensor's bytes: a zero-copy slice of the mapping. */
    public MemorySegment data(GgufTensorInfo t) {
        return segment.asSlice(dataOffset + t.offset(), t.byteSize());
    }

    /** The alignment of tensor data (general.alignment, 32 by default). */
    public long alignment() {
        return alignment;
    }

    /** Byte offset of the data section in the file. */
    public long dataOffset() {
        return dataOffset;
    }

    /** The file's size in bytes. */
    public long fileSize() {
        return segment.byteSize();
    }

    /** The whole mapped file. */
    public MemorySegment segment() {
        return segment;
    }

    /** The arena that owns the mapping (shared: any thread may read). */
    public Arena arena() {
        return arena;
    }

    /** Writes changes made through a writable mapping ({@link #open(Path, boolean)}) to the disk. */
    public void force() {
        if (!segment().isReadOnly()) {
            segment().force();
        }
    }

    /** Unmaps the file. Slices obtained earlier become invalid. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
