// Rewrites a GGUF file with changed metadata or tensors, for tests that feed the engine well-formed files that lie.
package cria;

import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A GGUF file opened for editing: its metadata and tensor table in memory (tensor bytes copied,
 * so the source may be closed), changed by the test, written as a new, structurally valid file.
 * Byte-level corruption is HostileFileTest's business; this makes files whose every byte is
 * well-formed but whose values disagree with each other or are absurd.
 */
public final class GgufEdit {
    /** One tensor to write: name, type, shape and bytes. */
    public record TensorData(String name, GgmlType type, long[] shape, byte[] bytes) {}

    public final Metadata metadata;
    public final Map<String, TensorData> tensors = new LinkedHashMap<>();

    private GgufEdit(Metadata md) {
        this.metadata = md;
    }

    /** Reads a file into an editable copy. */
    public static GgufEdit of(Path file) {
        try (GgufFile f = GgufFile.open(file)) {
            Metadata md = new Metadata(file.toString());
            f.metadata().asMap().forEach(md::put);
            GgufEdit e = new GgufEdit(md);
            for (GgufTensorInfo t : f.tensors()) {
                e.tensors.put(t.name(), new TensorData(t.name(), t.type(), t.shape().clone(), f.data(t).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)));
            }
            return e;
        }
    }

    /** A deep enough copy to edit independently (metadata values and tensor bytes are shared, not changed in place). */
    public GgufEdit copy() {
        Metadata md = new Metadata(metadata.source());
        metadata.asMap().forEach(md::put);
        GgufEdit e = new GgufEdit(md);
        e.tensors.putAll(tensors);
        return e;
    }

    public GgufEdit set(String key, GgufValue v) {
        metadata.put(key, v);
        return this;
    }

    public GgufEdit remove(String key) {
        metadata.remove(key);
        return this;
    }

    public GgufEdit dropTensor(String name) {
        tensors.remove(name);
        return this;
    }

    /** Adds or replaces a tensor with bytes of the right size for its type and shape, filled by {@code fill}. */
    public GgufEdit putTensor(String name, GgmlType type, long[] shape, Consumer<byte[]> fill) {
        long elements = 1;
        for (long d : shape) {
            elements *= d;
        }
        byte[] b = new byte[Math.toIntExact(type.rowBytes(elements))];
        fill.accept(b);
        tensors.put(name, new TensorData(name, type, shape, b));
        return this;
    }

    /** Float32 values as little-endian bytes. */
    public static Consumer<byte[]> floats(float... values) {
        return b -> {
            java.nio.ByteBuffer bb = java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i * 4 < b.length; i++) {
                bb.putFloat(i * 4, values[i % values.length]);
            }
        };
    }

    /** Writes the file. */
    public Path write(Path out) {
        GgufWriter w = new GgufWriter(metadata);
        List<TensorData> ts = new ArrayList<>(tensors.values());
        for (TensorData t : ts) {
            w.addTensor(t.name(), t.type(), t.shape(), MemorySegment.ofArray(t.bytes()));
        }
        w.write(out);
        return out;
    }
}
