// The named weights of a Llama model, checked against the configuration and made resident in a backend.
package cria.model;

import cria.CriaException;
import cria.backend.Backend;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.util.Arrays;

/**
 * Every weight of the forward pass, by role. Shapes are checked against {@link LlamaConfig}
 * before anything is made resident, so a mismatched file fails with a message naming the tensor.
 * {@code output} is the embedding itself when the model ties them (no {@code output.weight}).
 */
public final class LlamaWeights {
    public final Weight tokenEmbedding;   // [dim, vocab]
    public final Weight outputNorm;       // [dim]
    public final Weight output;           // [dim, vocab]
    public final Weight[] attnNorm;       // [dim]
    public final Weight[] wq;             // [dim, heads * headDim]
    public final Weight[] wk;             // [dim, kvHeads * headDim]
    public final Weight[] wv;             // [dim, kvHeads * headDim]
    public final Weight[] wo;             // [heads * headDim, dim]
    public final Weight[] ffnNorm;        // [dim]
    public final Weight[] gate;           // [dim, ffn]
    public final Weight[] up;             // [dim, ffn]
    public final Weight[] down;           // [ffn, dim]
    /** llama3 rope frequency factors ([ropeDims / 2]), or null. */
    public final float[] ropeFactors;
    public final boolean tied;

    private LlamaWeights(GgufFile file, LlamaConfig c, Backend backend) {
        int L = c.layers();
        Tensor emb = need(file, "token_embd.weight", c.dim(), c.vocab());
        Tensor outNorm = need(file, "output_norm.weight", c.dim());
        Tensor out = optional(file, "output.weight", c.dim(), c.vocab());
        tied = out == null;
        Tensor freqs = optional(file, "rope_freqs.weight", c.ropeDims() / 2);
        ropeFactors = freqs == null ? null : dequantizeAll(freqs);
        Tensor[][] blk = new Tensor[9][L];
        for (int l = 0; l < L; l++) {
            String p = "blk." + l + ".";
            blk[0][l] = need(file, p + "attn_norm.weight", c.dim());
            blk[1][l] = need(file, p + "attn_q.weight", c.dim(), c.qDim());
            blk[2][l] = need(file, p + "attn_k.weight", c.dim(), c.kvDim());
            blk[3][l] = need(file, p + "attn_v.weight", c.dim(), c.kvDim());
            blk[4][l] = need(file, p + "attn_output.weight", c.qDim(), c.dim());
            blk[5][l] = need(file, p + "ffn_norm.weight", c.dim());
            blk[6][l] = need(file, p + "ffn_gate.weight", c.dim(), c.ffn());
            blk[7][l] = need(file, p + "ffn_up.weight", c.dim(), c.ffn());
            blk[8][l] = need(file, p + "ffn_down.weight", c.ffn(), c.dim());
        }
        for (GgufTensorInfo t : file.tensors()) {
            if (t.name().contains(".attn_q.bias") || t.name().contains(".attn_k.bias") || t.name().contains(".attn_v.bias")) {
                throw new CriaException(file.path() + ": tensor " + t.name() + ": attention biases are not supported");
            }
        }
        tokenEmbedding = backend.weight(emb);
        outputNorm = backend.weight(outNorm);
        output = tied ? tokenEmbedding : backend.weight(out);
        attnNorm = resident(backend, blk[0]);
        wq = resident(backend, blk[1]);
        wk = resident(backend, blk[2]);
        wv = resident(backend, blk[3]);
        wo = resident(backend, blk[4]);
        ffnNorm = resident(backend, blk[5]);
        gate = resident(backend, blk[6]);
        up = resident(backend, blk[7]);
        down = resident(backend, blk[8]);
    }

    /** Finds, checks and makes resident every weight of the model. */
    public static LlamaWeights load(GgufFile file, LlamaConfig config, Backend backend) {
        return new LlamaWeights(file, config, backend);
    }

    private static Weight[] resident(Backend b, Tensor[] ts) {
        Weight[] w = new Weight[ts.length];
        for (int i = 0; i < ts.length; i++) {
            w[i] = b.weight(ts[i]);
        }
        return w;
    }

    private static Tensor need(GgufFile f, String name, long... shape) {
        Tensor t = optional(f, name, shape);
        if (t == null) {
            throw new CriaException(f.path() + ": tensor " + name + " is missing; the file is incomplete or not a Llama model");
        }
        return t;
    }

    private static Tensor optional(GgufFile f, String name, long... shape) {
        GgufTensorInfo info = f.tensor(name);
        if (info == null) {
            return null;
        }
        long[] s = info.shape();
        long[] trimmed = s;
        // ggml may store trailing dimensions of 1; compare without them.
        int len = s.length;
        while (len > shape.length && s[len - 1] == 1) {
            len--;
        }
        trimmed = Arrays.copyOf(s, len);
        if (!Arrays.equals(trimmed, shape)) {
            throw new CriaException(f.path() + ": tensor " + name + " has shape " + Arrays.toString(s)
                    + " but the model's metadata implies " + Arrays.toString(shape));
        }
        if (!Codecs.supports(info.type())) {
            throw new CriaException(f.path() + ": tensor " + name + " has type " + info.type()
                    + ", which Cria cannot run yet; re-quantize the model to one of " + Codecs.supportedList());
        }
        if (shape.length == 1 && info.type() != GgmlType.F32 && info.type() != GgmlType.F16 && info.type() != GgmlType.BF16) {
            throw new CriaException(f.path() + ": tensor " + name + " is a vector of type " + info.type() + "; expected F32");
        }
        return Tensor.of(f, info);
    }

    private static float[] dequantizeAll(Tensor t) {
        float[] out = new float[Math.toIntExact(t.rows() * t.rowLength())];
        for (long r = 0; r < t.rows(); r++) {
            t.dequantizeRow(r, out, (int) (r * t.rowLength()));
        }
        return out;
    }
}
