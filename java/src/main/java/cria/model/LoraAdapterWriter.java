// Writes LoRA adapters in llama.cpp's GGUF format (F32), which Cria and llama.cpp both apply.
package cria.model;

import cria.CriaException;
import cria.gguf.GgmlType;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * The file {@link LoraAdapter} reads: metadata {@code general.type = "adapter"},
 * {@code general.architecture}, {@code adapter.type = "lora"}, {@code adapter.lora.alpha}
 * (float32), any extra keys, then per adapted base tensor {@code NAME.lora_a} ([n_in, r]) and
 * {@code NAME.lora_b} ([r, n_out]) in F32, in llama.cpp's tensor order (global tensors, then by
 * layer). Written beside the target and renamed over it when complete ({@link GgufWriter}).
 */
public final class LoraAdapterWriter {
    private LoraAdapterWriter() {}

    /**
     * One adapted tensor's factors, row-major: {@code a} holds r rows of n_in values (A, [r][n_in]),
     * {@code b} n_out rows of r values (B, [n_out][r]); the correction is {@code B·A}, n_out × n_in.
     */
    public record Factors(float[] a, float[] b, int rank) {
        /** Input width: a's length over the rank. */
        public int inputs() {
            return a.length / rank;
        }

        /** Output width: b's length over the rank. */
        public int outputs() {
            return b.length / rank;
        }
    }

    /**
     * Writes an adapter.
     *
     * @param out          the file to write (replaced only once complete)
     * @param architecture the base model's {@code general.architecture}, e.g. "llama"
     * @param alpha        {@code adapter.lora.alpha} (the correction's factor is scale · alpha / rank; 0: scale alone)
     * @param tensors      base tensor name (e.g. {@code blk.0.attn_q.weight}) → its factors
     * @param extra        more metadata (e.g. {@code general.name}, {@code adapter.lora.task_name}), or null;
     *                     it cannot override the four keys above
     * @throws CriaException when a rank is outside 1..{@link LoraAdapter#MAX_RANK}, a factor's length
     *                       is not a multiple of its rank, a value is not finite, or the file cannot be written
     */
    public static void write(Path out, String architecture, float alpha, Map<String, Factors> tensors, Metadata extra) {
        if (architecture == null || architecture.isEmpty()) {
            throw new CriaException(out + ": an adapter needs the base model's architecture");
        }
        if (!Float.isFinite(alpha)) {
            throw new CriaException(out + ": the LoRA alpha must be finite, got " + alpha);
        }
        Metadata md = new Metadata(out.toString());
        md.put(LoraAdapter.KEY_GENERAL_TYPE, GgufValue.ofString(LoraAdapter.ADAPTER));
        md.put(LoraAdapter.KEY_ARCHITECTURE, GgufValue.ofString(architecture));
        md.put(LoraAdapter.KEY_ADAPTER_TYPE, GgufValue.ofString(LoraAdapter.LORA));
        md.put(LoraAdapter.KEY_ALPHA, GgufValue.ofF32(alpha));
        if (extra != null) {
            for (Map.Entry<String, GgufValue> e : extra.asMap().entrySet()) {
                if (!md.has(e.getKey())) {
                    md.put(e.getKey(), e.getValue());
                }
            }
        }
        List<String> names = new ArrayList<>(tensors.keySet());
        names.sort(ORDER);
        GgufWriter w = new GgufWriter(md);
        for (String name : names) {
            Factors f = tensors.get(name);
            check(out, name, f);
            w.addTensor(name + LoraAdapter.SUFFIX_A, GgmlType.F32, new long[] {f.inputs(), f.rank()}, MemorySegment.ofArray(f.a().clone()));
            w.addTensor(name + LoraAdapter.SUFFIX_B, GgmlType.F32, new long[] {f.rank(), f.outputs()}, MemorySegment.ofArray(f.b().clone()));
        }
        w.write(out);
    }

    private static void check(Path out, String name, Factors f) {
        if (f.rank() < 1 || f.rank() > LoraAdapter.MAX_RANK) {
            throw new CriaException(out + ": tensor " + name + ": rank " + f.rank() + " is outside 1.." + LoraAdapter.MAX_RANK);
        }
        if (f.a().length == 0 || f.b().length == 0 || f.a().length % f.rank() != 0 || f.b().length % f.rank() != 0) {
            throw new CriaException(out + ": tensor " + name + ": A holds " + f.a().length + " and B " + f.b().length
                    + " values, which are not whole rows of rank " + f.rank());
        }
        for (float[] v : new float[][] {f.a(), f.b()}) {
            for (float x : v) {
                if (!Float.isFinite(x)) {
                    throw new CriaException(out + ": tensor " + name + " holds a non-finite value (" + x + ")");
                }
            }
        }
    }

    /** Global tensors first, then by layer number, by name within a layer (as llama.cpp's converter writes them). */
    static final Comparator<String> ORDER = Comparator.comparingInt(LoraAdapterWriter::layer).thenComparing(Comparator.naturalOrder());

    private static int layer(String name) {
        if (!name.startsWith("blk.")) {
            return -1;
        }
        int dot = name.indexOf('.', 4);
        String num = dot < 0 ? "" : name.substring(4, dot);
        return !num.isEmpty() && num.length() <= 9 && num.chars().allMatch(Character::isDigit) ? Integer.parseInt(num) : Integer.MAX_VALUE;
    }
}
