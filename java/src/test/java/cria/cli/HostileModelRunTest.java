// Runs models whose metadata, tensor table and vocabulary lie (well-formed files, absurd or inconsistent values) through generate, batch and logits.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.GgufEdit;
import cria.SharedData;
import cria.TestModels;
import cria.gguf.GgmlType;
import cria.gguf.GgufValue;
import cria.gguf.GgufValueType;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The loader's trust, attacked: every value it reads from a file (hyper-parameters, counts,
 * tensor shapes and types, token arrays, special ids) is set to zero, one, negative, huge,
 * just-wrapping, NaN and infinite values, given the wrong kind, removed, or made inconsistent
 * with the tensors; then the model is <em>run</em>. The rules: no JVM crash (a SIGSEGV kills the
 * test JVM, which fails the build), no hang, no stack trace; a refused file gets exactly one line
 * naming it, exit 1, and allocates no more than the file's size on the way (Java heap, measured on
 * the running thread); a file that is accepted gives finite logits.
 */
class HostileModelRunTest {

    @TempDir
    Path tmp;

    private int ran;
    private int refused;
    private int n;
    private final List<String> accepted = new ArrayList<>();
    private long maxRefusalAllocation;

    @org.junit.jupiter.api.AfterEach
    void summary() {
        System.out.println("HostileModelRunTest: " + ran + " files run, " + refused + " refused (at most "
                + (maxRefusalAllocation >> 10) + " KiB of heap beyond the file's size allocated before a refusal); accepted: " + accepted);
    }

    /** Values a count may be given: degenerate, negative, huge, and the ones that wrap int products. */
    private static final long[] COUNTS = {0, 1, 2, 3, 7, -1, Integer.MAX_VALUE, 1L << 31, 0xffffffffL, (1L << 30) + 8,
        (1L << 29) + 4, 1L << 62, 65536, 50_000_000};

