// Writes trained LoRA adapters as a llama.cpp LoRA GGUF (through cria.model.LoraAdapterWriter).
package cria.train;

import cria.backend.TrainOps;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import cria.model.LoraAdapterWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The adapter file llama.cpp's {@code --lora} and Cria's {@code --lora} read: every adapter of a
 * {@link Params} under its base tensor's name ({@code W.lora_a}, ne = [in, rank]; {@code W.lora_b},
 * ne = [rank, out]; F32), with {@code adapter.lora.alpha} and the base's architecture.
 */
public final class AdapterExport {
    private AdapterExport() {}

    /** Writes every adapter of {@code p} (the values now in {@code ops}), with a name and a description of how it was made. */
    public static void write(Path out, Params p, TrainOps ops, String architecture, float alpha, String description) {
        Map<String, LoraAdapterWriter.Factors> tensors = new LinkedHashMap<>();
        for (Params.LoraPair lp : p.loras()) {
            String base = lp.a().name.substring(0, lp.a().name.length() - ".lora_a".length());
            tensors.put(base, new LoraAdapterWriter.Factors(p.values(ops, lp.a()), p.values(ops, lp.b()), lp.rank()));
        }
        Metadata extra = new Metadata(out.toString());
        extra.put("general.name", GgufValue.ofString(out.getFileName().toString().replaceFirst("\\.gguf$", "")));
        extra.put("general.description", GgufValue.ofString(description));
        LoraAdapterWriter.write(out, architecture, alpha, tensors, extra);
    }
}
