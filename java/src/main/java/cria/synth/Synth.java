// Writes random-weight Llama models at real shapes, in any type Cria quantizes to, straight into a GGUF file.
package cria.synth;

import cria.CriaException;
import cria.gguf.GgmlType;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import cria.model.LlamaConfig;
import cria.model.Llama;
import cria.quantize.LlamaFileType;
import cria.quantize.QuantPlan;
import cria.tensor.Codec;
import cria.tensor.Codecs;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.LongConsumer;

/**
 * Random-weight models for tests and benchmarks. Weights are normal with the spread of a freshly
 * initialized Llama (0.02; output projections scaled down by the depth) so that activations stay
 * in a realistic range; norms are 1. Each tensor is generated row chunk by row chunk from its own
 * seeded stream and quantized in place in the output mapping: an 8B model never exists in F32,
 * and the file does not depend on the thread count.
 */
public final class Synth {
    private static final int CHUNK_VALUES = 1 << 18;

    private Synth() {}

    /** One tensor: {@code values} in every row, or normal values of spread {@code std} around {@code mean}. */
    private record Spec(String name, long[] shape, float std, float[] values, float mean) {
        Spec(String name, long[] shape, float std, float[] values) {
            this(name, shape, std, values, 0f);
        }
    }

    /** Writes the {@code <arch>.*} hyper-parameters of shape {@code s}, the architecture and {@code name}. */
    public static void putHyperparameters(Metadata md, SynthShape s, String name) {
        LlamaConfig.Gemma gemma = null;
        if (s.gemma()) {  // gemma2's soft caps are always written, as real files have them; gemma3's final one when set
            gemma = new LlamaConfig.Gemma(s.window() > 0 ? s.swaPattern() : 0, s.ropeBaseSwa(), 1f, s.attnSoftcap(), s.finalSoftcap(),
                    (float) (1 / Math.sqrt(s.headDim())));
        }
        new LlamaConfig(s.arch(), s.dim(), s.layers(), s.heads(), s.kvHeads(), s.headDim(), s.ffn(), s.vocab(), s.context(), s.rmsEps(),
                s.rotaryDims(), s.ropeBase(), 1f, !s.arch().equals("llama"), s.arch().equals("qwen3") || s.arch().equals("gemma3"),
                s.gemma() ? s.window() : 0, gemma).putKeys(md);
        md.put("general.name", GgufValue.ofString(name));
    }

    /**
     * Writes the model.
     *
     * @param vocab    metadata whose {@code tokenizer.*} keys are copied (its token count sets the
     *                 vocabulary size), or null to make a vocabulary
     * @param progress told the number of values done as work completes (may be null)
     */
    public static void write(Path out, SynthShape shape, LlamaFileType ftype, boolean pure, Metadata vocab, long seed,
                             int threads, LongConsumer progress) {
        write(out, shape, ftype, pure, vocab, seed, threads, 0, 64, progress);
    }

    /**
     * As above; with {@code lowRankKeep} in (0, 1) every block matrix is stored as random low-rank
     * factors ({@link cria.model.LowRankTensors}) at the rank {@code cria lowrank --keep} would
     * give it (multiples of {@code rankStep}; a matrix no rank makes smaller stays dense): the
     * shapes and speed of a factorized model without the time of factorizing one. The factors'
     * spread makes their product spread as the dense matrix would.
     */
    public static void write(Path out, SynthShape shape, LlamaFileType ftype, boolean pure, Metadata vocab, long seed,
                             int threads, double lowRankKeep, int rankStep, LongConsumer progress) {
        write(out, shape, ftype, pure, vocab, seed, threads, lowRankKeep, rankStep, Map.of(), progress);
    }