    private static final double[] FLOATS = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 0, -1, 1e-45,
        1e-30, 1e30, 0.5, 1e300};

    @Test
    void liesInTheTestModelAreRefusedInOneLineOrRunFinite() throws IOException {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 3);
        List<Case> cases = cases(GgufEdit.of(base), 2);
        runAll(cases, "tiny");
        assertTrue(refused > ran / 2, "most lies should be refused: " + refused + " of " + ran);
    }

    @Test
    void liesInTheSharedStoriesModelAreRefusedInOneLineOrRunFinite() throws IOException {
        Path f = SharedData.require("models").resolve("stories260K.gguf");
        List<Case> cases = cases(GgufEdit.of(f), 5);
        // the issue's own case: one key added that wraps heads x headDim in int arithmetic
        cases.add(new Case("key_length 2^30+8", GgufEdit.of(f).set("llama.attention.key_length", GgufValue.ofU32((1 << 30) + 8))));
        runAll(cases, "stories");
    }

    /**
     * A qwen3 file (per-head q/k norms, heads wider than dim / heads) and a qwen2 one (q, k, v
     * biases) with the tensors and keys of those architectures broken.
     */
    @Test
    void liesInQwenFilesAreRefusedInOneLineOrRunFinite() throws IOException {
        Path q3 = tmp.resolve("qwen3.gguf");
        cria.synth.Synth.write(q3, cria.synth.SynthShape.preset("tiny").with(64, 2, 4, 2, 96, 400, 128).withArch("qwen3").withHeadDim(32),
                cria.quantize.LlamaFileType.F32, true, null, 3, 1, null);
        Path q2 = tmp.resolve("qwen2.gguf");
        cria.synth.Synth.write(q2, cria.synth.SynthShape.preset("tiny").with(64, 2, 4, 2, 96, 400, 128).withArch("qwen2"),
                cria.quantize.LlamaFileType.F32, true, null, 3, 1, null);
        GgufEdit b3 = GgufEdit.of(q3);
        GgufEdit b2 = GgufEdit.of(q2);
        List<Case> cases = new ArrayList<>();
        cases.add(new Case("qwen3 as it is", b3.copy()));
        cases.add(new Case("qwen3 without q norm", b3.copy().dropTensor("blk.1.attn_q_norm.weight")));
        cases.add(new Case("qwen3 k norm of dim / heads", b3.copy().putTensor("blk.0.attn_k_norm.weight", GgmlType.F32, new long[] {16},
                GgufEdit.floats(1f))));
        cases.add(new Case("qwen3 q norm NaN", b3.copy().putTensor("blk.0.attn_q_norm.weight", GgmlType.F32, new long[] {32},
                GgufEdit.floats(Float.NaN))));
        cases.add(new Case("qwen3 q norm infinite", b3.copy().putTensor("blk.0.attn_q_norm.weight", GgmlType.F32, new long[] {32},
                GgufEdit.floats(Float.POSITIVE_INFINITY))));
        cases.add(new Case("qwen3 q norm as Q8_0", b3.copy().putTensor("blk.0.attn_q_norm.weight", GgmlType.Q8_0, new long[] {32}, b -> { })));
        cases.add(new Case("qwen3 key_length removed", b3.copy().remove("qwen3.attention.key_length")));
        cases.add(new Case("qwen3 key_length 48", b3.copy().set("qwen3.attention.key_length", GgufValue.ofU32(48))));
        cases.add(new Case("qwen3 key_length 2^30+8", b3.copy().set("qwen3.attention.key_length", GgufValue.ofU32((1 << 30) + 8))));
        cases.add(new Case("qwen3 called qwen2", b3.copy().set("general.architecture", GgufValue.ofString("qwen2"))));
        cases.add(new Case("qwen2 as it is", b2.copy()));
        cases.add(new Case("qwen2 without k bias", b2.copy().dropTensor("blk.0.attn_k.bias")));
        cases.add(new Case("qwen2 v bias as wide as q", b2.copy().putTensor("blk.1.attn_v.bias", GgmlType.F32, new long[] {64},
                GgufEdit.floats(0f))));
        cases.add(new Case("qwen2 q bias infinite", b2.copy().putTensor("blk.0.attn_q.bias", GgmlType.F32, new long[] {64},
                GgufEdit.floats(Float.NEGATIVE_INFINITY))));
        cases.add(new Case("qwen2 called qwen3", b2.copy().set("general.architecture", GgufValue.ofString("qwen3"))));
        for (Case c : cases) {
            Path f = tmp.resolve("qwen-" + (n++) + ".gguf");
            c.edit.write(f);
            runOne(c.label, f, true);
        }
        assertEquals(cases.size(), ran);
        assertTrue(accepted.contains("qwen3 as it is") && accepted.contains("qwen2 as it is"), "accepted: " + accepted);
        assertTrue(refused >= 10, "refused " + refused + " of " + ran + "; accepted: " + accepted);
    }

    /**
     * A phi3 file (fused attn_qkv and ffn_up, grouped KV heads, rope over half of each head) with
     * its fused matrices, rope keys and long-rope parts broken.
     */
    @Test
    void liesInPhi3FilesAreRefusedInOneLineOrRunFinite() throws IOException {
        Path p3 = tmp.resolve("phi3.gguf");
        cria.synth.Synth.write(p3, cria.synth.SynthShape.preset("tiny").with(64, 2, 4, 2, 96, 400, 128).withArch("phi3").withRopeDims(8),
                cria.quantize.LlamaFileType.F32, true, null, 3, 1, null);
        Path q3 = tmp.resolve("qwen3-for-phi3.gguf");
        cria.synth.Synth.write(q3, cria.synth.SynthShape.preset("tiny").with(64, 2, 4, 2, 96, 400, 128).withArch("qwen3"),
                cria.quantize.LlamaFileType.F32, true, null, 3, 1, null);
        GgufEdit b = GgufEdit.of(p3);
        List<Case> cases = new ArrayList<>();
        cases.add(new Case("phi3 as it is", b.copy()));
        cases.add(new Case("phi3 without attn_qkv", b.copy().dropTensor("blk.1.attn_qkv.weight")));
        cases.add(new Case("phi3 attn_qkv a row short", b.copy().putTensor("blk.0.attn_qkv.weight", GgmlType.F32, new long[] {64, 127},
                GgufEdit.floats(0.01f))));
        cases.add(new Case("phi3 attn_qkv and attn_q", b.copy().putTensor("blk.0.attn_q.weight", GgmlType.F32, new long[] {64, 64},
                GgufEdit.floats(0.01f))));
        cases.add(new Case("phi3 ffn_up not doubled", b.copy().putTensor("blk.1.ffn_up.weight", GgmlType.F32, new long[] {64, 96},
                GgufEdit.floats(0.01f))));
        cases.add(new Case("phi3 ffn_up and ffn_gate", b.copy().putTensor("blk.0.ffn_gate.weight", GgmlType.F32, new long[] {64, 96},
                GgufEdit.floats(0.01f))));
        cases.add(new Case("phi3 rope dims 0", b.copy().set("phi3.rope.dimension_count", GgufValue.ofU32(0))));
        cases.add(new Case("phi3 rope dims odd", b.copy().set("phi3.rope.dimension_count", GgufValue.ofU32(7))));
        cases.add(new Case("phi3 rope dims past the head", b.copy().set("phi3.rope.dimension_count", GgufValue.ofU32(18))));
        cases.add(new Case("phi3 rope dims 2^31-2", b.copy().set("phi3.rope.dimension_count", GgufValue.ofU32(Integer.MAX_VALUE - 1))));
        cases.add(new Case("phi3 kv heads 3", b.copy().set("phi3.attention.head_count_kv", GgufValue.ofU32(3))));
        cases.add(new Case("phi3 long-rope factor key", b.copy().set("phi3.rope.scaling.attn_factor", GgufValue.ofF32(1.19f))));
        cases.add(new Case("phi3 long-rope factor tensors", b.copy().putTensor("rope_factors_long.weight", GgmlType.F32, new long[] {4},
                GgufEdit.floats(1f))));
        cases.add(new Case("phi3 called llama", b.copy().set("general.architecture", GgufValue.ofString("llama"))));
        cases.add(new Case("qwen3 called phi3", GgufEdit.of(q3).set("general.architecture", GgufValue.ofString("phi3"))));
        for (Case c : cases) {
            Path f = tmp.resolve("phi3-" + (n++) + ".gguf");
            c.edit.write(f);
            runOne(c.label, f, true);
        }
        assertEquals(cases.size(), ran);
        assertEquals(List.of("phi3 as it is"), accepted, "accepted");
    }

    /**
     * gemma2 and gemma3 files (windows of 8, gemma3 pattern 2) with their post-norms, q/k norms
     * and Gemma keys broken: each refused in one line (the run asserts it) or run to finite logits.
     */
    @Test
    void liesInGemmaFilesAreRefusedInOneLineOrRunFinite() throws IOException {
        Path p2 = tmp.resolve("gemma2.gguf");
        Path p3 = tmp.resolve("gemma3.gguf");
        cria.synth.SynthShape tiny = cria.synth.SynthShape.preset("tiny").with(64, 2, 4, 2, 96, 400, 128);
        cria.synth.Synth.write(p2, tiny.withArch("gemma2").withHeadDim(32).withWindow(8, null), cria.quantize.LlamaFileType.F32, true, null, 3, 1,
                null);
        cria.synth.Synth.write(p3, tiny.withArch("gemma3").withHeadDim(32).withWindow(8, 2), cria.quantize.LlamaFileType.F32, true, null, 3, 1,
                null);
        GgufEdit b2 = GgufEdit.of(p2);
        GgufEdit b3 = GgufEdit.of(p3);
        List<Case> cases = new ArrayList<>();
        cases.add(new Case("gemma2 as it is", b2.copy()));
        cases.add(new Case("gemma3 as it is", b3.copy()));
        cases.add(new Case("gemma2 without post_attention_norm", b2.copy().dropTensor("blk.1.post_attention_norm.weight")));
        cases.add(new Case("gemma2 post_ffw_norm too short", b2.copy().putTensor("blk.0.post_ffw_norm.weight", GgmlType.F32, new long[] {32},
                GgufEdit.floats(1f))));
        cases.add(new Case("gemma2 post_ffw_norm as Q8_0", b2.copy().putTensor("blk.0.post_ffw_norm.weight", GgmlType.Q8_0, new long[] {64},
                b -> { })));
        cases.add(new Case("gemma3 without k norm", b3.copy().dropTensor("blk.0.attn_k_norm.weight")));
        cases.add(new Case("gemma3 q norm NaN", b3.copy().putTensor("blk.1.attn_q_norm.weight", GgmlType.F32, new long[] {32},
                GgufEdit.floats(Float.NaN))));
        cases.add(new Case("gemma2 window 0", b2.copy().set("gemma2.attention.sliding_window", GgufValue.ofU32(0))));
        cases.add(new Case("gemma2 window as text", b2.copy().set("gemma2.attention.sliding_window", GgufValue.ofString("4096"))));
        cases.add(new Case("gemma3 pattern 0", b3.copy().set("gemma3.attention.sliding_window_pattern", GgufValue.ofU32(0))));
        cases.add(new Case("gemma3 pattern 2^31-1", b3.copy().set("gemma3.attention.sliding_window_pattern", GgufValue.ofU32(Integer.MAX_VALUE))));
        cases.add(new Case("gemma3 pattern per layer", b3.copy().set("gemma3.attention.sliding_window_pattern", GgufValue.ofInts(new int[] {1, 0}))));
        cases.add(new Case("gemma3 windowed rope base 0", b3.copy().set("gemma3.rope.freq_base_swa", GgufValue.ofF32(0f))));
        cases.add(new Case("gemma2 attention soft-cap -1", b2.copy().set("gemma2.attn_logit_softcapping", GgufValue.ofF32(-1f))));
        cases.add(new Case("gemma2 final soft-cap NaN", b2.copy().set("gemma2.final_logit_softcapping", GgufValue.ofF32(Float.NaN))));
        cases.add(new Case("gemma2 final soft-cap 1e30", b2.copy().set("gemma2.final_logit_softcapping", GgufValue.ofF32(1e30f))));
        cases.add(new Case("gemma3 called gemma2", b3.copy().set("general.architecture", GgufValue.ofString("gemma2"))));
        for (Case c : cases) {
            Path f = tmp.resolve("gemma-" + (n++) + ".gguf");
            c.edit.write(f);
            runOne(c.label, f, true);
        }
        assertEquals(cases.size(), ran);
        assertEquals(List.of("gemma2 as it is", "gemma3 as it is"), accepted, "accepted");
    }

    @Test
    void randomHeaderRewritesOfTheTestModelRunSafely() throws IOException {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny-r.gguf"), 4);
        byte[] original = Files.readAllBytes(base);
        long dataOffset;
        try (cria.gguf.GgufFile g = cria.gguf.GgufFile.open(base)) {
            dataOffset = g.dataOffset();
        }
        Random r = new Random(12);
        for (int i = 0; i < 150; i++) {
            byte[] m = original.clone();
            int p = r.nextInt((int) dataOffset - 4);
            switch (i % 3) {
                case 0 -> m[p] = (byte) r.nextInt(256);
                case 1 -> ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putInt(p, r.nextInt());
                default -> ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putInt(p, (1 << 30) + r.nextInt(64));
            }
            Path f = tmp.resolve("raw-" + i + ".gguf");
            Files.write(f, m);
            runOne("raw-" + i, f, i % 10 == 0);
        }
    }

    @Test
    void hostileChatTemplatesAreRefusedInOneLine() throws IOException {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny-t.gguf"), 5);
        String[] templates = {
            "{% set s = 'ab' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s }}",
            "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}ok",
            "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}",
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            "{{ raise_exception('no system messages, please') }}",
            "{% include 'secret.txt' %}",
            "{{ " + "(".repeat(5000) + "1" + ")".repeat(5000) + " }}",
            "{% for m in messages %}{{ m.content }}{% endfor %", // unclosed tag
        };
        Path in = tmp.resolve("chat.jsonl");
        Files.writeString(in, "{\"id\": 1, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2}\n"
                + "{\"id\": 2, \"prompt\": \"abc\", \"max_tokens\": 2, \"temperature\": 0}\n");
        for (int i = 0; i < templates.length; i++) {
            Path f = GgufEdit.of(base).set("tokenizer.chat_template", GgufValue.ofString(templates[i])).write(tmp.resolve("tmpl-" + i + ".gguf"));
            long size = Files.size(f);
            CliRunner.Result r = run("template " + i, size, "generate", "-m", f.toString(), "--chat", "-p", "hi", "-n", "2", "-t", "1");
            assertEquals(1, r.code(), "template " + i + " must be refused: " + r);
            assertTrue(r.err().contains("chat template"), r.err());
            // in a batch, the line that needs the template fails alone; the plain prompt runs
            Path out = tmp.resolve("chat-" + i + ".out");
            CliRunner.Result b = run("template " + i, size, "batch", "-m", f.toString(), "--in", in.toString(), "--out", out.toString(),
                    "-t", "1", "--ctx", "64");
            assertEquals(0, b.code(), b.toString());
            List<String> lines = Files.readAllLines(out);
            assertTrue(lines.get(0).contains("\"finish_reason\":\"error\"") && lines.get(0).contains("chat template"), lines.get(0));
            assertFalse(lines.get(1).contains("\"error\""), lines.get(1));
        }
    }

    private record Case(String label, GgufEdit edit) {}

    private static GgufValue f64(double v) {
        return new GgufValue(GgufValueType.FLOAT64, null, v);
    }

    private static GgufValue count(long v) {
        if (v >= Integer.MIN_VALUE && v < 0) {
            return GgufValue.ofI32((int) v);
        }
        return v <= 0xffffffffL ? GgufValue.ofU32((int) v) : GgufValue.ofU64(v);
    }

    /** Every lie, built from an editable copy of {@code base} with {@code layers} layers. */
    private static List<Case> cases(GgufEdit base, int layers) {
        List<Case> out = new ArrayList<>();
        String[] counts = {"embedding_length", "block_count", "feed_forward_length", "attention.head_count", "attention.head_count_kv",
            "attention.key_length", "attention.value_length", "context_length", "vocab_size", "rope.dimension_count", "attention.sliding_window"};
        for (String k : counts) {
            String key = "llama." + k;
            for (long v : COUNTS) {
                out.add(new Case(k + "=" + v, base.copy().set(key, count(v))));
            }
            GgufValue orig = base.metadata.get(key);
            if (orig != null && orig.asLong() != null) {
                long o = orig.asLong();
                for (long v : new long[] {o * 2, o / 2, o + 1, o - 1}) {
                    out.add(new Case(k + "=" + v, base.copy().set(key, count(v))));
                }
                out.add(new Case(k + " removed", base.copy().remove(key)));
            }
            out.add(new Case(k + " as string", base.copy().set(key, GgufValue.ofString("64"))));
            out.add(new Case(k + " as float", base.copy().set(key, GgufValue.ofF32(64.5f))));
            out.add(new Case(k + " as ragged array", base.copy().set(key, GgufValue.ofInts(new int[] {8, 4}))));
            int[] per = new int[layers];
            java.util.Arrays.fill(per, 1 << 30);
            out.add(new Case(k + " as per-layer huge array", base.copy().set(key, GgufValue.ofInts(per))));
        }
        for (String k : new String[] {"attention.layer_norm_rms_epsilon", "rope.freq_base", "rope.scale_linear"}) {
            for (double v : FLOATS) {
                out.add(new Case(k + "=" + v, base.copy().set("llama." + k, f64(v))));
                out.add(new Case(k + "=f32 " + v, base.copy().set("llama." + k, GgufValue.ofF32((float) v))));
            }
            out.add(new Case(k + " as string", base.copy().set("llama." + k, GgufValue.ofString("1e-5"))));
        }
        for (double v : FLOATS) {
            out.add(new Case("linear rope factor " + v, base.copy().set("llama.rope.scaling.type", GgufValue.ofString("linear"))
                    .set("llama.rope.scaling.factor", f64(v))));
        }
        out.add(new Case("linear rope without factor", base.copy().set("llama.rope.scaling.type", GgufValue.ofString("linear"))));
        out.add(new Case("yarn rope", base.copy().set("llama.rope.scaling.type", GgufValue.ofString("yarn"))));
        out.add(new Case("architecture gpt2", base.copy().set("general.architecture", GgufValue.ofString("gpt2"))));
        out.add(new Case("architecture empty", base.copy().set("general.architecture", GgufValue.ofString(""))));
        out.add(new Case("architecture removed", base.copy().remove("general.architecture")));
        out.add(new Case("architecture as int", base.copy().set("general.architecture", GgufValue.ofU32(1))));
        out.add(new Case("alignment 64", base.copy().set("general.alignment", GgufValue.ofU32(64))));

        // Tensor table: missing, extra, reshaped and retyped tensors (bytes always consistent with the claim).
        long dim = base.tensors.get("token_embd.weight").shape()[0];
        long vocab = base.tensors.get("token_embd.weight").shape()[1];
        for (String t : new String[] {"token_embd.weight", "output_norm.weight", "output.weight", "blk.0.attn_q.weight",
                "blk.0.attn_k.weight", "blk.1.ffn_down.weight", "blk.0.attn_norm.weight"}) {
            out.add(new Case("without " + t, base.copy().dropTensor(t)));
            GgufEdit.TensorData d = base.tensors.get(t);
            if (d == null) {
                continue;
            }
            long[] s = d.shape();
            List<long[]> shapes = new ArrayList<>();
            if (s.length == 2) {
                shapes.add(new long[] {s[1], s[0]});
                shapes.add(new long[] {s[0], s[1] * 2});
                shapes.add(new long[] {s[0], Math.max(1, s[1] / 2)});
                shapes.add(new long[] {s[0]});
                shapes.add(new long[] {s[0], s[1], 2});
            } else {
                shapes.add(new long[] {s[0] * 2});
                shapes.add(new long[] {s[0], 2});
                shapes.add(new long[] {32});
            }
            for (long[] sh : shapes) {
                out.add(new Case(t + " shape " + java.util.Arrays.toString(sh), base.copy().putTensor(t, GgmlType.F32, sh, GgufEdit.floats(0.01f))));
            }
            for (GgmlType ty : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.F16, GgmlType.I32}) {
                if (s[0] % ty.blockSize() == 0) {
                    out.add(new Case(t + " as " + ty, base.copy().putTensor(t, ty, s, b -> { })));
                }
            }
        }
        out.add(new Case("extra layer", base.copy().putTensor("blk." + layers + ".attn_q.weight", GgmlType.F32, new long[] {dim, dim},
                GgufEdit.floats(0.01f))));
        out.add(new Case("far layer", base.copy().putTensor("blk.99999999.ffn_up.weight", GgmlType.F32, new long[] {dim}, GgufEdit.floats(1f))));
        out.add(new Case("unknown tensor", base.copy().putTensor("mystery.weight", GgmlType.F32, new long[] {dim}, GgufEdit.floats(1f))));
        out.add(new Case("q bias", base.copy().putTensor("blk.0.attn_q.bias", GgmlType.F32, new long[] {dim}, GgufEdit.floats(0f))));
        out.add(new Case("q bias NaN", base.copy().putTensor("blk.0.attn_q.bias", GgmlType.F32, new long[] {dim}, GgufEdit.floats(Float.NaN))));
        out.add(new Case("q bias short", base.copy().putTensor("blk.0.attn_q.bias", GgmlType.F32, new long[] {dim - 1}, GgufEdit.floats(0f))));
        out.add(new Case("q bias F16", base.copy().putTensor("blk.0.attn_q.bias", GgmlType.F16, new long[] {dim}, b -> { })));
        out.add(new Case("k bias as matrix", base.copy().putTensor("blk.1.attn_k.bias", GgmlType.F32, new long[] {dim, 2}, GgufEdit.floats(0f))));
        out.add(new Case("output bias", base.copy().putTensor("output.bias", GgmlType.F32, new long[] {vocab}, GgufEdit.floats(0f))));
        out.add(new Case("architecture qwen2 with llama keys", base.copy().set("general.architecture", GgufValue.ofString("qwen2"))));
        out.add(new Case("architecture qwen3 with llama keys", base.copy().set("general.architecture", GgufValue.ofString("qwen3"))));
        long ropeDims = base.metadata.has("llama.rope.dimension_count") ? base.metadata.get("llama.rope.dimension_count").asLong()
                : dim / base.metadata.get("llama.attention.head_count").asLong();
        for (float v : new float[] {Float.NaN, 0f, -1f, Float.POSITIVE_INFINITY, 1f}) {
            out.add(new Case("rope_freqs " + v, base.copy().putTensor("rope_freqs.weight", GgmlType.F32, new long[] {ropeDims / 2},
                    GgufEdit.floats(v))));
        }
        out.add(new Case("rope_freqs short", base.copy().putTensor("rope_freqs.weight", GgmlType.F32, new long[] {2}, GgufEdit.floats(1f))));
        out.add(new Case("output rows short", base.copy().putTensor("output.weight", GgmlType.F32, new long[] {dim, vocab - 1},
                GgufEdit.floats(0.01f))));

        // The vocabulary: token arrays, scores, types, special ids, the tokenizer kind.
        String[] tokens = base.metadata.strings("tokenizer.ggml.tokens").orElseThrow();
        for (int len : new int[] {0, 1, 2, 3, tokens.length - 1}) {
            out.add(new Case("tokens " + len, base.copy().set("tokenizer.ggml.tokens",
                    GgufValue.ofStrings(java.util.Arrays.copyOf(tokens, len)))));
        }
        String[] longer = java.util.Arrays.copyOf(tokens, tokens.length + 5);
        for (int i = tokens.length; i < longer.length; i++) {
            longer[i] = "extra" + i;
        }
        out.add(new Case("tokens longer than the embedding", base.copy().set("tokenizer.ggml.tokens", GgufValue.ofStrings(longer))));
        out.add(new Case("scores short", base.copy().set("tokenizer.ggml.scores", GgufValue.ofFloats(new float[3]))));
        float[] nanScores = new float[tokens.length];
        java.util.Arrays.fill(nanScores, Float.NaN);
        out.add(new Case("scores NaN", base.copy().set("tokenizer.ggml.scores", GgufValue.ofFloats(nanScores))));
        for (int t : new int[] {-1, 0, 6, 99, Integer.MAX_VALUE}) {
            int[] types = new int[tokens.length];
            java.util.Arrays.fill(types, t);
            out.add(new Case("token types " + t, base.copy().set("tokenizer.ggml.token_type", GgufValue.ofInts(types))));
        }
        out.add(new Case("token types short", base.copy().set("tokenizer.ggml.token_type", GgufValue.ofInts(new int[] {1}))));
        out.add(new Case("token types as strings", base.copy().set("tokenizer.ggml.token_type", GgufValue.ofStrings(new String[] {"x"}))));
        for (String k : new String[] {"bos", "eos", "unknown", "padding", "eot"}) {
            for (long v : new long[] {-1, tokens.length, Integer.MAX_VALUE, 0xffffffffL, 1L << 40}) {
                out.add(new Case(k + " id " + v, base.copy().set("tokenizer.ggml." + k + "_token_id", count(v))));
            }
        }
        out.add(new Case("add_bos as int", base.copy().set("tokenizer.ggml.add_bos_token", GgufValue.ofU32(1))));
        out.add(new Case("tokenizer gpt2 without merges", base.copy().set("tokenizer.ggml.model", GgufValue.ofString("gpt2"))));
        out.add(new Case("tokenizer gpt2 bad merges", base.copy().set("tokenizer.ggml.model", GgufValue.ofString("gpt2"))
                .set("tokenizer.ggml.merges", GgufValue.ofStrings(new String[] {"a", "a b c", "", " ", "zz qq", "a b"}))));
        out.add(new Case("tokenizer unknown", base.copy().set("tokenizer.ggml.model", GgufValue.ofString("bert"))));
        out.add(new Case("tokenizer removed", base.copy().remove("tokenizer.ggml.model")));
        return out;
    }

    private void runAll(List<Case> cases, String label) throws IOException {
        for (Case c : cases) {
            Path f = tmp.resolve(label + "-" + (n++) + ".gguf");
            try {
                c.edit.write(f);
            } catch (RuntimeException e) {
                continue; // the writer itself refuses the lie (e.g. a shape that is not whole blocks): nothing to run
            }
            runOne(label + " " + c.label, f, n % 8 == 0);
        }
        assertTrue(ran > 100, "ran " + ran);
    }

    /** Generate (and now and then batch and finetune); a run that succeeds is followed by a logits check. */
    private void runOne(String label, Path f, boolean alsoBatch) throws IOException {
        long size = Files.size(f);
        if (alsoBatch) { // fine-tuning checks the file as inference does, whether or not inference accepts it
            Path data = tmp.resolve("ft.jsonl");
            Files.writeString(data, "{\"text\": \"Once upon a time there was a cat.\"}\n{\"prompt\": \"The dog\", \"completion\": \" ran.\"}\n");
            run(label, size, "finetune", "-m", f.toString(), "--data", data.toString(), "--steps", "1", "--ctx", "16", "--batch", "1",
                    "--rank", "2", "--val-split", "0", "--eval-every", "0", "-t", "1", "-o", tmp.resolve("ft.gguf").toString());
        }
        CliRunner.Result gen = run(label, size, "generate", "-m", f.toString(), "-p", "Once upon a time", "-n", "4", "--temp", "0",
                "--ctx", "64", "-t", "1");
        ran++;
        if (gen.code() != 0) {
            refused++;
            return;
        }
        accepted.add(label);
        CliRunner.Result logits = run(label, size, "logits", "-m", f.toString(), "--ids", "1,2,3", "-o", tmp.resolve("l.f32").toString(),
                "-t", "1");
        if (logits.code() == 0) {
            byte[] b = Files.readAllBytes(tmp.resolve("l.f32"));
            ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i + 4 <= b.length; i += 4) {
                float v = bb.getFloat(i);
                assertTrue(Float.isFinite(v), label + ": accepted, but logit " + (i / 4) + " is " + v);
            }
        }
        if (alsoBatch) {
            Path in = tmp.resolve("in.jsonl");
            Files.writeString(in, "{\"id\": 1, \"prompt\": \"Once upon a time\", \"max_tokens\": 3, \"temperature\": 0}\n"
                    + "{\"id\": 2, \"prompt\": \"x\", \"max_tokens\": 2147483647, \"temperature\": 0.7, \"seed\": 3}\n");
            run(label, size, "batch", "-m", f.toString(), "--in", in.toString(), "--out", tmp.resolve("out.jsonl").toString(), "--force",
                    "--ctx", "64", "-t", "1");
        }
    }

    /** Runs one command with a generous time limit (a hang fails the test) and checks the rules on its output. */
    private CliRunner.Result run(String label, long fileSize, String... args) {
        long[] allocated = new long[1];
        CliRunner.Result res = Assertions.assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            long before = allocatedBytes();
            CliRunner.Result r = CliRunner.run(args);
            allocated[0] = allocatedBytes() - before;
            return r;
        }, label + ": " + String.join(" ", args));
        String verb = args[0];
        assertFalse(res.err().contains("Exception") || res.err().contains("\tat "), label + " (" + verb + "): " + res);
        if (res.code() != 0) {
            assertEquals(1, res.code(), label + " (" + verb + "): " + res);
            List<String> lines = res.err().lines().toList();
            assertEquals(1, lines.size(), label + " (" + verb + "): a refusal is one line: " + res);
            assertTrue(lines.get(0).startsWith("cria: ") || lines.get(0).startsWith("cria " + verb + ": "), label + ": " + lines.get(0));
            // The refusal comes before anything sized by the lie is allocated: at most the file's
            // own size plus what a run of the command line costs anyway.
            maxRefusalAllocation = Math.max(maxRefusalAllocation, allocated[0] - fileSize);
            assertTrue(allocated[0] < fileSize + (48L << 20), label + " (" + verb + "): allocated " + (allocated[0] >> 20)
                    + " MiB before refusing a file of " + (fileSize >> 10) + " KiB");
        }
        return res;
    }

    private static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }
}
