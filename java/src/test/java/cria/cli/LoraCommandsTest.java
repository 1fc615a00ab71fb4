// --lora on every verb that runs a model, `cria merge`, and the one-line errors of adapters that do not fit their base.
package cria.cli;

import static cria.cli.OutputFilesTest.oneLine;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.GgufEdit;
import cria.TestAdapters;
import cria.TestModels;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufValue;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoraCommandsTest {
    @TempDir
    static Path tmp;

    static Path model;
    static Path adapter;
    static Path text;
    static Path prompts;

    @BeforeAll
    static void files() throws IOException {
        model = TestModels.tinyLlama(tmp.resolve("m.gguf"), 43);
        adapter = TestAdapters.write(tmp.resolve("a.gguf"), 8f, TestAdapters.random(model, 4, 9, 0.5, 2.0, TestAdapters.ALL));
        prompts = Files.writeString(tmp.resolve("prompts.jsonl"), "{\"id\": 1, \"prompt\": \"ab\"}\n");
        text = Files.writeString(tmp.resolve("t.txt"), "a b c d e f g h i j k l m n o p q r s t u v w x y z ".repeat(12));
    }

    /** The adapter with an edit applied, written under {@code name}. */
    static Path edited(String name, java.util.function.Consumer<GgufEdit> edit) {
        GgufEdit e = GgufEdit.of(adapter);
        edit.accept(e);
        return e.write(tmp.resolve(name));
    }

    // ---- every verb that loads a model honours --lora ----------------------------------------------

    @Test
    void logitsChangeWithTheAdapterAndScaleZeroIsTheBase() throws IOException {
        Path plain = tmp.resolve("plain.f32");
        Path with = tmp.resolve("with.f32");
        Path off = tmp.resolve("off.f32");
        String m = model.toString();
        assertEquals(0, CliRunner.run("logits", "-m", m, "--ids", "1,5,9,12", "-o", plain.toString(), "--backend", "cpu").code());
        CliRunner.Result r = CliRunner.run("logits", "-m", m, "--ids", "1,5,9,12", "-o", with.toString(), "--backend", "cpu",
                "--lora", adapter.toString());
        assertEquals(0, r.code(), r.toString());
        assertEquals(0, CliRunner.run("logits", "-m", m, "--ids", "1,5,9,12", "-o", off.toString(), "--backend", "cpu",
                "--lora", adapter + ":0").code());
        assertFalse(Arrays.equals(Files.readAllBytes(plain), Files.readAllBytes(with)), "the adapter changes the logits");
        assertTrue(Arrays.equals(Files.readAllBytes(plain), Files.readAllBytes(off)), "scale 0 gives the base's logits");
    }

    @Test
    void perplexityGenerateBatchAndBenchApplyIt() throws IOException {
        String m = model.toString();
        String lora = adapter + ":1.5";
        CliRunner.Result p0 = CliRunner.run("perplexity", "-m", m, "-f", text.toString(), "-c", "32", "--backend", "cpu");
        CliRunner.Result p1 = CliRunner.run("perplexity", "-m", m, "-f", text.toString(), "-c", "32", "--backend", "cpu", "--lora", lora);
        assertEquals(0, p1.code(), p1.toString());
        assertNotEquals(finalEstimate(p0), finalEstimate(p1), "perplexity with the adapter");

        String[] gen = {"generate", "-m", m, "-p", "ab", "-n", "16", "--temp", "0", "--ignore-eos", "--backend", "cpu"};
        CliRunner.Result g0 = CliRunner.run(gen);
        String[] genLora = Arrays.copyOf(gen, gen.length + 2);
        genLora[gen.length] = "--lora";
        genLora[gen.length + 1] = lora;
        CliRunner.Result g1 = CliRunner.run(genLora);
        assertEquals(0, g1.code(), g1.toString());
        assertNotEquals(g0.out(), g1.out(), "generated text with the adapter");

        Path in = Files.writeString(tmp.resolve("in.jsonl"), "{\"id\": 1, \"prompt\": \"ab\", \"max_tokens\": 16, \"temperature\": 0}\n");
        Path o0 = tmp.resolve("b0.jsonl");
        Path o1 = tmp.resolve("b1.jsonl");
        assertEquals(0, CliRunner.run("batch", "-m", m, "--in", in.toString(), "--out", o0.toString(), "--backend", "cpu").code());
        CliRunner.Result b1 = CliRunner.run("batch", "-m", m, "--in", in.toString(), "--out", o1.toString(), "--backend", "cpu",
                "--lora", lora);
        assertEquals(0, b1.code(), b1.toString());
        assertNotEquals(text(o0), text(o1), "batch results with the adapter");

        CliRunner.Result bench = CliRunner.run("bench", "-m", m, "-p", "8", "-n", "4", "-r", "1", "--warmup", "0", "--backend", "cpu", "--lora", lora);
        assertEquals(0, bench.code(), bench.toString());
        assertTrue(bench.out().contains("LoRA adapters applied (unmerged): " + adapter + " (scale 1.5)"), bench.toString());
        CliRunner.Result json = CliRunner.run("bench", "-m", m, "-p", "8", "-n", "0", "-r", "1", "--warmup", "0", "--backend", "cpu", "--lora", lora, "-o", "json");
        assertTrue(json.out().contains("\"lora\""), json.toString());
    }

    private static String finalEstimate(CliRunner.Result r) {
        assertEquals(0, r.code(), r.toString());
        return r.out().lines().filter(l -> l.startsWith("Final estimate")).findFirst().orElseThrow();
    }

    private static String text(Path p) throws IOException {
        return Files.readString(p).replaceAll("\"(elapsed|time|seconds|ms)[^,}]*", "");
    }

    @Test
    void helpShowsTheOption() {
        for (String verb : new String[] {"generate", "logits", "perplexity", "batch", "bench"}) {
            CliRunner.Result r = CliRunner.run(verb, "--help");
            assertTrue(r.out().contains("--lora=FILE[:SCALE]"), verb + ": " + r);
        }
        CliRunner.Result merge = CliRunner.run("merge", "--help");
        assertTrue(merge.out().contains("cria merge -m base.gguf --lora"), merge.toString());
    }

    // ---- merge --------------------------------------------------------------------------------------

    @Test
    void mergeQuantizes() {
        Path out = tmp.resolve("merged-q8.gguf");
        CliRunner.Result r = CliRunner.run("merge", "-m", model.toString(), "--lora", adapter.toString(), "-o", out.toString(), "--type", "Q8_0");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("then Q8_0"), r.toString());
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(GgmlType.Q8_0, f.tensor("blk.0.attn_q.weight").type());
            assertEquals(GgmlType.F32, f.tensor("blk.0.attn_norm.weight").type());
        }
        Path f32 = tmp.resolve("merged.gguf");
        assertEquals(0, CliRunner.run("merge", "-m", model.toString(), "--lora", adapter.toString(), "-o", f32.toString()).code());
        try (GgufFile f = GgufFile.open(f32)) {
            assertEquals(GgmlType.F32, f.tensor("blk.0.attn_q.weight").type());
        }
        // the Q8_0 merge is the F32 merge quantized
        Path q = tmp.resolve("q8-of-merged.gguf");
        assertEquals(0, CliRunner.run("quantize", f32.toString(), q.toString(), "Q8_0").code());
        try (GgufFile a = GgufFile.open(out); GgufFile b = GgufFile.open(q)) {
            for (var t : a.tensors()) {
                assertTrue(a.data(t).mismatch(b.data(b.tensor(t.name()))) < 0, t.name() + " differs from cria quantize's");
            }
        }
    }

    @Test
    void mergeRefusesToOverwriteItsInputAndLeavesNoFileOnError() {
        oneLine(CliRunner.run("merge", "-m", model.toString(), "--lora", adapter.toString(), "-o", model.toString()), "also an input");
        Path out = tmp.resolve("never.gguf");
        oneLine(CliRunner.run("merge", "-m", model.toString(), "--lora", model.toString(), "-o", out.toString()), "not a LoRA adapter");
        assertFalse(Files.exists(out));
        oneLine(CliRunner.run("merge", "-m", model.toString(), "--lora", adapter.toString(), "-o", out.toString(), "--type", "Q9_X"));
        assertFalse(Files.exists(out));
    }

    // ---- adapters that do not fit: one line, exit 1, for every verb ---------------------------------

    @Test
    void notAnAdapter() {
        for (String verb : new String[] {"logits", "merge"}) {
            oneLine(run(verb, model), "m.gguf", "not a LoRA adapter", "general.type is absent");
        }
        oneLine(run("perplexity", edited("lora-type.gguf", e -> e.set("adapter.type", GgufValue.ofString("control_vector")))),
                "adapter.type is \"control_vector\"");
    }

    @Test
    void architectureMismatch() {
        Path bad = edited("arch.gguf", e -> e.set("general.architecture", GgufValue.ofString("qwen2")));
        for (String verb : new String[] {"logits", "generate", "perplexity", "batch", "bench", "merge"}) {
            oneLine(run(verb, bad), "arch.gguf", "architecture \"qwen2\"", "is \"llama\"");
        }
    }

    @Test
    void shapeMismatch() {
        Path wide = edited("shape.gguf", e -> e.putTensor("blk.0.attn_q.weight.lora_a", GgmlType.F32, new long[] {16, 4}, GgufEdit.floats(0.1f)));
        oneLine(run("logits", wide), "shape.gguf", "blk.0.attn_q.weight.lora_a has shape [16, 4]", "[32, 32]");
        oneLine(run("merge", wide), "shape.gguf", "blk.0.attn_q.weight.lora_a");
        Path out = edited("shape-b.gguf", e -> e.putTensor("blk.1.ffn_down.weight.lora_b", GgmlType.F32, new long[] {4, 20}, GgufEdit.floats(0.1f)));
        oneLine(run("logits", out), "blk.1.ffn_down.weight.lora_b has shape [4, 20]", "ne[1] must agree: 32");
        Path rank = edited("rank.gguf", e -> e.putTensor("blk.0.attn_k.weight.lora_b", GgmlType.F32, new long[] {3, 16}, GgufEdit.floats(0.1f)));
        oneLine(run("logits", rank), "disagree on the rank");
    }

    @Test
    void missingHalfOfAPair() {
        Path bad = edited("half.gguf", e -> e.dropTensor("blk.1.attn_v.weight.lora_b"));
        oneLine(run("logits", bad), "half.gguf", "blk.1.attn_v.weight.lora_a has no matching blk.1.attn_v.weight.lora_b");
        oneLine(run("merge", bad), "has no matching blk.1.attn_v.weight.lora_b");
    }

    @Test
    void otherRefusals() {
        oneLine(run("logits", edited("other-model.gguf", e -> e.putTensor("blk.7.attn_q.weight.lora_a", GgmlType.F32, new long[] {32, 4},
                GgufEdit.floats(0.1f)).putTensor("blk.7.attn_q.weight.lora_b", GgmlType.F32, new long[] {4, 32}, GgufEdit.floats(0.1f)))),
                "adapts blk.7.attn_q.weight, which the base model", "does not have");
        oneLine(run("logits", edited("embd.gguf", e -> e.putTensor("token_embd.weight.lora_a", GgmlType.F32, new long[] {4, 64},
                GgufEdit.floats(0.1f)).putTensor("token_embd.weight.lora_b", GgmlType.F32, new long[] {4, 32}, GgufEdit.floats(0.1f)))),
                "token_embd.weight", "attn_q/k/v/output (or a fused attn_qkv), ffn_gate/up/down and output.weight only");
        oneLine(run("logits", edited("suffix.gguf", e -> e.putTensor("blk.0.attn_q.weight.lora_c", GgmlType.F32, new long[] {4},
                GgufEdit.floats(0.1f)))), "blk.0.attn_q.weight.lora_c is neither a .lora_a nor a .lora_b tensor");
        oneLine(run("logits", edited("nan-alpha.gguf", e -> e.set("adapter.lora.alpha", GgufValue.ofF32(Float.NaN)))),
                "adapter.lora.alpha = NaN is not a finite number");
        oneLine(run("logits", edited("nan.gguf", e -> e.putTensor("blk.1.ffn_up.weight.lora_a", GgmlType.F32, new long[] {32, 4},
                GgufEdit.floats(0.1f, Float.NaN)))), "nan.gguf", "blk.1.ffn_up.weight.lora_a holds a non-finite value");
        oneLine(run("logits", edited("q8.gguf", e -> e.putTensor("blk.1.ffn_up.weight.lora_a", GgmlType.Q8_0, new long[] {32, 4}, b -> { }))),
                "type Q8_0; LoRA tensors must be F32, F16 or BF16");
        oneLine(run("logits", tmp.resolve("missing.gguf")), "missing.gguf", "no such file");
        oneLine(CliRunner.run("logits", "-m", model.toString(), "--ids", "1", "-o", tmp.resolve("x.f32").toString(), "--lora", adapter + ":abc"),
                "the scale 'abc' is not a number");
        oneLine(CliRunner.run("logits", "-m", model.toString(), "--ids", "1", "-o", tmp.resolve("x.f32").toString(), "--lora", adapter + ":1e99"),
                "finite");
        // the norms llama.cpp skips are skipped with a warning
        Path norm = edited("norm.gguf", e -> e.putTensor("blk.0.attn_norm.weight", GgmlType.F32, new long[] {32}, GgufEdit.floats(1f)));
        CliRunner.Result r = run("logits", norm);
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("1 adapted norm tensor ignored"), r.toString());
    }

    /** A verb run with {@code lora} on the tiny model (cpu backend where the verb has one). */
    static CliRunner.Result run(String verb, Path lora) {
        String m = model.toString();
        String l = lora.toString();
        return switch (verb) {
            case "logits" -> CliRunner.run("logits", "-m", m, "--ids", "1,2", "-o", tmp.resolve("l.f32").toString(), "--backend", "cpu", "--lora", l);
            case "generate" -> CliRunner.run("generate", "-m", m, "-p", "ab", "-n", "2", "--backend", "cpu", "--lora", l);
            case "perplexity" -> CliRunner.run("perplexity", "-m", m, "-f", text.toString(), "-c", "32", "--backend", "cpu", "--lora", l);
            case "batch" -> CliRunner.run("batch", "-m", m, "--in", prompts.toString(), "--out",
                    tmp.resolve("never.jsonl").toString(), "--backend", "cpu", "--lora", l);
            case "bench" -> CliRunner.run("bench", "-m", m, "-p", "4", "-n", "0", "-r", "1", "--warmup", "0", "--backend", "cpu", "--lora", l);
            case "merge" -> CliRunner.run("merge", "-m", m, "--lora", l, "-o", tmp.resolve("never.gguf").toString());
            default -> throw new IllegalArgumentException(verb);
        };
    }
}
