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
 * the one trained on), the vocabulary's {@code tokenizer.*} keys, a name and a description of how
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
    public static void write(Path out, Params p, TrainOps ops, int trainedContext, Metadata vocab, String name, String description) {
        LlamaConfig c = p.config();
        Metadata md = new Metadata(out.toString());
        md.put("general.architecture", GgufValue.ofString("llama"));
        md.put("general.name", GgufValue.ofString(name));
        md.put("general.description", GgufValue.ofString(description));
        md.put("general.file_type", GgufValue.ofU32(0)); // all F32
        md.put("llama.context_length", GgufValue.ofU32(trainedContext));
        md.put("llama.embedding_length", GgufValue.ofU32(c.dim()));
        md.put("llama.block_count", GgufValue.ofU32(c.layers()));
        md.put("llama.feed_forward_length", GgufValue.ofU32(c.ffn()));
        md.put("llama.rope.dimension_count", GgufValue.ofU32(c.ropeDims()));
        md.put("llama.attention.head_count", GgufValue.ofU32(c.heads()));
        md.put("llama.attention.head_count_kv", GgufValue.ofU32(c.kvHeads()));
        md.put("llama.attention.layer_norm_rms_epsilon", GgufValue.ofF32(c.rmsEps()));
        md.put("llama.rope.freq_base", GgufValue.ofF32(c.ropeBase()));
        md.put("llama.vocab_size", GgufValue.ofU32(c.vocab()));
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
