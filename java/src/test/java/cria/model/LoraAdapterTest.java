// The adapter file round trip: what LoraAdapterWriter writes, LoraAdapter reads back (keys, pairs, shapes, the scale rule).
package cria.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.GgufEdit;
import cria.TestAdapters;
import cria.TestModels;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import cria.tensor.Codecs;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoraAdapterTest {
    @TempDir
    Path tmp;

    static float[] seq(int n, float step) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (i + 1) * step;
        }
        return v;
    }

    @Test
    void writtenAdaptersReadBack() {
        Path base = TestModels.tinyLlama(tmp.resolve("m.gguf"), 1);
        Map<String, LoraAdapterWriter.Factors> f = new LinkedHashMap<>();
        f.put("blk.1.ffn_down.weight", new LoraAdapterWriter.Factors(seq(2 * 64, 0.01f), seq(32 * 2, 0.02f), 2));
        f.put("blk.0.attn_q.weight", new LoraAdapterWriter.Factors(seq(3 * 32, 0.01f), seq(32 * 3, -0.01f), 3));
        f.put("output.weight", new LoraAdapterWriter.Factors(seq(32, 0.01f), seq(64, 0.01f), 1));
        Metadata extra = new Metadata("x");
        extra.put("adapter.lora.task_name", GgufValue.ofString("test"));
        extra.put("general.type", GgufValue.ofString("model")); // cannot override the adapter keys
        Path out = tmp.resolve("a.gguf");
        LoraAdapterWriter.write(out, "llama", 4f, f, extra);
        try (GgufFile file = GgufFile.open(out)) {
            assertEquals("adapter", file.metadata().string("general.type").orElseThrow());
            assertEquals("lora", file.metadata().string("adapter.type").orElseThrow());
            assertEquals("test", file.metadata().string("adapter.lora.task_name").orElseThrow());
            // llama.cpp's order: global tensors first, then by layer
            assertEquals(List.of("output.weight.lora_a", "output.weight.lora_b", "blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b",
                    "blk.1.ffn_down.weight.lora_a", "blk.1.ffn_down.weight.lora_b"), file.tensors().stream().map(t -> t.name()).toList());
            assertArrayEquals(new long[] {64, 2}, file.tensor("blk.1.ffn_down.weight.lora_a").shape());
            assertArrayEquals(new long[] {2, 32}, file.tensor("blk.1.ffn_down.weight.lora_b").shape());
        }
        try (GgufFile b = GgufFile.open(base); LoraAdapter a = LoraAdapter.open(out, b)) {
            assertEquals(4f, a.alpha());
            assertEquals(3, a.pairs().size());
            LoraAdapter.Pair q = a.pair("blk.0.attn_q.weight");
            assertEquals(3, q.rank());
            assertEquals(32, q.inputs());
            assertEquals(32, q.outputs());
            assertArrayEquals(seq(3 * 32, 0.01f), rows(q.a()));
            assertEquals(0.5f * 4f / 3, a.scale(q, 0.5f), 1e-7);
            try (LoraStack s = LoraStack.of(List.of(new LoraStack.Use(a, 1f), new LoraStack.Use(a, -1f)))) {
                assertEquals(8, s.rank(), "two rank-3 pairs stacked: 6, padded to a multiple of 4");
                LoraStack.Product p = s.product("blk.0.attn_q.weight");
                float[] w = new float[32];
                s.addTo(p, 5, w);
                for (float v : w) {
                    assertEquals(0f, v, 1e-6f, "an adapter and its negative cancel");
                }
            }
        }
        // alpha 0: the factor is the user scale alone (llama.cpp's rule)
        Path zero = tmp.resolve("z.gguf");
        LoraAdapterWriter.write(zero, "llama", 0f, Map.of("blk.0.attn_q.weight", f.get("blk.0.attn_q.weight")), null);
        try (GgufFile b = GgufFile.open(base); LoraAdapter a = LoraAdapter.open(zero, b)) {
            assertEquals(0.75f, a.scale(a.pair("blk.0.attn_q.weight"), 0.75f));
        }
    }

    private static float[] rows(cria.tensor.Tensor t) {
        float[] all = new float[(int) (t.rows() * t.rowLength())];
        for (int r = 0; r < t.rows(); r++) {
            t.dequantizeRow(r, all, r * t.rowLength());
        }
        return all;
    }

    @Test
    void theWriterRefusesWhatCannotBeAnAdapter() {
        Path out = tmp.resolve("bad.gguf");
        CriaException e = assertThrows(CriaException.class, () -> LoraAdapterWriter.write(out, "llama", 1f,
                Map.of("blk.0.attn_q.weight", new LoraAdapterWriter.Factors(new float[10], new float[12], 3)), null));
        assertTrue(e.getMessage().contains("not whole rows of rank 3"), e.getMessage());
        e = assertThrows(CriaException.class, () -> LoraAdapterWriter.write(out, "llama", 1f,
                Map.of("blk.0.attn_q.weight", new LoraAdapterWriter.Factors(new float[0], new float[0], 0)), null));
        assertTrue(e.getMessage().contains("rank 0 is outside 1..4096"), e.getMessage());
        e = assertThrows(CriaException.class, () -> LoraAdapterWriter.write(out, "llama", Float.NaN, Map.of(), null));
        assertTrue(e.getMessage().contains("alpha"), e.getMessage());
        assertTrue(!out.toFile().exists());
    }

    /** F16 and BF16 adapter tensors are read as llama.cpp reads them: the stacked copies hold their values. */
    @Test
    void halfPrecisionAdapters() {
        Path base = TestModels.tinyLlama(tmp.resolve("m.gguf"), 2);
        Path f32 = TestAdapters.write(tmp.resolve("f32.gguf"), 8f, TestAdapters.random(base, 4, 5, 0.2, 2.0, TestAdapters.ALL));
        for (GgmlType type : new GgmlType[] {GgmlType.F16, GgmlType.BF16}) {
            GgufEdit e = GgufEdit.of(f32);
            for (GgufEdit.TensorData t : List.copyOf(e.tensors.values())) {
                float[] v = MemorySegment.ofArray(t.bytes()).toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
                e.putTensor(t.name(), type, t.shape(), b -> Codecs.of(type).quantize(v, 0, v.length,
                        MemorySegment.ofArray(b), 0));
            }
            Path half = e.write(tmp.resolve(type + ".gguf"));
            try (GgufFile b = GgufFile.open(base); LoraAdapter a = LoraAdapter.open(f32, b); LoraAdapter h = LoraAdapter.open(half, b);
                 LoraStack sa = LoraStack.of(List.of(new LoraStack.Use(a, 1f))); LoraStack sh = LoraStack.of(List.of(new LoraStack.Use(h, 1f)))) {
                assertEquals(type, h.pair("blk.0.attn_q.weight").a().type());
                for (String name : sa.products().keySet()) {
                    for (boolean isA : new boolean[] {true, false}) {
                        float[] x = (isA ? sa.product(name).a() : sa.product(name).b()).data().toArray(ValueLayout.JAVA_FLOAT);
                        float[] y = (isA ? sh.product(name).a() : sh.product(name).b()).data().toArray(ValueLayout.JAVA_FLOAT);
                        double tol = type == GgmlType.F16 ? 1e-3 : 8e-3;
                        for (int i = 0; i < x.length; i++) {
                            assertEquals(x[i], y[i], tol * Math.abs(x[i]) + 1e-7, type + " " + name + (isA ? " A" : " B") + "[" + i + "]");
                        }
                    }
                }
            }
        }
    }
}
