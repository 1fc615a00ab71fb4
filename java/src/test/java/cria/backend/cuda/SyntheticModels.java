// Writes a llama3-shaped GGUF with random quantized weights (128K vocabulary, rope factors): a realistic model for GPU runs.
package cria.backend.cuda;

import cria.gguf.GgmlType;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import cria.synth.Synth;
import cria.synth.SynthShape;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Random;

/**
 * Too large to carry to a device machine (the real one is 36 MB), quick to make there: random
 * block bytes (no quantizer run) in llama3's layout, Q4_K and Q6_K like a Q4_K_M file, f32 norms,
 * rope base 500000 with per-frequency factors. The tests compare backends on it, not llama.cpp.
 */
public final class SyntheticModels {
    private SyntheticModels() {}

    public static final int VOCAB = 128256;

    public static Path llama3(Path file, long seed) {
        int dim = 256, layers = 2, heads = 4, kvHeads = 2, headDim = 64, ffn = 768;
        Random r = new Random(seed);
        Metadata md = new Metadata(file.toString());
        Synth.putHyperparameters(md, new SynthShape("test-llama3", dim, layers, heads, kvHeads, ffn, VOCAB, 2048, 500000f, false, 0f,
                1e-5f), "synthetic llama3-shaped model");
        GgufWriter w = new GgufWriter(md);
        double s = 0.01;  // block scales of ~1e-3: weights of order 0.1 to 1
        // q and k ten times smaller: attention scores of order 1, as in a trained model, where with weights of s
        // they reach hundreds, the softmax is one-hot and rounding (f16 operands, 8-bit activations) flips which key
        // wins: logits then differ by tens of percent between backends with nothing wrong in either
        double qk = s / 10;
        add(w, RandomTensors.matrix("token_embd.weight", GgmlType.Q4_K, VOCAB, dim, r, s));
        add(w, RandomTensors.matrix("output.weight", GgmlType.Q6_K, VOCAB, dim, r, s));
        add(w, norm("output_norm.weight", dim, r));
        float[] factors = new float[headDim / 2];
        for (int i = 0; i < factors.length; i++) {
            factors[i] = i < 8 ? 1f : (i < 24 ? 1f + (i - 8) * 0.45f : 8f);  // llama3's shape: 1 .. 8
        }
        w.addTensor("rope_freqs.weight", GgmlType.F32, new long[] {factors.length}, MemorySegment.ofArray(factors));
        for (int l = 0; l < layers; l++) {
            String p = "blk." + l + ".";
            add(w, norm(p + "attn_norm.weight", dim, r));
            add(w, RandomTensors.matrix(p + "attn_q.weight", GgmlType.Q4_K, heads * headDim, dim, r, qk));
            add(w, RandomTensors.matrix(p + "attn_k.weight", GgmlType.Q4_K, kvHeads * headDim, dim, r, qk));
            add(w, RandomTensors.matrix(p + "attn_v.weight", GgmlType.Q6_K, kvHeads * headDim, dim, r, s));
            add(w, RandomTensors.matrix(p + "attn_output.weight", GgmlType.Q4_K, dim, heads * headDim, r, s));
            add(w, norm(p + "ffn_norm.weight", dim, r));
            add(w, RandomTensors.matrix(p + "ffn_gate.weight", GgmlType.Q4_K, ffn, dim, r, s));
            add(w, RandomTensors.matrix(p + "ffn_up.weight", GgmlType.Q4_K, ffn, dim, r, s));
            add(w, RandomTensors.matrix(p + "ffn_down.weight", GgmlType.Q6_K, dim, ffn, r, s));
        }
        w.write(file);
        return file;
    }

    private static Tensor norm(String name, int dim, Random r) {
        float[] v = new float[dim];
        for (int i = 0; i < dim; i++) {
            v[i] = 1f + 0.1f * (float) r.nextGaussian();
        }
        return new Tensor(name, GgmlType.F32, new long[] {dim}, MemorySegment.ofArray(v));
    }

    private static void add(GgufWriter w, Tensor t) {
        w.addTensor(t.name(), t.type(), t.shape(), t.data());
    }
}
