// The per-tensor type choice of llama.cpp's mixes on a 32-layer model shape, tensor order, and the fallbacks.
package cria.quantize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CriaException;
import cria.SharedData;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class QuantPlanTest {

    /** A Llama-3-8B-like tensor table: 32 layers, 32 heads, 8 KV heads (grouped-query factor 4). */
    static List<GgufTensorInfo> llama8b(boolean output) {
        List<GgufTensorInfo> ts = new ArrayList<>();
        ts.add(info("token_embd.weight", 4096, 128256));
        ts.add(info("output_norm.weight", 4096));
        if (output) {
            ts.add(info("output.weight", 4096, 128256));
        }
        for (int l = 0; l < 32; l++) {
            String b = "blk." + l + ".";
            ts.add(info(b + "attn_norm.weight", 4096));
            ts.add(info(b + "attn_q.weight", 4096, 4096));
            ts.add(info(b + "attn_k.weight", 4096, 1024));
            ts.add(info(b + "attn_v.weight", 4096, 1024));
            ts.add(info(b + "attn_output.weight", 4096, 4096));
            ts.add(info(b + "ffn_norm.weight", 4096));
            ts.add(info(b + "ffn_gate.weight", 4096, 14336));
            ts.add(info(b + "ffn_up.weight", 4096, 14336));
            ts.add(info(b + "ffn_down.weight", 14336, 4096));
        }
        return ts;
    }

    static GgufTensorInfo info(String name, long... shape) {
        return new GgufTensorInfo(name, GgmlType.F16, shape, 0, 0);
    }

    static Metadata llamaMeta(int layers, int heads, int kvHeads) {
        Metadata md = new Metadata("test");
        md.put("general.architecture", GgufValue.ofString("llama"));
        md.put("llama.block_count", GgufValue.ofU32(layers));
        md.put("llama.attention.head_count", GgufValue.ofU32(heads));
        md.put("llama.attention.head_count_kv", GgufValue.ofU32(kvHeads));
        return md;
    }

    static Map<String, GgmlType> types(List<QuantPlan.Item> plan) {
        Map<String, GgmlType> m = new HashMap<>();
        for (QuantPlan.Item it : plan) {
            m.put(it.tensor().name(), it.target());
        }
        return m;
    }

    /** Layers llama.cpp's use_more_bits picks for 32 layers: 0-3, 28-31, and 6, 9, ..., 27. */
    static final Set<Integer> MORE_BITS_32 = Set.of(0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31);

    @Test
    void q4_K_MGivesSomeLayersAndTheOutputSixBits() {
        Map<String, GgmlType> t = types(QuantPlan.of(llamaMeta(32, 32, 8), llama8b(true), LlamaFileType.Q4_K_M, false));
        assertEquals(GgmlType.Q6_K, t.get("output.weight"));
        assertEquals(GgmlType.Q4_K, t.get("token_embd.weight"));
        assertEquals(GgmlType.F16, t.get("output_norm.weight"), "1-D tensors keep their type");
        for (int l = 0; l < 32; l++) {
            GgmlType more = MORE_BITS_32.contains(l) ? GgmlType.Q6_K : GgmlType.Q4_K;
            assertEquals(more, t.get("blk." + l + ".attn_v.weight"), "attn_v " + l);
            assertEquals(more, t.get("blk." + l + ".ffn_down.weight"), "ffn_down " + l);
            assertEquals(GgmlType.Q4_K, t.get("blk." + l + ".attn_q.weight"));
            assertEquals(GgmlType.Q4_K, t.get("blk." + l + ".ffn_up.weight"));
            assertEquals(GgmlType.F16, t.get("blk." + l + ".attn_norm.weight"));
        }
    }

    @Test
    void otherMixes() {
        Metadata md = llamaMeta(32, 32, 8);
        Map<String, GgmlType> s = types(QuantPlan.of(md, llama8b(true), LlamaFileType.Q4_K_S, false));
        assertEquals(GgmlType.Q5_K, s.get("blk.3.attn_v.weight"));
        assertEquals(GgmlType.Q4_K, s.get("blk.4.attn_v.weight"));
        assertEquals(GgmlType.Q5_K, s.get("blk.3.ffn_down.weight"));
        assertEquals(GgmlType.Q4_K, s.get("blk.4.ffn_down.weight"));

        Map<String, GgmlType> m3 = types(QuantPlan.of(md, llama8b(true), LlamaFileType.Q3_K_M, false));
        assertEquals(GgmlType.Q5_K, m3.get("blk.1.attn_v.weight"));
        assertEquals(GgmlType.Q4_K, m3.get("blk.2.attn_v.weight"));
        assertEquals(GgmlType.Q4_K, m3.get("blk.0.attn_output.weight"));
        assertEquals(GgmlType.Q5_K, m3.get("blk.1.ffn_down.weight"));
        assertEquals(GgmlType.Q4_K, m3.get("blk.2.ffn_down.weight"));
        assertEquals(GgmlType.Q3_K, m3.get("blk.2.ffn_up.weight"));

        Map<String, GgmlType> q2 = types(QuantPlan.of(md, llama8b(true), LlamaFileType.Q2_K, false));
        assertEquals(GgmlType.Q4_K, q2.get("blk.9.attn_v.weight"), "grouped-query factor 4");
        assertEquals(GgmlType.Q3_K, q2.get("blk.9.ffn_down.weight"));
        assertEquals(GgmlType.Q3_K, q2.get("blk.9.attn_output.weight"));
        assertEquals(GgmlType.Q2_K, q2.get("blk.9.attn_q.weight"));

        Map<String, GgmlType> q2mha = types(QuantPlan.of(llamaMeta(32, 32, 32), llama8b(true), LlamaFileType.Q2_K, false));
        assertEquals(GgmlType.Q3_K, q2mha.get("blk.9.attn_v.weight"), "no grouped-query attention");

        Map<String, GgmlType> nl = types(QuantPlan.of(md, llama8b(true), LlamaFileType.IQ4_NL, false));
        assertEquals(GgmlType.Q5_K, nl.get("blk.20.attn_v.weight"));
        assertEquals(GgmlType.Q5_K, nl.get("blk.3.ffn_down.weight"));
        assertEquals(GgmlType.IQ4_NL, nl.get("blk.4.ffn_down.weight"));
        assertEquals(GgmlType.Q6_K, nl.get("output.weight"));

        Map<String, GgmlType> q8 = types(QuantPlan.of(md, llama8b(true), LlamaFileType.Q8_0, false));
        assertEquals(GgmlType.Q8_0, q8.get("output.weight"), "Q8_0 keeps its output in Q8_0");
        assertEquals(GgmlType.Q8_0, q8.get("blk.0.attn_v.weight"));

        Map<String, GgmlType> f16 = types(QuantPlan.of(md, llama8b(true), LlamaFileType.BF16, false));
        assertEquals(GgmlType.BF16, f16.get("output.weight"), "float file types have no mix");
    }

    @Test
    void tiedEmbeddingsTakeTheOutputsType() {
        Map<String, GgmlType> t = types(QuantPlan.of(llamaMeta(32, 32, 8), llama8b(false), LlamaFileType.Q4_K_M, false));
        assertEquals(GgmlType.Q6_K, t.get("token_embd.weight"));
        Map<String, GgmlType> pure = types(QuantPlan.of(llamaMeta(32, 32, 8), llama8b(false), LlamaFileType.Q4_K_M, true));
        assertEquals(GgmlType.Q4_K, pure.get("token_embd.weight"));
        assertEquals(GgmlType.Q4_K, pure.get("blk.0.attn_v.weight"));
    }

    @Test
    void orderIsLlamaCppsLayerThenName() {
        List<QuantPlan.Item> plan = QuantPlan.of(llamaMeta(32, 32, 8), llama8b(true), LlamaFileType.Q8_0, true);
        assertEquals("output.weight", plan.get(0).tensor().name());
        assertEquals("output_norm.weight", plan.get(1).tensor().name());
        assertEquals("token_embd.weight", plan.get(2).tensor().name());
        assertEquals("blk.0.attn_k.weight", plan.get(3).tensor().name());
        int i9 = -1;
        int i10 = -1;
        for (int i = 0; i < plan.size(); i++) {
            String n = plan.get(i).tensor().name();
            if (n.equals("blk.9.ffn_up.weight")) {
                i9 = i;
            }
            if (n.equals("blk.10.attn_k.weight")) {
                i10 = i;
            }
        }
        assertEquals(i9 + 1, i10, "layer 10 follows layer 9 (numbers, not text)");
    }

    @Test
    void rowsThatDoNotFitTheBlocksFallBack() {
        List<GgufTensorInfo> ts = List.of(info("blk.0.attn_q.weight", 96, 8), info("blk.0.attn_output.weight", 40, 8),
                info("blk.0.attn_k.weight", 256, 8), info("blk.0.ffn_down.weight", 96, 8));
        Map<String, GgmlType> t = types(QuantPlan.of(llamaMeta(1, 4, 4), ts, LlamaFileType.Q4_K_M, false));
        assertEquals(GgmlType.Q5_0, t.get("blk.0.attn_q.weight"), "Q4_K's fallback");
        assertEquals(GgmlType.F16, t.get("blk.0.attn_output.weight"), "no 32-value block fits 40");
        assertEquals(GgmlType.Q4_K, t.get("blk.0.attn_k.weight"));
        // with one layer, layer 0 is also the last: Q6_K, whose fallback is Q8_0
        assertEquals(GgmlType.Q8_0, t.get("blk.0.ffn_down.weight"));
        Map<String, GgmlType> x = types(QuantPlan.of(llamaMeta(1, 4, 4), ts, LlamaFileType.IQ4_XS, true));
        assertEquals(GgmlType.IQ4_NL, x.get("blk.0.attn_q.weight"));
        Map<String, GgmlType> q3 = types(QuantPlan.of(llamaMeta(1, 4, 4), ts, LlamaFileType.Q3_K_S, true));
        assertEquals(GgmlType.Q4_0, q3.get("blk.0.attn_q.weight"));
    }

    @Test
    void fileTypeNames() {
        assertEquals(LlamaFileType.Q4_K_M, LlamaFileType.parse("q4_k"));
        assertEquals(15, LlamaFileType.parse("Q4_K_M").id());
        assertEquals(7, LlamaFileType.parse("Q8_0").id());
        assertEquals(2, LlamaFileType.parse("Q4_0").id());
        assertEquals(GgmlType.Q3_K, LlamaFileType.parse("Q3_K_L").baseType());
        CriaException e = assertThrows(CriaException.class, () -> LlamaFileType.parse("IQ2_XXS"));
        assertTrue(e.getMessage().contains("Q4_K_M"), e.getMessage());
        assertEquals(21, LlamaFileType.parse("q2_k_s").id());
        assertEquals(GgmlType.Q2_K, LlamaFileType.Q2_K_S.baseType());
    }

    @Test
    void anImportanceMatrixChangesLlamaCppsChoices() {
        Metadata md = llamaMeta(32, 32, 8);
        // IQ4_XS: the first eighth of ffn_down gets Q5_K only without an imatrix
        Map<String, GgmlType> xs = types(QuantPlan.of(md, llama8b(true), LlamaFileType.IQ4_XS, false, false));
        Map<String, GgmlType> xsI = types(QuantPlan.of(md, llama8b(true), LlamaFileType.IQ4_XS, false, true));
        assertEquals(GgmlType.Q5_K, xs.get("blk.3.ffn_down.weight"));
        assertEquals(GgmlType.IQ4_XS, xsI.get("blk.3.ffn_down.weight"));
        assertEquals(GgmlType.Q5_K, xsI.get("blk.3.attn_v.weight"), "grouped-query attn_v keeps its bump");
        // Q4_0 / Q5_0: with an imatrix the first eighth of ffn_down gets Q4_1 / Q5_1
        Map<String, GgmlType> q40 = types(QuantPlan.of(md, llama8b(true), LlamaFileType.Q4_0, false, true));
        assertEquals(GgmlType.Q4_1, q40.get("blk.3.ffn_down.weight"));
        assertEquals(GgmlType.Q4_0, q40.get("blk.4.ffn_down.weight"));
        assertEquals(GgmlType.Q4_0, types(QuantPlan.of(md, llama8b(true), LlamaFileType.Q4_0, false, false)).get("blk.3.ffn_down.weight"));
        assertEquals(GgmlType.Q5_1, types(QuantPlan.of(md, llama8b(true), LlamaFileType.Q5_0, false, true)).get("blk.0.ffn_down.weight"));
        // Q2_K_S: grouped-query attn_v and the first eighth of ffn_down in Q4_K, the rest Q2_K
        List<QuantPlan.Item> plan = QuantPlan.of(md, llama8b(true), LlamaFileType.Q2_K_S, false, true);
        Map<String, GgmlType> s = types(plan);
        assertEquals(GgmlType.Q4_K, s.get("blk.9.attn_v.weight"));
        assertEquals(GgmlType.Q4_K, s.get("blk.3.ffn_down.weight"));
        assertEquals(GgmlType.Q2_K, s.get("blk.4.ffn_down.weight"));
        assertEquals(GgmlType.Q2_K, s.get("blk.4.attn_output.weight"));
        assertEquals(GgmlType.Q6_K, s.get("output.weight"));
        assertEquals(GgmlType.Q2_K, s.get("token_embd.weight"));
        for (QuantPlan.Item it : plan) {
            String n = it.tensor().name();
            boolean expect = it.target() == GgmlType.Q2_K && !n.equals("token_embd.weight");
            assertEquals(expect, QuantPlan.requiresImportance(it, LlamaFileType.Q2_K_S), n);
            assertEquals(false, QuantPlan.requiresImportance(it, LlamaFileType.Q2_K), n);
        }
    }

    @Test
    void matchesLlamaCppsQ4_K_MOnTheSharedModel() {
        Path f32 = SharedData.require("models/synth-tok512-f32.gguf");
        Path mix = SharedData.require("models/synth-tok512-Q4_K_M.gguf");
        try (GgufFile in = GgufFile.open(f32); GgufFile ref = GgufFile.open(mix)) {
            List<QuantPlan.Item> plan = QuantPlan.of(in.metadata(), in.tensors(), LlamaFileType.Q4_K_M, false);
            assertEquals(ref.tensors().size(), plan.size());
            for (int i = 0; i < plan.size(); i++) {
                GgufTensorInfo r = ref.tensors().get(i);
                assertEquals(r.name(), plan.get(i).tensor().name(), "tensor " + i);
                assertEquals(r.type(), plan.get(i).target(), r.name());
            }
        }
    }
}
