// Small GGUF files the tests write themselves (so tests run on a fresh clone without ../shared).
package cria;

import cria.gguf.GgmlType;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import cria.synth.Synth;
import cria.synth.SynthShape;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Random;

/** Writers of tiny llama-shaped GGUF files with random F32 weights and a toy vocabulary. */
public final class TestModels {
    private TestModels() {}

    /** A llama-shaped model: dim 32, 2 layers, 4 heads / 2 KV heads, ffn 64, vocab 64, F32, random weights. */
    public static Path tinyLlama(Path file, long seed) {
        int dim = 32, layers = 2, heads = 4, kvHeads = 2, ffn = 64, vocab = 64;
        Metadata md = new Metadata(file.toString());
        Synth.putHyperparameters(md, new SynthShape("tiny-test", dim, layers, heads, kvHeads, ffn, vocab, 128, 10000f, false, 0f, 1e-5f),
                "tiny test model");
        String[] tokens = new String[vocab];
        float[] scores = new float[vocab];
        int[] types = new int[vocab];
        tokens[0] = "<unk>";
        tokens[1] = "<s>";
        tokens[2] = "</s>";
        types[0] = 2;
        types[1] = 3;
        types[2] = 3;
        for (int i = 3; i < vocab; i++) {
            tokens[i] = i < 3 + 26 ? String.valueOf((char) ('a' + i - 3)) : "\u2581" + (char) ('a' + (i - 29) % 26) + (i - 29);
            scores[i] = -i;
            types[i] = 1;
        }
        md.put("tokenizer.ggml.model", GgufValue.ofString("llama"));
        md.put("tokenizer.ggml.tokens", GgufValue.ofStrings(tokens));
        md.put("tokenizer.ggml.scores", GgufValue.ofFloats(scores));
        md.put("tokenizer.ggml.token_type", GgufValue.ofInts(types));
        md.put("tokenizer.ggml.bos_token_id", GgufValue.ofU32(1));
        md.put("tokenizer.ggml.eos_token_id", GgufValue.ofU32(2));
        GgufWriter w = new GgufWriter(md);
        Random r = new Random(seed);
        w.addTensor("token_embd.weight", GgmlType.F32, new long[] {dim, vocab}, random(r, dim * vocab, 1f));
        w.addTensor("output_norm.weight", GgmlType.F32, new long[] {dim}, ones(dim));
        w.addTensor("output.weight", GgmlType.F32, new long[] {dim, vocab}, random(r, dim * vocab, 0.2f));
        int hd = dim / heads;
        for (int l = 0; l < layers; l++) {
            String p = "blk." + l + ".";
            w.addTensor(p + "attn_norm.weight", GgmlType.F32, new long[] {dim}, ones(dim));
            w.addTensor(p + "attn_q.weight", GgmlType.F32, new long[] {dim, dim}, random(r, dim * dim, 0.2f));
            w.addTensor(p + "attn_k.weight", GgmlType.F32, new long[] {dim, hd * kvHeads}, random(r, dim * hd * kvHeads, 0.2f));
            w.addTensor(p + "attn_v.weight", GgmlType.F32, new long[] {dim, hd * kvHeads}, random(r, dim * hd * kvHeads, 0.2f));
            w.addTensor(p + "attn_output.weight", GgmlType.F32, new long[] {dim, dim}, random(r, dim * dim, 0.2f));
            w.addTensor(p + "ffn_norm.weight", GgmlType.F32, new long[] {dim}, ones(dim));
            w.addTensor(p + "ffn_gate.weight", GgmlType.F32, new long[] {dim, ffn}, random(r, dim * ffn, 0.2f));
            w.addTensor(p + "ffn_up.weight", GgmlType.F32, new long[] {dim, ffn}, random(r, dim * ffn, 0.2f));
            w.addTensor(p + "ffn_down.weight", GgmlType.F32, new long[] {ffn, dim}, random(r, dim * ffn, 0.15f));
        }
        w.write(file);
        return file;
    }

    static MemorySegment random(Random r, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian() * scale;
        }
        return MemorySegment.ofArray(a);
    }

    static MemorySegment ones(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, 1f);
        return MemorySegment.ofArray(a);
    }
}
