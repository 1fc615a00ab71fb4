// Low-rank factors in the quantization plan: each factor gets its dense matrix's type, the mixes counting each matrix once.
package cria.quantize;

import static org.junit.jupiter.api.Assertions.assertEquals;

import cria.gguf.GgmlType;
import cria.gguf.GgufTensorInfo;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class QuantPlanFactorsTest {

    /** The 8B table with every block matrix replaced by factors of rank 1024 (rows that fit every block size). */
    static List<GgufTensorInfo> factorized() {
        List<GgufTensorInfo> ts = new ArrayList<>();
        for (GgufTensorInfo t : QuantPlanTest.llama8b(true)) {
            String n = t.name();
            if (!n.startsWith("blk.") || n.contains("_norm")) {
                ts.add(t);
                continue;
            }
            String stem = n.substring(0, n.length() - ".weight".length());
            ts.add(QuantPlanTest.info(stem + "_lr_a.weight", t.shape()[0], 1024));
            ts.add(QuantPlanTest.info(stem + "_lr_b.weight", 1024, t.shape()[1]));
        }
        return ts;
    }

    static Map<String, GgmlType> types(List<QuantPlan.Item> plan) {
        Map<String, GgmlType> m = new HashMap<>();
        for (QuantPlan.Item it : plan) {
            m.put(it.tensor().name(), it.target());
        }
        return m;
    }

    @Test
    void eachFactorGetsTheTypeItsDenseMatrixWouldGet() {
        for (LlamaFileType f : new LlamaFileType[] {LlamaFileType.Q4_K_M, LlamaFileType.Q3_K_M, LlamaFileType.Q5_K_M, LlamaFileType.Q8_0}) {
            Map<String, GgmlType> dense = types(QuantPlan.of(QuantPlanTest.llamaMeta(32, 32, 8), QuantPlanTest.llama8b(true), f, false));
            Map<String, GgmlType> fact = types(QuantPlan.of(QuantPlanTest.llamaMeta(32, 32, 8), factorized(), f, false));
            int differing = 0;
            for (Map.Entry<String, GgmlType> e : dense.entrySet()) {
                String n = e.getKey();
                if (!n.startsWith("blk.") || n.contains("_norm")) {
                    assertEquals(e.getValue(), fact.get(n), f + " " + n);
                    continue;
                }
                String stem = n.substring(0, n.length() - ".weight".length());
                assertEquals(e.getValue(), fact.get(stem + "_lr_a.weight"), f + " " + n + " (first factor)");
                assertEquals(e.getValue(), fact.get(stem + "_lr_b.weight"), f + " " + n + " (second factor)");
                differing += e.getValue() != f.baseType() ? 1 : 0;
            }
            if (f == LlamaFileType.Q4_K_M) {
                // the mix is there to see: attn_v and ffn_down of the "more bits" layers in Q6_K
                assertEquals(GgmlType.Q6_K, fact.get("blk.0.attn_v_lr_b.weight"));
                assertEquals(GgmlType.Q4_K, fact.get("blk.4.attn_v_lr_a.weight"));
                assertEquals(true, differing > 10, "mixed tensors: " + differing);
            }
        }
    }

    @Test
    void aSecondFactorWithShortRowsFallsBackOnItsOwn() {
        List<GgufTensorInfo> ts = new ArrayList<>();
        for (GgufTensorInfo t : factorized()) {
            ts.add(t.name().endsWith("_lr_b.weight") ? QuantPlanTest.info(t.name(), 96, t.shape()[1]) : t);
        }
        Map<String, GgmlType> m = types(QuantPlan.of(QuantPlanTest.llamaMeta(32, 32, 8), ts, LlamaFileType.Q4_K_M, false));
        assertEquals(GgmlType.Q4_K, m.get("blk.5.ffn_up_lr_a.weight"));
        assertEquals(GgmlType.Q5_0, m.get("blk.5.ffn_up_lr_b.weight"), "rows of 96 values: Q4_K falls back to Q5_0");
        assertEquals(GgmlType.Q8_0, m.get("blk.0.ffn_down_lr_b.weight"), "Q6_K (more bits) falls back to Q8_0");
    }
}
