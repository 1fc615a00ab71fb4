// Writes trained LoRA adapters as a llama.cpp LoRA GGUF: general.type adapter, adapter.lora.alpha, <tensor>.lora_a / .lora_b.
package cria.train;

import cria.backend.TrainOps;
import cria.gguf.GgmlType;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * The adapter file llama.cpp's {@code --lora} and Cria's {@code --lora} read: metadata
 * {@code general.type = adapter}, {@code adapter.type = lora}, {@code adapter.lora.alpha} and the
 * base's {@code general.architecture}; per adapted product {@code W} the F32 tensors
 * {@code W.lora_a} (ne = [in, rank]) and {@code W.lora_b} (ne = [rank, out]). A reader scales
 * {@code B·A} by {@code alpha / rank} (times its own scale).
 */
public final class AdapterExport {
    private AdapterExport() {}

    /** Writes every adapter of {@code p} (the values now in {@code ops}). */
    public static void write(Path out, Params p, TrainOps ops, String architecture, float alpha, String description) {
        Metadata md = new Metadata(out.toString());
        md.put("general.architecture", GgufValue.ofString(architecture));
        md.put("general.type", GgufValue.ofString("adapter"));
        md.put("adapter.type", GgufValue.ofString("lora"));
        md.put("adapter.lora.alpha", GgufValue.ofF32(alpha));
        md.put("general.name", GgufValue.ofString(out.getFileName().toString().replaceFirst("\\.gguf$", "")));
        md.put("general.description", GgufValue.ofString(description));
        GgufWriter w = new GgufWriter(md);
        for (Params.LoraPair lp : p.loras()) {
            for (Params.Param q : new Params.Param[] {lp.a(), lp.b()}) {
                float[] v = p.values(ops, q);
                byte[] b = new byte[v.length * 4];
                MemorySegment s = MemorySegment.ofArray(b);
                for (int i = 0; i < v.length; i++) {
                    s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v[i]);
                }
                w.addTensor(q.name, GgmlType.F32, new long[] {q.cols, q.rows}, s);
            }
        }
        w.write(out);
    }
}
