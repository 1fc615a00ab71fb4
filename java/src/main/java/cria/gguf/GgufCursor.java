// A bounds-checked little-endian reader over the mapped file, for the GGUF header, metadata and tensor infos.
package cria.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads GGUF's primitive encodings. Every read checks the bytes are there first, so a truncated
 * or lying file becomes a {@link GgufException} naming the offset and what was being read.
 * Counts are checked against the bytes left before anything is allocated.
 */
final class GgufCursor {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    /** Strings longer than this are refused (no metadata string is anywhere near it). */
    private static final long MAX_STRING = 256L << 20;
    /** Arrays with more elements than this are refused; the largest real vocabularies have ~1M entries. */
    private static final long MAX_ARRAY = 1L << 26;
    private static final int MAX_NESTING = 4;

    private final MemorySegment seg;
    private final String file;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    private long pos;
    private int depth;

    GgufCursor(MemorySegment seg, String file) {
        this.seg = seg;
        this.file = file;
    }

    long position() {
        return pos;
    }

    long remaining() {
        return seg.byteSize() - pos;
    }

    GgufException fail(long at, String what) {
        return new GgufException(file + ": " + what + " (at byte " + at + ")");
    }

    private void need(long n, String what) {
        if (n > remaining()) {
            throw new GgufException(file + ": truncated: " + what + " needs " + n + " bytes at byte " + pos
                    + " but the file has " + seg.byteSize());
        }
    }

    int u8(String what) {
        need(1, what);
        return seg.get(ValueLayout.JAVA_BYTE, pos++) & 0xff;
    }

    int u32(String what) {
        need(4, what);
        int v = seg.get(U32, pos);
        pos += 4;
        return v;
    }

    long u64(String what) {
        need(8, what);
        long v = seg.get(U64, pos);
        pos += 8;
        return v;
    }

    String string(String what) {
        return string(what, -1);
    }

    /**
     * A string; {@code index >= 0} names an array element ("what[index]"). The name is only built
     * on failure: vocabularies hold hundreds of thousands of strings.
     */
    String string(String what, int index) {
        long at = pos;
        if (remaining() < 8) {
            need(8, "length of " + name(what, index));
        }
        long len = seg.get(U64, pos);
        pos += 8;
        if (len < 0 || len > MAX_STRING) {
            throw fail(at, name(what, index) + " claims a length of " + Long.toUnsignedString(len) + " bytes");
        }
        if (len > remaining()) {
            need(len, name(what, index));
        }
        byte[] b = new byte[(int) len];
        MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, b, 0, b.length);
        pos += len;
        boolean ascii = true;
        for (byte x : b) {
            if (x < 0) {
                ascii = false;
                break;
            }
        }
        if (ascii) {
            return new String(b, StandardCharsets.ISO_8859_1);
        }
        try {
            CharBuffer cb = utf8.reset().decode(ByteBuffer.wrap(b));
            return cb.toString();
        } catch (CharacterCodingException e) {
            throw fail(at, name(what, index) + " is not valid UTF-8");
        }
    }

    private static String name(String what, int index) {
        return index < 0 ? what : what + "[" + index + "]";
    }

    GgufValue value(String key) {
        long at = pos;
        int typeId = u32("type of " + key);
        GgufValueType type = GgufValueType.byId(Integer.toUnsignedLong(typeId));
        if (type == null) {
            throw fail(at, "metadata " + GgufValue.quote(key) + " has unknown value type " + Integer.toUnsignedString(typeId));
        }
        if (type == GgufValueType.ARRAY) {
            return array(key, at);
        }
        return new GgufValue(type, null, scalar(type, key));
    }

    private Object scalar(GgufValueType type, String key) {
        long at = pos;
        return switch (type) {
            case UINT8, INT8 -> (byte) u8(key);
            case UINT16, INT16 -> {
                need(2, key);
                short s = seg.get(U16, pos);
                pos += 2;
                yield s;
            }
            case UINT32, INT32 -> u32(key);
            case UINT64, INT64 -> u64(key);
            case FLOAT32 -> Float.intBitsToFloat(u32(key));
            case FLOAT64 -> Double.longBitsToDouble(u64(key));
            case BOOL -> {
                int b = u8(key);
                if (b > 1) {
                    throw fail(at, "metadata " + GgufValue.quote(key) + " is a bool with value " + b);
                }
                yield b == 1;
            }
            case STRING -> string("metadata " + GgufValue.quote(key));
            case ARRAY -> throw new IllegalStateException();
        };
    }

    private GgufValue array(String key, long at) {
        int elemId = u32("array type of " + key);
        GgufValueType et = GgufValueType.byId(Integer.toUnsignedLong(elemId));
        if (et == null) {
            throw fail(at, "metadata " + GgufValue.quote(key) + " is an array of unknown type " + Integer.toUnsignedString(elemId));
        }
        long n = u64("array length of " + key);
        long minSize = et.size() > 0 ? et.size() : (et == GgufValueType.STRING ? 8 : 12);
        if (n < 0 || n > MAX_ARRAY || n > remaining() / minSize) {
            throw fail(at, "metadata " + GgufValue.quote(key) + " claims " + Long.toUnsignedString(n)
                    + " array elements, more than the file can hold");
        }
        int count = (int) n;
        Object v = switch (et) {
            case UINT8, INT8 -> {
                byte[] a = new byte[count];
                MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, a, 0, count);
                pos += count;
                yield a;
            }
            case UINT16, INT16 -> {
                short[] a = new short[count];
                MemorySegment.copy(seg, U16, pos, a, 0, count);
                pos += 2L * count;
                yield a;
            }
            case UINT32, INT32 -> {
                int[] a = new int[count];
                MemorySegment.copy(seg, U32, pos, a, 0, count);
                pos += 4L * count;
                yield a;
            }
            case UINT64, INT64 -> {
                long[] a = new long[count];
                MemorySegment.copy(seg, U64, pos, a, 0, count);
                pos += 8L * count;
                yield a;
            }
            case FLOAT32 -> {
                float[] a = new float[count];
                MemorySegment.copy(seg, F32, pos, a, 0, count);
                pos += 4L * count;
                yield a;
            }
            case FLOAT64 -> {
                double[] a = new double[count];
                MemorySegment.copy(seg, F64, pos, a, 0, count);
                pos += 8L * count;
                yield a;
            }
            case BOOL -> {
                boolean[] a = new boolean[count];
                for (int i = 0; i < count; i++) {
                    int b = seg.get(ValueLayout.JAVA_BYTE, pos + i) & 0xff;
                    if (b > 1) {
                        throw fail(pos + i, "metadata " + GgufValue.quote(key) + "[" + i + "] is a bool with value " + b);
                    }
                    a[i] = b == 1;
                }
                pos += count;
                yield a;
            }
            case STRING -> {
                String[] a = new String[count];
                String what = "metadata " + GgufValue.quote(key);
                for (int i = 0; i < count; i++) {
                    a[i] = string(what, i);
                }
                yield a;
            }
            case ARRAY -> {
                if (++depth > MAX_NESTING) {
                    throw fail(at, "metadata " + GgufValue.quote(key) + " nests arrays too deeply");
                }
                List<GgufValue> items = new ArrayList<>();
                for (int i = 0; i < count; i++) {
                    items.add(array(key, pos));
                }
                depth--;
                yield items.toArray(new GgufValue[0]);
            }
        };
        return new GgufValue(GgufValueType.ARRAY, et, v);
    }

}
