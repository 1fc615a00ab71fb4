// Writes small llama-shaped GGUF files with random F32 weights for tests that must run without ../shared.
package cria;

import cria.gguf.GgmlType;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Random;

/**
 * A tiny model: 256-wide rows (one K-quant super-block), 1-D norms, ffn_down rows of 96 values
 * (too short for K-quant blocks, so K types fall back) and one 40-wide matrix (no 32-block type
 * fits it: F16). Tensors are written in llama.cpp's converter order, not its quantizer order.
 */
public final class TinyModel {
    private TinyModel() {}

    /** Writes the model; without {@code output} the embeddings are tied (no output.weight). */
    public static Path write(Path p, int layers, boolean output, long seed) {
        Random r = new Random(seed);
        Metadata md = new Metadata("tiny");
        md.put("general.architecture", GgufValue.ofString("llama"));
        md.put("general.name", GgufValue.ofString("tiny"));
        md.put("llama.block_count", GgufValue.ofU32(layers));
        md.put("llama.embedding_length", GgufValue.ofU32(256));
        md.put("llama.attention.head_count", GgufValue.ofU32(4));
        md.put("llama.attention.head_count_kv", GgufValue.ofU32(4));
        md.put("general.file_type", GgufValue.ofU32(0));
        md.put("tokenizer.ggml.model", GgufValue.ofString("llama"));
        GgufWriter w = new GgufWriter(md);
        add(w, r, "token_embd.weight", 256, 16);
        add(w, r, "output_norm.weight", 256);
        if (output) {
            add(w, r, "output.weight", 256, 16);
        }
        for (int l = 0; l < layers; l++) {
            String b = "blk." + l + ".";
            add(w, r, b + "attn_norm.weight", 256);
            add(w, r, b + "attn_q.weight", 256, 8);
            add(w, r, b + "attn_k.weight", 256, 4);
            add(w, r, b + "attn_v.weight", 256, 4);
            add(w, r, b + "attn_output.weight", 256, 8);
            add(w, r, b + "ffn_norm.weight", 256);
            add(w, r, b + "ffn_gate.weight", 256, 6);
            add(w, r, b + "ffn_up.weight", 256, 6);
            add(w, r, b + "ffn_down.weight", 96, 4);
            add(w, r, b + "odd.weight", 40, 2);
        }
        w.write(p);
        return p;
    }

    private static void add(GgufWriter w, Random r, String name, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * 0.02);
        }
        w.addTensor(name, GgmlType.F32, shape, MemorySegment.ofArray(v));
    }
}
