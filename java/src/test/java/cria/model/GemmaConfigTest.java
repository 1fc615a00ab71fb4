// LlamaConfig reads gemma2 and gemma3 keys with llama.cpp's defaults: windows, patterns, windowed rope, soft caps, the 27B scale.
package cria.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.AttnSpec;
import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import org.junit.jupiter.api.Test;

class GemmaConfigTest {

    /** The keys every file has: a gemma-2-2b-like or gemma-3-1b-like shape of {@code layers} layers. */
    private static Metadata base(String arch, int layers) {
        Metadata md = new Metadata("test-" + arch + ".gguf");
        md.put("general.architecture", GgufValue.ofString(arch));
        md.put(arch + ".embedding_length", GgufValue.ofU32(arch.equals("gemma2") ? 2304 : 5376));
        md.put(arch + ".block_count", GgufValue.ofU32(layers));
        md.put(arch + ".feed_forward_length", GgufValue.ofU32(9216));
        md.put(arch + ".attention.head_count", GgufValue.ofU32(arch.equals("gemma2") ? 8 : 32));
        md.put(arch + ".attention.head_count_kv", GgufValue.ofU32(4));
        md.put(arch + ".attention.key_length", GgufValue.ofU32(arch.equals("gemma2") ? 256 : 128));
        md.put(arch + ".attention.value_length", GgufValue.ofU32(arch.equals("gemma2") ? 256 : 128));
        md.put(arch + ".attention.layer_norm_rms_epsilon", GgufValue.ofF32(1e-6f));
        md.put(arch + ".rope.freq_base", GgufValue.ofF32(arch.equals("gemma2") ? 10000f : 1e6f));
        return md;
    }

    @Test
    void gemma2WithoutItsOptionalKeysTakesLlamaCppsDefaults() {
        LlamaConfig c = LlamaConfig.from(base("gemma2", 26), 256000);
        assertTrue(c.isGemma() && c.ropeNeox() && !c.qkNorm());
        assertEquals(4096, c.slidingWindow());
        assertTrue(c.windowed(0) && !c.windowed(1) && c.windowed(24) && !c.windowed(25));  // pattern 2
        assertEquals(new AttnSpec((float) (1 / Math.sqrt(256)), 4096, 50f), c.attnSpec(0));
        assertEquals(new AttnSpec((float) (1 / Math.sqrt(256)), 0, 50f), c.attnSpec(1));
        assertEquals(30f, c.gemma().finalSoftcap());
        assertEquals(10000f, c.ropeBase(0));  // the windowed layers share the global base
    }

    @Test
    void gemma3SwaKeysRopeScalingAndThe27bScale() {
        Metadata md = base("gemma3", 62);
        md.put("gemma3.attention.sliding_window", GgufValue.ofU32(1024));
        md.put("gemma3.rope.scaling.type", GgufValue.ofString("linear"));
        md.put("gemma3.rope.scaling.factor", GgufValue.ofF32(8f));
        md.put("gemma3.attn_logit_softcapping", GgufValue.ofF32(50f));  // not a gemma3 key: llama.cpp ignores it, so does Cria
        LlamaConfig c = LlamaConfig.from(md, 262144);
        assertTrue(c.qkNorm());
        for (int l = 0; l < 6; l++) {
            assertEquals(l < 5, c.windowed(l), "layer " + l);  // pattern 6
        }
        assertEquals(10000f, c.ropeBase(0));
        assertEquals(1f, c.ropeFreqScale(0));        // windowed layers: no linear scaling
        assertEquals(1e6f, c.ropeBase(5));
        assertEquals(0.125f, c.ropeFreqScale(5));    // global layers: 1 / factor
        float scale = (float) (1 / Math.sqrt(5376 / 32));  // 27B: 1 / sqrt(dim / heads), not 1 / sqrt(128)
        assertEquals(new AttnSpec(scale, 1024, 0f), c.attnSpec(0));
        assertEquals(0f, c.gemma().finalSoftcap());
    }

    @Test
    void gemma3WithoutAWindowHasNoWindowedLayers() {
        Metadata md = base("gemma3", 26);
        md.put("gemma3.rope.freq_base_swa", GgufValue.ofF32(5000f));
        LlamaConfig c = LlamaConfig.from(md, 262144);
        assertEquals(0, c.slidingWindow());
        for (int l = 0; l < 26; l++) {
            assertFalse(c.windowed(l));
            assertEquals(1e6f, c.ropeBase(l));
        }
        assertEquals(AttnSpec.plain(128), c.attnSpec(3));
    }
}
