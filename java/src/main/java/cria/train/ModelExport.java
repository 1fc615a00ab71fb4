// Writes trained weights as a GGUF model file with complete llama metadata, which Cria and llama.cpp load.
package cria.train;

import cria.backend.TrainOps;
import cria.gguf.GgmlType;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import cria.model.LlamaConfig;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Map;

/**
 * An F32 GGUF of a {@link Params}: the {@code llama.*} hyper-parameters (the context length is
 * the configuration's: the window length for a model trained from scratch, the base's own for one
 * trained from a model's weights), the vocabulary's {@code tokenizer.*} keys, a name and a description of how
 * the model was made ({@code general.description}), and every tensor under its inference name.
 * Other types are made from it by {@code cria quantize}.
 */
public final class ModelExport {
    private ModelExport() {}

    /**
     * @param vocab       metadata whose {@code tokenizer.*} keys describe the vocabulary
     * @param name        {@code general.name}
     * @param description {@code general.description}: how the model was made
     */
    public static void write(Path out, Params p, TrainOps ops, Metadata vocab, String name, String description) {
        LlamaConfig c = p.config();
        Metadata md = new Metadata(out.toString());
        c.putKeys(md); // the context length written is the config's: the trained one
        md.put("general.name", GgufValue.ofString(name));
        md.put("general.description", GgufValue.ofString(description));
        md.put("general.file_type", GgufValue.ofU32(0)); // all F32
        for (Map.Entry<String, GgufValue> e : vocab.asMap().entrySet()) {
            if (e.getKey().startsWith("tokenizer.")) {
                md.put(e.getKey(), e.getValue());
            }
        }
        GgufWriter w = new GgufWriter(md);
        for (Params.Param q : p.all()) {
            float[] vals = p.values(ops, q);
            w.addTensor(q.name, GgmlType.F32, q.ggufShape(), MemorySegment.ofArray(toBytes(vals)));
        }
        w.write(out);
    }

    private static byte[] toBytes(float[] v) {
        byte[] b = new byte[v.length * 4];
        MemorySegment s = MemorySegment.ofArray(b);
        for (int i = 0; i < v.length; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v[i]);
        }
        return b;
    }
}
