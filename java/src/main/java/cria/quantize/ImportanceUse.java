// llama-quantize's rules for an importance matrix: which tensor gets which weights, what is refused, and the metadata it leaves in the output.
package cria.quantize;

import cria.CriaException;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import cria.tensor.Codecs;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * How a quantization uses an importance matrix, following llama-quantize: every value must be
 * finite; a tensor's weights are the entry of the same name, which must have as many columns
 * as the tensor has (times its matrices), except for the token embedding, whose mismatching
 * entry is ignored; tensors without an entry are quantized without weights, unless the file
 * type cannot do without (Q2_K_S, see {@link QuantPlan#requiresImportance}), which is refused.
 */
public final class ImportanceUse {
    /** llama-quantize copies the file name and dataset into a fixed 128-byte field: at most this many bytes survive. */
    static final int MAX_TEXT_BYTES = 127;

    private final ImportanceMatrix matrix;
    private final String file;
    private final List<String> used = new ArrayList<>();
    private final List<String> without = new ArrayList<>();

    private ImportanceUse(ImportanceMatrix matrix, String file) {
        this.matrix = matrix;
        this.file = file;
    }

    /**
     * Checks that the plan can be carried out with {@code matrix} (null: none given, read from
     * {@code file}) and returns the rules to apply tensor by tensor.
     *
     * @throws CriaException when the matrix holds a value that is not finite, or a tensor needs importance data that is not there
     */
    public static ImportanceUse check(List<QuantPlan.Item> plan, LlamaFileType ftype, ImportanceMatrix matrix, String file) {
        if (matrix != null) {
            for (Map.Entry<String, ImportanceMatrix.Entry> e : matrix.entries().entrySet()) {
                for (float v : matrix.weights(e.getKey())) {
                    if (!Float.isFinite(v)) {
                        throw new CriaException(file + ": entry '" + e.getKey() + "' has a value that is not finite (" + v
                                + "); make the importance matrix again");
                    }
                }
            }
        }
        for (QuantPlan.Item it : plan) {
            if (!QuantPlan.requiresImportance(it, ftype)) {
                continue;
            }
            String name = it.tensor().name();
            if (matrix == null) {
                throw new CriaException(ftype + " needs an importance matrix (tensor '" + name + "' becomes " + it.target()
                        + "): pass --imatrix FILE, made by cria imatrix or llama-imatrix");
            }
            if (it.converts() && matrix.entries().get(name) == null) {
                throw new CriaException(file + " has no entry for '" + name + "', which " + ftype + " makes " + it.target()
                        + " and cannot without importance data; use an importance matrix made for this model");
            }
        }
        return new ImportanceUse(matrix, file);
    }

    /**
     * The weights for one tensor of the plan, as llama-quantize picks them: null when no matrix
     * was given, the tensor is copied, or it has no entry (or a mismatching token-embedding entry).
     *
     * @throws CriaException when the entry's size does not match the tensor's
     */
    public float[] weightsFor(QuantPlan.Item it) {
        if (matrix == null || !it.converts()) {
            return null;
        }
        GgufTensorInfo t = it.tensor();
        float[] w = matrix.weights(t.name());
        if (w == null) {
            without.add(t.name());
            return null;
        }
        long[] shape = t.shape();
        long expected = shape[0] * (shape.length > 2 ? shape[2] : 1);
        if (w.length != expected) {
            if (QuantPlan.isTokenEmbedding(t.name())) {
                without.add(t.name());
                return null; // llama-quantize ignores a mismatching token-embedding entry
            }
            throw new CriaException(file + ": the entry for '" + t.name() + "' has " + w.length + " values but the tensor has "
                    + expected + " columns; the importance matrix was made for another model");
        }
        if (Codecs.of(it.target()).usesImportance()) {
            used.add(t.name()); // F16, Q8_0 and the like take the weights and ignore them, as in ggml
        }
        return w;
    }

    /** Tensors whose type uses the weights they got so far (by {@link #weightsFor}). */
    public List<String> used() {
        return List.copyOf(used);
    }

    /** Converted tensors that got none although a matrix was given. */
    public List<String> without() {
        return List.copyOf(without);
    }

    /**
     * Adds the keys llama-quantize writes after {@code general.file_type} when it has an
     * importance matrix: {@code quantize.imatrix.file} (the path as given), {@code .dataset}
     * (the first, when there is one), {@code .entries_count}, and {@code .chunks_count} (when
     * positive). Nothing without a matrix.
     */
    public void addMetadata(Metadata md) {
        if (matrix == null) {
            return;
        }
        put(md, "quantize.imatrix.file", GgufValue.ofString(truncate(file)));
        if (!matrix.datasets().isEmpty()) {
            put(md, "quantize.imatrix.dataset", GgufValue.ofString(truncate(matrix.datasets().get(0))));
        }
        put(md, "quantize.imatrix.entries_count", GgufValue.ofU32(matrix.entries().size()));
        if (matrix.chunkCount() > 0) {
            put(md, "quantize.imatrix.chunks_count", GgufValue.ofU32(matrix.chunkCount()));
        }
    }

    /** As gguf_set_val: an existing key moves to the end. */
    private static void put(Metadata md, String key, GgufValue v) {
        md.remove(key);
        md.put(key, v);
    }

    /**
     * The first 127 bytes of {@code s}, as llama-quantize keeps them; a character that would be
     * cut in two is dropped whole, so that the metadata stays valid UTF-8.
     */
    static String truncate(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length <= MAX_TEXT_BYTES) {
            return s;
        }
        int end = MAX_TEXT_BYTES;
        while (end > 0 && (b[end] & 0xC0) == 0x80) {
            end--; // b[end] continues a character that starts before it
        }
        return new String(b, 0, end, StandardCharsets.UTF_8);
    }
}
