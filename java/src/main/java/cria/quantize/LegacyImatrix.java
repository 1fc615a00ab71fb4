// Reads llama.cpp's older importance-matrix format (.dat): entries of name, call count and mean-times-calls values, then the chunk count and dataset name.
package cria.quantize;

import cria.CriaException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The legacy layout, all little-endian: i32 entry count; per entry i32 name length, the name,
 * i32 ncall, i32 value count, that many f32; then optionally i32 chunk count, i32 dataset name
 * length and the name. The values are the column means times ncall, so an entry keeps them as
 * its sums with ncall as its count (1 when ncall is not positive, when llama-quantize uses the
 * values as they are): {@link ImportanceMatrix#weights} then divides exactly as llama-quantize
 * does. Every length is checked against the bytes left before anything is allocated.
 */
final class LegacyImatrix {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long MAX_NAME = 4096;
    private static final long MAX_COLUMNS = 1L << 28;

    private final MemorySegment seg;
    private final String file;
    private long pos;

    private LegacyImatrix(MemorySegment seg, String file) {
        this.seg = seg;
        this.file = file;
    }

    static ImportanceMatrix read(MemorySegment seg, String file) {
        return new LegacyImatrix(seg, file).parse();
    }

    private CriaException fail(String what) {
        return new CriaException(file + ": not an importance matrix (GGUF or legacy .dat): " + what + " at byte " + pos);
    }

    private int i32(String what) {
        if (seg.byteSize() - pos < 4) {
            throw fail("file ends before the " + what);
        }
        int v = seg.get(I32, pos);
        pos += 4;
        return v;
    }

    private String text(long len, String what) {
        if (len < 0 || len > MAX_NAME) {
            throw fail(what + " length " + len + " out of range (0 to " + MAX_NAME + ")");
        }
        if (seg.byteSize() - pos < len) {
            throw fail("file ends inside the " + what);
        }
        byte[] b = seg.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
        pos += len;
        int nul = 0;
        while (nul < b.length && b[nul] != 0) {
            nul++; // llama.cpp reads the name as a C string: it ends at the first NUL
        }
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(b, 0, nul)).toString();
        } catch (CharacterCodingException e) {
            throw fail(what + " is not valid UTF-8");
        }
    }

    private ImportanceMatrix parse() {
        int n = i32("entry count");
        if (n < 1) {
            throw fail("entry count " + n + " (expected at least 1)");
        }
        // each entry takes at least 17 bytes: name length, a 1-byte name, ncall, value count, one value
        if (n > (seg.byteSize() - pos) / 17) {
            throw fail("entry count " + n + " cannot fit in " + seg.byteSize() + " bytes");
        }
        Map<String, ImportanceMatrix.Entry> entries = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            String name = text(i32("name length of entry " + (i + 1)), "name of entry " + (i + 1));
            if (name.isEmpty()) {
                throw fail("entry " + (i + 1) + " has an empty name");
            }
            int ncall = i32("call count of '" + name + "'");
            long nval = i32("value count of '" + name + "'");
            if (nval < 1 || nval > MAX_COLUMNS) {
                throw fail("'" + name + "' has " + nval + " values (expected 1 to " + MAX_COLUMNS + ")");
            }
            if ((seg.byteSize() - pos) / 4 < nval) {
                throw fail("file ends inside the values of '" + name + "'");
            }
            float[] v = new float[(int) nval];
            MemorySegment.copy(seg, F32, pos, v, 0, v.length);
            pos += 4 * nval;
            // as llama-quantize: a later entry of the same name replaces the earlier
            entries.put(name, new ImportanceMatrix.Entry(v, ncall > 0 ? ncall : 1));
        }
        int chunks = 0;
        List<String> datasets = List.of();
        if (pos < seg.byteSize()) {
            chunks = i32("chunk count");
            String ds = text(i32("dataset name length"), "dataset name");
            datasets = List.of(ds);
        }
        return new ImportanceMatrix(entries, datasets, Math.max(0, chunks), 0);
    }
}