    /**
     * As above, with {@code extraKeys} written into the metadata after the shape's own (they win):
     * e.g. {@code <arch>.attention.sliding_window} for {@code cria synth --sliding-window}.
     */
    public static void write(Path out, SynthShape shape, LlamaFileType ftype, boolean pure, Metadata vocab, long seed,
                             int threads, double lowRankKeep, int rankStep, Map<String, GgufValue> extraKeys, LongConsumer progress) {
        Metadata md = new Metadata(out.toString());
        SynthShape s = shape;
        if (vocab != null) {
            String[] tokens = vocab.strings("tokenizer.ggml.tokens").orElseThrow(
                    () -> new CriaException(vocab.source() + ": no tokenizer.ggml.tokens: not a vocabulary file"));
            s = s.with(null, null, null, null, null, tokens.length, null);
        }
        s.validate();
        putHyperparameters(md, s, "cria synth " + s.name() + " (random weights, seed " + seed + ")");
        md.put("general.file_type", GgufValue.ofU32(ftype.id()));
        md.put("general.quantization_version", GgufValue.ofU32(2));
        extraKeys.forEach(md::put);
        if (vocab != null) {
            for (Map.Entry<String, GgufValue> e : vocab.asMap().entrySet()) {
                if (e.getKey().startsWith("tokenizer.")) {
                    md.put(e.getKey(), e.getValue());
                }
            }
        } else if (s.arch().equals("llama")) {
            SynthVocab.write(md, s.vocab());
        } else if (s.arch().equals("phi3")) {  // llama's SentencePiece tokenizer, with Phi-3's control tokens
            SynthVocab.writePhi3(md, s.vocab());
        } else if (s.gemma()) {                 // SentencePiece without a space prefix, Gemma's turn markers and chat template
            SynthVocab.writeGemma(md, s.vocab());
        } else {
            SynthVocab.writeByteLevel(md, s.vocab(), "qwen2");
        }

        List<Spec> specs = specs(s);
        if (lowRankKeep > 0) {
            if (s.arch().equals("phi3")) {
                throw new CriaException("--low-rank: factorized phi3 files are not supported (their matrices are fused)");
            }
            specs = factorized(specs, lowRankKeep, rankStep);
            md.put(cria.model.LowRankTensors.KEY_METHOD, GgufValue.ofString("random"));
            md.put(cria.model.LowRankTensors.KEY_KEEP, GgufValue.ofF32((float) lowRankKeep));
        }
        List<GgufTensorInfo> infos = new ArrayList<>();
        Map<String, Spec> byName = new HashMap<>();
        for (Spec sp : specs) {
            infos.add(new GgufTensorInfo(sp.name, GgmlType.F32, sp.shape, 0, 0));
            byName.put(sp.name, sp);
        }
        GgufWriter w = new GgufWriter(md);
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, threads), r -> {
            Thread t = new Thread(r, "cria-synth");
            t.setDaemon(true);
            return t;
        });
        try {
            int index = 0;
            for (QuantPlan.Item item : QuantPlan.of(md, infos, ftype, pure)) {
                Spec sp = byName.get(item.tensor().name());
                long tensorSeed = mix(seed, index++);
                w.addTensor(sp.name, item.target(), sp.shape, dst -> fill(pool, sp, item.target(), tensorSeed, dst, progress));
            }
            w.write(out);
        } finally {
            pool.shutdownNow();
        }
    }

    private static List<Spec> specs(SynthShape s) {
        int kvDim = s.kvHeads() * s.headDim();
        int qDim = s.heads() * s.headDim();
        float std = 0.02f;
        float outStd = (float) (0.02 / Math.sqrt(2.0 * s.layers()));
        List<Spec> out = new ArrayList<>();
        out.add(new Spec("token_embd.weight", new long[] {s.dim(), s.vocab()}, std, null));
        out.add(new Spec("output_norm.weight", new long[] {s.dim()}, 0, ones(s.dim())));
        if (!s.tied() && !s.gemma()) {
            out.add(new Spec("output.weight", new long[] {s.dim(), s.vocab()}, std, null));
        }
        if (s.llama3Rope() > 0) {
            out.add(new Spec("rope_freqs.weight", new long[] {s.headDim() / 2}, 0, llama3Factors(s)));
        }
        for (int l = 0; l < s.layers(); l++) {
            String p = "blk." + l + ".";
            out.add(new Spec(p + "attn_norm.weight", new long[] {s.dim()}, 0, ones(s.dim())));
            if (s.arch().equals("phi3")) {                    // q, k, v rows stacked in one matrix, as llama.cpp reads phi3
                out.add(new Spec(p + "attn_qkv.weight", new long[] {s.dim(), (long) qDim + 2L * kvDim}, std, null));
            } else {
                out.add(new Spec(p + "attn_q.weight", new long[] {s.dim(), qDim}, std, null));
                out.add(new Spec(p + "attn_k.weight", new long[] {s.dim(), kvDim}, std, null));
                out.add(new Spec(p + "attn_v.weight", new long[] {s.dim(), kvDim}, std, null));
            }
            if (s.arch().equals("qwen2")) {
                // biases larger than a product's typical value, so that a missing one shows: a k bias
                // adds the same q·b to every score of a query but for rope's turning of b by position
                out.add(new Spec(p + "attn_q.bias", new long[] {qDim}, 0.5f, null));
                out.add(new Spec(p + "attn_k.bias", new long[] {kvDim}, 0.5f, null));
                out.add(new Spec(p + "attn_v.bias", new long[] {kvDim}, 0.5f, null));
            }
            if (s.arch().equals("qwen3") || s.arch().equals("gemma3")) {
                // around 1, each value its own: a norm applied to the wrong head or slice shows
                out.add(new Spec(p + "attn_q_norm.weight", new long[] {s.headDim()}, 0.2f, null, 1f));
                out.add(new Spec(p + "attn_k_norm.weight", new long[] {s.headDim()}, 0.2f, null, 1f));
            }
            out.add(new Spec(p + "attn_output.weight", new long[] {qDim, s.dim()}, outStd, null));
            if (s.gemma()) {  // around 1, each value its own (as the 1 + w llama.cpp's converter stores)
                out.add(new Spec(p + "post_attention_norm.weight", new long[] {s.dim()}, 0.2f, null, 1f));
            }
            out.add(new Spec(p + "ffn_norm.weight", new long[] {s.dim()}, 0, ones(s.dim())));
            if (s.arch().equals("phi3")) {                    // gate rows first, then up's
                out.add(new Spec(p + "ffn_up.weight", new long[] {s.dim(), 2L * s.ffn()}, std, null));
            } else {
                out.add(new Spec(p + "ffn_gate.weight", new long[] {s.dim(), s.ffn()}, std, null));
                out.add(new Spec(p + "ffn_up.weight", new long[] {s.dim(), s.ffn()}, std, null));
            }
            out.add(new Spec(p + "ffn_down.weight", new long[] {s.ffn(), s.dim()}, outStd, null));
            if (s.gemma()) {
                out.add(new Spec(p + "post_ffw_norm.weight", new long[] {s.dim()}, 0.2f, null, 1f));
            }
        }
        return out;
    }

    /** The number of weights {@link #write} writes for this shape (factorized at {@code lowRankKeep} when it is above 0). */
    public static long parameters(SynthShape shape, double lowRankKeep, int rankStep) {
        List<Spec> specs = specs(shape);
        if (lowRankKeep > 0) {
            specs = factorized(specs, lowRankKeep, rankStep);
        }
        long n = 0;
        for (Spec sp : specs) {
            long e = 1;
            for (long d : sp.shape) {
                e *= d;
            }
            n += e;
        }
        return n;
    }

    /** The block matrices of specs replaced by factor pairs where the budget gives a rank. */
    private static List<Spec> factorized(List<Spec> specs, double keep, int step) {
        List<Spec> out = new ArrayList<>();
        for (Spec sp : specs) {
            String n = sp.name;
            String role = n.startsWith("blk.") ? n.substring(n.indexOf('.', 4) + 1, n.length() - ".weight".length()) : "";
            long in = sp.shape[0];
            long outs = sp.shape.length > 1 ? sp.shape[1] : 1;
            int k = cria.model.LowRankTensors.ROLES.contains(role) ? cria.model.LowRankTensors.rank(outs, in, keep, step) : 0;
            if (k == 0) {
                out.add(sp);
                continue;
            }
            // std(B·A) = sqrt(k)·std(A)·std(B): split the dense spread evenly between the factors
            float std = (float) Math.sqrt(sp.std / Math.sqrt(k));
            String stem = n.substring(0, n.length() - ".weight".length());
            out.add(new Spec(stem + cria.model.LowRankTensors.SUFFIX_A + ".weight", new long[] {in, k}, std, null));
            out.add(new Spec(stem + cria.model.LowRankTensors.SUFFIX_B + ".weight", new long[] {k, outs}, std, null));
        }
        return out;
    }

    /** llama3's rope frequency factors (low frequencies slowed by the factor, a smooth band between). */
    static float[] llama3Factors(SynthShape s) {
        double factor = s.llama3Rope();
        double lowFreqFactor = 1;
        double highFreqFactor = 4;
        double originalContext = 8192;
        double lowWavelen = originalContext / lowFreqFactor;
        double highWavelen = originalContext / highFreqFactor;
        int half = s.headDim() / 2;
        float[] f = new float[half];
        for (int i = 0; i < half; i++) {
            double freq = Math.pow(s.ropeBase(), -2.0 * i / s.headDim());
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) {
                f[i] = 1f;
            } else if (wavelen > lowWavelen) {
                f[i] = (float) factor;
            } else {
                double smooth = (originalContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                f[i] = (float) (1.0 / ((1 - smooth) / factor + smooth));
            }
        }
        return f;
    }

    private static float[] ones(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, 1f);
        return a;
    }

    private static void fill(ExecutorService pool, Spec sp, GgmlType type, long seed, java.lang.foreign.MemorySegment dst,
                             LongConsumer progress) {
        int n = (int) sp.shape[0];
        long rows = sp.shape.length > 1 ? sp.shape[1] : 1;
        long rowBytes = type.rowBytes(n);
        Codec codec = Codecs.of(type);
        if (!codec.canQuantize()) {
            throw new CriaException("Cria cannot produce " + type + " tensors; choose another type");
        }
        int chunkRows = (int) Math.max(1, Math.min(rows, CHUNK_VALUES / n));
        List<Future<?>> futures = new ArrayList<>();
        for (long r0 = 0; r0 < rows; r0 += chunkRows) {
            long first = r0;
            int count = (int) Math.min(chunkRows, rows - r0);
            futures.add(pool.submit(() -> {
                float[] row = new float[n];
                SplittableRandom rnd = new SplittableRandom(mix(seed, first));
                for (int i = 0; i < count; i++) {
                    if (sp.values != null) {
                        System.arraycopy(sp.values, 0, row, 0, n);
                    } else {
                        for (int j = 0; j < n; j++) {
                            row[j] = sp.mean + (float) rnd.nextGaussian() * sp.std;
                        }
                    }
                    codec.quantize(row, 0, n, dst, (first + i) * rowBytes);
                }
                if (progress != null) {
                    progress.accept((long) count * n);
                }
            }));
        }
        try {
            for (Future<?> f : futures) {
                f.get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CriaException("interrupted");
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new IllegalStateException(e.getCause());
        }
    }

    /** A well-mixed 64-bit value from two (splitmix64's finalizer). */
    static long mix(long a, long b) {
        long z = a * 0x9E3779B97F4A7C15L + b + 0x632BE59BD9B4E5D9L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
