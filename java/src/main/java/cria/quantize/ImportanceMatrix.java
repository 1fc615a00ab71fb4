// An importance matrix (llama.cpp's imatrix): per weight matrix, the sum of squared inputs per column; read in both of llama.cpp's formats, written as GGUF.
package cria.quantize;

import cria.CriaException;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What a calibration run learned about the inputs of each weight matrix: for every input column
 * j, the sum over calibration rows (tokens) of x_j squared, and the number of rows. Quantizers
 * use {@link #weights} (the mean of x_j squared) to spend their precision on the columns that
 * carry the most signal.
 *
 * <p>Files: the GGUF format llama-imatrix writes by default ({@code general.type = "imatrix"};
 * per matrix {@code NAME.in_sum2} (F32, the sums) and {@code NAME.counts} (F32, the row count);
 * keys {@code imatrix.datasets}, {@code imatrix.chunk_count}, {@code imatrix.chunk_size}), and
 * the older {@code .dat} format (read only). Entries of mixture-of-experts tensors (several
 * matrices per entry) are refused: Cria runs dense models only.
 */
public final class ImportanceMatrix {

    /**
     * One weight matrix's statistics: {@code sums[j]} is the sum of x_j squared over the
     * calibration rows that reached it, {@code count} the number of those rows (0: the matrix saw
     * no input, and every column then weighs 1, as in llama-quantize).
     */
    public record Entry(float[] sums, long count) {
        /** Checks the entry: sums present and not empty, count not negative. */
        public Entry {
            if (sums == null || sums.length == 0) {
                throw new IllegalArgumentException("an importance entry needs at least one column");
            }
            if (count < 0) {
                throw new IllegalArgumentException("importance row count must not be negative, got " + count);
            }
        }
    }

    private static final String KEY_TYPE = "general.type";
    private static final String KEY_DATASETS = "imatrix.datasets";
    private static final String KEY_CHUNK_COUNT = "imatrix.chunk_count";
    private static final String KEY_CHUNK_SIZE = "imatrix.chunk_size";
    private static final String SUMS = ".in_sum2";
    private static final String COUNTS = ".counts";
    /** Counts are stored as F32; whole numbers up to this bound survive the trip through a long exactly. */
    private static final float MAX_COUNT = 0x1p62f;
    /** A matrix row longer than this is no matrix Cria can load. */
    private static final long MAX_COLUMNS = 1L << 28;

    private final Map<String, Entry> entries;
    private final List<String> datasets;
    private final int chunkCount;
    private final int chunkSize;

    /**
     * An importance matrix from its parts. {@code entries} maps tensor names (as in the model,
     * e.g. {@code blk.0.attn_q.weight}) to their statistics; {@code datasets} names the
     * calibration texts; {@code chunkCount} and {@code chunkSize} describe the calibration run
     * (chunks processed, tokens per chunk).
     */
    public ImportanceMatrix(Map<String, Entry> entries, List<String> datasets, int chunkCount, int chunkSize) {
        if (chunkCount < 0 || chunkSize < 0) {
            throw new IllegalArgumentException("chunk count and size must not be negative: " + chunkCount + ", " + chunkSize);
        }
        Map<String, Entry> sorted = new TreeMap<>(ImportanceMatrix::compareUtf8);
        for (Map.Entry<String, Entry> e : entries.entrySet()) {
            if (e.getKey() == null || e.getKey().isEmpty() || e.getValue() == null) {
                throw new IllegalArgumentException("importance entries need a name and statistics");
            }
            sorted.put(e.getKey(), e.getValue());
        }
        this.entries = Collections.unmodifiableMap(sorted);
        this.datasets = List.copyOf(datasets);
        this.chunkCount = chunkCount;
        this.chunkSize = chunkSize;
    }

    /** The entries by tensor name, in byte order of the names (the order llama-imatrix writes them). */
    public Map<String, Entry> entries() {
        return entries;
    }

    /** The calibration texts the statistics came from (may be empty). */
    public List<String> datasets() {
        return datasets;
    }

    /** How many chunks of calibration text were processed. */
    public int chunkCount() {
        return chunkCount;
    }

    /** Tokens per chunk (0 when unknown, as for the legacy format). */
    public int chunkSize() {
        return chunkSize;
    }

    /**
     * The per-column weights llama-quantize hands the quantizer for {@code tensorName}: each sum
     * divided by the row count, in float, or all ones for a matrix that saw no rows; null when
     * the matrix has no entry.
     */
    public float[] weights(String tensorName) {
        Entry e = entries.get(tensorName);
        if (e == null) {
            return null;
        }
        float[] w = new float[e.sums.length];
        if (e.count > 0) {
            float c = (float) e.count;
            for (int i = 0; i < w.length; i++) {
                w[i] = e.sums[i] / c;
            }
        } else {
            Arrays.fill(w, 1f);
        }
        return w;
    }

    /**
     * Reads an importance matrix in llama.cpp's GGUF format, or in its legacy {@code .dat}
     * format when the file does not start with the GGUF magic.
     *
     * @throws CriaException when the file is missing, unreadable, or not a well-formed importance matrix
     */
    public static ImportanceMatrix read(Path path) {
        String name = path.toString();
        long size;
        try {
            if (Files.isDirectory(path)) {
                throw new CriaException(name + ": is a directory, not an importance matrix file");
            }
            size = Files.size(path);
        } catch (NoSuchFileException e) {
            throw new CriaException(name + ": no such file; make one with llama-imatrix or cria imatrix");
        } catch (IOException e) {
            throw new CriaException(name + ": cannot read: " + e.getMessage());
        }
        if (size < 4) {
            throw new CriaException(name + ": too short (" + size + " bytes) to be an importance matrix");
        }
        try (Arena arena = Arena.ofConfined(); FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            if (seg.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0) == GgufFile.MAGIC) {
                return readGguf(path);
            }
            return LegacyImatrix.read(seg, name);
        } catch (AccessDeniedException e) {
            throw new CriaException(name + ": permission denied");
        } catch (IOException e) {
            throw new CriaException(name + ": cannot read: " + e.getMessage());
        }
    }

    private static ImportanceMatrix readGguf(Path path) {
        String name = path.toString();
        try (GgufFile f = GgufFile.open(path)) {
            Metadata md = f.metadata();
            String type = md.string(KEY_TYPE).orElse(null);
            if (type != null && !type.equals("imatrix")) {
                throw new CriaException(name + ": a GGUF file of type '" + type + "', not an importance matrix (general.type \"imatrix\")");
            }
            if (!md.has(KEY_DATASETS) || !md.has(KEY_CHUNK_COUNT) || !md.has(KEY_CHUNK_SIZE)) {
                throw new CriaException(name + ": not an importance matrix: missing " + KEY_DATASETS + ", " + KEY_CHUNK_COUNT
                        + " or " + KEY_CHUNK_SIZE + " metadata");
            }
            String[] ds = md.strings(KEY_DATASETS).orElseThrow(
                    () -> new CriaException(name + ": " + KEY_DATASETS + " is not an array of strings"));
            int chunkCount = u32(md, KEY_CHUNK_COUNT, name);
            int chunkSize = u32(md, KEY_CHUNK_SIZE, name);
            if (f.tensors().isEmpty()) {
                throw new CriaException(name + ": no data (the importance matrix has no tensors)");
            }
            Map<String, GgufTensorInfo[]> pairs = new TreeMap<>(ImportanceMatrix::compareUtf8);
            for (GgufTensorInfo t : f.tensors()) {
                String tn = t.name();
                if (tn.endsWith(SUMS) && tn.length() > SUMS.length()) {
                    pairs.computeIfAbsent(tn.substring(0, tn.length() - SUMS.length()), k -> new GgufTensorInfo[2])[0] = t;
                } else if (tn.endsWith(COUNTS) && tn.length() > COUNTS.length()) {
                    pairs.computeIfAbsent(tn.substring(0, tn.length() - COUNTS.length()), k -> new GgufTensorInfo[2])[1] = t;
                }
            }
            Map<String, Entry> entries = new LinkedHashMap<>();
            for (Map.Entry<String, GgufTensorInfo[]> p : pairs.entrySet()) {
                entries.put(p.getKey(), entry(f, p.getKey(), p.getValue()[0], p.getValue()[1], name));
            }
            if (entries.isEmpty()) {
                throw new CriaException(name + ": no importance entries (no tensors named *" + SUMS + " with *" + COUNTS + ")");
            }
            return new ImportanceMatrix(entries, Arrays.asList(ds), chunkCount, chunkSize);
        }
    }

    private static Entry entry(GgufFile f, String entry, GgufTensorInfo sums, GgufTensorInfo counts, String file) {
        if (sums == null || counts == null) {
            throw new CriaException(file + ": entry '" + entry + "' has " + (sums == null ? "counts but no sums" : "sums but no counts"));
        }
        for (GgufTensorInfo t : new GgufTensorInfo[] {sums, counts}) {
            if (t.type() != GgmlType.F32) {
                throw new CriaException(file + ": tensor '" + t.name() + "' is " + t.type() + "; importance data must be F32");
            }
        }
        long cols = sums.shape()[0];
        long mats = sums.elements() / Math.max(1, cols);
        if (mats != 1 || counts.elements() != 1) {
            throw new CriaException(file + ": entry '" + entry + "' holds " + Math.max(mats, counts.elements())
                    + " matrices (a mixture of experts); Cria reads importance matrices of dense models only");
        }
        if (cols < 1 || cols > MAX_COLUMNS) {
            throw new CriaException(file + ": entry '" + entry + "' has " + cols + " columns (expected 1 to " + MAX_COLUMNS + ")");
        }
        MemorySegment s = f.data(sums);
        float[] v = new float[(int) cols];
        MemorySegment.copy(s, LE_FLOAT, 0, v, 0, v.length);
        float c = f.data(counts).get(LE_FLOAT, 0);
        return new Entry(v, count(c, entry, file));
    }

    /** A stored F32 row count as a long: negative or zero means no rows (llama-quantize then weighs every column 1). */
    static long count(float c, String entry, String file) {
        if (Float.isNaN(c) || c >= MAX_COUNT || c != (float) Math.floor(c)) {
            throw new CriaException(file + ": entry '" + entry + "' has row count " + c + "; expected a whole number below 2^62");
        }
        return c > 0 ? (long) c : 0;
    }

    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    private static int u32(Metadata md, String key, String file) {
        GgufValue v = md.get(key);
        Long l = v == null || v.isArray() ? null : v.asLong();
        if (l == null || l < 0 || l > Integer.MAX_VALUE) {
            throw new CriaException(file + ": " + key + " must be a count between 0 and " + Integer.MAX_VALUE + ", got " + (v == null ? "nothing" : v.display(4)));
        }
        return (int) (long) l;
    }

    /**
     * Writes the matrix in llama-imatrix's GGUF format: {@code general.type},
     * {@code imatrix.datasets}, {@code imatrix.chunk_count}, {@code imatrix.chunk_size}, then
     * per entry (names in byte order) {@code NAME.in_sum2} and {@code NAME.counts} as F32.
     * The file is replaced only once complete.
     *
     * @throws CriaException when the file cannot be written
     */
    public void write(Path path) {
        Metadata md = new Metadata(path.toString());
        md.put(KEY_TYPE, GgufValue.ofString("imatrix"));
        md.put(KEY_DATASETS, GgufValue.ofStrings(datasets.toArray(new String[0])));
        md.put(KEY_CHUNK_COUNT, GgufValue.ofU32(chunkCount));
        md.put(KEY_CHUNK_SIZE, GgufValue.ofU32(chunkSize));
        GgufWriter w = new GgufWriter(md);
        for (Map.Entry<String, Entry> e : entries.entrySet()) {
            float[] sums = e.getValue().sums();
            float count = (float) e.getValue().count();
            w.addTensor(e.getKey() + SUMS, GgmlType.F32, new long[] {sums.length},
                    dst -> MemorySegment.copy(sums, 0, dst, LE_FLOAT, 0, sums.length));
            w.addTensor(e.getKey() + COUNTS, GgmlType.F32, new long[] {1}, dst -> dst.set(LE_FLOAT, 0, count));
        }
        w.write(path);
    }

    /** Orders names as C++'s std::string does: by unsigned UTF-8 bytes. */
    static int compareUtf8(String a, String b) {
        return Arrays.compareUnsigned(a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));
    }
}
