// `cria synth --arch qwen2|qwen3|phi3|gemma2|gemma3` and the verbs on its files: inference runs, full training (and fine-tuning phi3, gemma) refuses in one line, bad arguments are one line; sliding windows.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.gguf.GgufFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ArchitectureCommandsTest {
    @TempDir
    Path tmp;

    private Path synth(String arch, String... more) {
        Path f = tmp.resolve(arch + ".gguf");
        String[] fixed = {"synth", "--arch", arch, "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "96",
            "--vocab-size", "400", "--type", "F32", "-t", "1", "-o", f.toString()};
        String[] args = java.util.Arrays.copyOf(fixed, fixed.length + more.length);
        System.arraycopy(more, 0, args, fixed.length, more.length);
        CliRunner.Result r = CliRunner.run(args);
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("(" + arch + ")"), r.toString());
        return f;
    }

    private static void oneLine(CliRunner.Result r, String needle) {
        assertEquals(1, r.code(), r.toString());
        assertEquals(1, r.err().lines().count(), "one line: " + r);
        assertTrue(r.err().contains(needle), r.toString());
    }

    @Test
    void qwenFilesHaveTheirKeysAndTensorsAndGenerate() throws Exception {
        Path q2 = synth("qwen2");
        Path q3 = synth("qwen3", "--head-dim", "32");
        try (GgufFile f = GgufFile.open(q2)) {
            assertEquals("qwen2", f.metadata().string("general.architecture").orElseThrow());
            assertEquals(64, f.metadata().count("qwen2.embedding_length").orElseThrow());
            assertEquals("gpt2", f.metadata().string("tokenizer.ggml.model").orElseThrow());
            assertEquals("qwen2", f.metadata().string("tokenizer.ggml.pre").orElseThrow());
            assertTrue(f.tensor("blk.1.attn_v.bias") != null);
            assertTrue(f.tensor("blk.0.attn_q_norm.weight") == null);
        }
        try (GgufFile f = GgufFile.open(q3)) {
            assertEquals("qwen3", f.metadata().string("general.architecture").orElseThrow());
            assertEquals(32, f.metadata().count("qwen3.attention.key_length").orElseThrow());
            assertEquals(128, f.tensor("blk.0.attn_q.weight").shape()[1]);   // 4 heads of 32, wider than dim 64
            assertEquals(32, f.tensor("blk.1.attn_k_norm.weight").shape()[0]);
            assertTrue(f.tensor("blk.0.attn_q.bias") == null);
        }
        for (Path f : new Path[] {q2, q3}) {
            for (String backend : new String[] {"cpu", "ref"}) {
                CliRunner.Result r = CliRunner.run("generate", "-m", f.toString(), "-p", "the cat", "-n", "4", "--temp", "0", "-t", "1",
                        "--backend", backend);
                assertEquals(0, r.code(), r.toString());
            }
        }
    }

    /**
     * {@code cria quantize Q4_K_M} of F32 qwen2, qwen3 and phi3 files gives llama-quantize's bytes: the
     * digests are of {@code llama-quantize IN OUT Q4_K_M} outputs of the same synth files (see
     * src/test/resources/cria/engine/arch/README.md).
     */
    @Test
    void quantizeWritesLlamaQuantizesBytes() throws Exception {
        String[][] cases = {{"qwen2", "", "cc25213282f07e9a741cf9acb94c56c68a9b7f037a2bfb526113b7acd78ce6db"},
            {"qwen3", "--head-dim 128", "506f9de5fde114d379edb8ff7a6ffbdb0322d44fa63f5d9e374875018c749827"},
            {"phi3", "--rope-dims 48", "ebda2e83d6c5ef7a8db0fa65e99650ab205b0994e7150adc5bf088c08a11164a"},
            {"gemma2", "--head-dim 64", "f80fe6f9bcd0a24fd2233791b139cb259c12ad567ebf561cf161adc9147decc5"},
            {"gemma3", "--head-dim 128", "0dd162287827a56bbaaca152dc5e11c78385115efc5163e66a8de515f48cd1cb"}};
        for (String[] c : cases) {
            Path in = tmp.resolve(c[0] + "-256-f32.gguf");
            Path out = tmp.resolve(c[0] + "-q4_k_m.gguf");
            java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("synth", "--arch", c[0], "--dim", "256", "--layers", "2",
                    "--heads", "4", "--kv-heads", "2", "--ffn", "512", "--vocab-size", "512", "--type", "F32", "-s", "11", "-t", "1",
                    "-o", in.toString()));
            if (!c[1].isEmpty()) {
                args.addAll(java.util.List.of(c[1].split(" ")));
            }
            CliRunner.Result r = CliRunner.run(args.toArray(new String[0]));
            assertEquals(0, r.code(), r.toString());
            r = CliRunner.run("quantize", in.toString(), out.toString(), "Q4_K_M");
            assertEquals(0, r.code(), r.toString());
            byte[] digest = java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(out));
            assertEquals(c[2], java.util.HexFormat.of().formatHex(digest), c[0] + " Q4_K_M differs from llama-quantize's");
        }
    }

    /**
     * {@code cria synth --arch phi3}: the fused tensors llama.cpp reads, partial rope, and a
     * SentencePiece vocabulary ending in Phi-3's control tokens (llama.cpp refuses a file named
     * phi-3 without {@code <|endoftext|>}); generate runs it on the CPU and the oracle.
     */
    @Test
    void phi3FilesHaveFusedTensorsAndGenerate() throws Exception {
        Path p = synth("phi3", "--rope-dims", "8");
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(8, f.metadata().count("phi3.rope.dimension_count").orElseThrow());
            assertEquals("llama", f.metadata().string("tokenizer.ggml.model").orElseThrow());
            String[] tokens = f.metadata().strings("tokenizer.ggml.tokens").orElseThrow();
            assertEquals("<|endoftext|>", tokens[f.metadata().count("tokenizer.ggml.eos_token_id").orElseThrow()]);
            assertEquals("<|user|>", tokens[tokens.length - 1]);
            assertTrue(f.tensor("blk.1.attn_qkv.weight") != null && f.tensor("blk.1.attn_q.weight") == null);
            assertTrue(f.tensor("blk.1.ffn_gate.weight") == null);
            assertEquals(2 * 96, f.tensor("blk.1.ffn_up.weight").shape()[1]);
        }
        for (String backend : new String[] {"cpu", "ref"}) {
            CliRunner.Result r = CliRunner.run("generate", "-m", p.toString(), "-p", "the cat", "-n", "4", "--temp", "0", "-t", "1",
                    "--backend", backend);
            assertEquals(0, r.code(), r.toString());
        }
        oneLine(CliRunner.run("synth", "--arch", "phi3", "--dim", "64", "--heads", "4", "--head-dim", "32", "-o",
                tmp.resolve("x.gguf").toString()), "must make up dim 64");
    }

    /**
     * {@code cria synth --arch gemma2|gemma3}: the keys llama.cpp reads (defaults left out, as
     * Gemma's converter does), the post-norms (and gemma3's q/k norms), no output matrix, a
     * Gemma-style vocabulary without a space prefix whose template renders Gemma's turns; generate
     * runs past the window on the CPU and the oracle, with the same greedy text, and stops at
     * {@code <end_of_turn>}; perplexity and batch run; training refuses in one line.
     */
    @Test
    void gemmaFilesHaveTheirKeysAndTensorsAndRunPastTheWindow() throws Exception {
        Path g2 = synth("gemma2", "--head-dim", "32", "--sliding-window", "8");
        Path g3 = synth("gemma3", "--head-dim", "32", "--sliding-window", "8", "--swa-pattern", "2", "--rope-base", "1000000");
        try (GgufFile f = GgufFile.open(g2)) {
            var md = f.metadata();
            assertEquals(8, md.count("gemma2.attention.sliding_window").orElseThrow());
            assertTrue(!md.has("gemma2.attention.sliding_window_pattern") && !md.has("gemma2.rope.freq_base_swa"));
            assertEquals(50.0, md.number("gemma2.attn_logit_softcapping").orElseThrow());
            assertEquals(30.0, md.number("gemma2.final_logit_softcapping").orElseThrow());
            assertTrue(f.tensor("blk.1.post_attention_norm.weight") != null && f.tensor("blk.1.post_ffw_norm.weight") != null);
            assertTrue(f.tensor("output.weight") == null && f.tensor("blk.0.attn_q_norm.weight") == null);
            assertEquals(false, md.bool("tokenizer.ggml.add_space_prefix").orElseThrow());
            String[] tokens = md.strings("tokenizer.ggml.tokens").orElseThrow();
            assertEquals("<bos>", tokens[md.count("tokenizer.ggml.bos_token_id").orElseThrow()]);
            assertEquals("<end_of_turn>", tokens[tokens.length - 1]);
        }
        try (GgufFile f = GgufFile.open(g3)) {
            var md = f.metadata();
            assertEquals(2, md.count("gemma3.attention.sliding_window_pattern").orElseThrow());
            assertTrue(!md.has("gemma3.rope.freq_base_swa") && !md.has("gemma3.attn_logit_softcapping") && !md.has("gemma3.final_logit_softcapping"));
            assertEquals(32, f.tensor("blk.0.attn_k_norm.weight").shape()[0]);
            cria.model.LlamaConfig c = cria.model.LlamaConfig.from(md, 400);
            assertTrue(c.windowed(0) && !c.windowed(1));
            assertEquals(10000f, c.ropeBase(0));
            assertEquals(1e6f, c.ropeBase(1));
        }
        Path msgs = tmp.resolve("m.json");
        Files.writeString(msgs, "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"},"
                + " {\"role\": \"assistant\", \"content\": \"Hello.\"}, {\"role\": \"user\", \"content\": \"Bye\"}]");
        CliRunner.Result t = CliRunner.run("template", "-m", g3.toString(), "-f", msgs.toString());
        assertEquals("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
                + "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n", t.out(), t.toString());
        for (Path f : new Path[] {g2, g3}) {
            String text = null;
            for (String backend : new String[] {"cpu", "ref"}) {
                CliRunner.Result r = CliRunner.run("generate", "-m", f.toString(), "-p", "the cat sat on the mat", "-n", "12", "--temp", "0",
                        "-t", "1", "--ctx", "32", "--backend", backend);
                assertEquals(0, r.code(), r.toString());
                assertTrue(text == null || text.equals(r.out()), f + ": cpu and ref differ: " + text + " / " + r.out());
                text = r.out();
            }
            try (GgufFile gf = GgufFile.open(f)) {
                cria.tokenizer.Tokenizer tok = cria.tokenizer.Tokenizer.fromMetadata(gf.metadata());
                String[] pieces = gf.metadata().strings("tokenizer.ggml.tokens").orElseThrow();
                int end = pieces.length - 1;
                assertTrue(tok.isEndOfGeneration(end), "<end_of_turn> ends generation");
                assertEquals(2, tok.encode("the", true, false)[0]);            // BOS added
                assertTrue(!pieces[tok.encode("the", false, false)[0]].startsWith("\u2581"), "no space prefix");
            }
        }
        Path text = tmp.resolve("t.txt");
        Files.writeString(text, "the cat sat on the mat and the dog ran far away. ".repeat(20));
        CliRunner.Result ppl = CliRunner.run("perplexity", "-m", g3.toString(), "-f", text.toString(), "--ctx", "32", "-t", "1");
        assertEquals(0, ppl.code(), ppl.toString());
        Path in = tmp.resolve("in.jsonl");
        Files.writeString(in, "{\"id\": 1, \"prompt\": \"the cat\", \"max_tokens\": 20, \"temperature\": 0}\n");
        CliRunner.Result batch = CliRunner.run("batch", "-m", g2.toString(), "--in", in.toString(), "--out", tmp.resolve("o.jsonl").toString(),
                "--force", "--ctx", "32", "-t", "1");
        assertEquals(0, batch.code(), batch.toString());
        oneLine(CliRunner.run("finetune", "-m", g2.toString(), "--data", in.toString(), "--steps", "1", "--ctx", "16", "--rank", "2",
                "--val-split", "0", "-t", "1", "-o", tmp.resolve("a.gguf").toString()), "this model is 'gemma2'");
        oneLine(CliRunner.run("synth", "--arch", "llama", "--swa-pattern", "2", "-o", tmp.resolve("x.gguf").toString()), "--swa-pattern is for gemma2");
        oneLine(CliRunner.run("synth", "--arch", "gemma3", "--swa-pattern", "0", "-o", tmp.resolve("x.gguf").toString()), "--swa-pattern 0");
    }

    /**
     * A llama file with {@code llama.attention.sliding_window} (Mistral 7B v0.1's key): attention
     * honours the window, so a context up to it runs exactly as without the key, and longer
     * contexts (given or by default, generate and batch) run too; a window of 0 is none.
     */
    @Test
    void slidingWindowFilesRunAtEveryContext() throws Exception {
        Path base = synth("llama", "--ctx", "512");
        cria.GgufEdit e = cria.GgufEdit.of(base);
        Path w32 = tmp.resolve("window-32.gguf");
        e.copy().set("llama.attention.sliding_window", cria.gguf.GgufValue.ofU32(32)).write(w32);
        Path w0 = tmp.resolve("window-0.gguf");
        e.copy().set("llama.attention.sliding_window", cria.gguf.GgufValue.ofU32(0)).write(w0);
        String[] gen = {"generate", "-p", "the cat", "-n", "4", "--temp", "0", "-t", "1"};
        CliRunner.Result within = run(gen, "-m", w32.toString(), "--ctx", "32");
        assertEquals(0, within.code(), within.toString());
        CliRunner.Result plain = run(gen, "-m", base.toString(), "--ctx", "32");
        assertEquals(plain.out(), within.out(), "within the window nothing changes");
        CliRunner.Result longer = run(gen, "-m", w32.toString(), "--ctx", "33");
        assertEquals(0, longer.code(), longer.toString());
        CliRunner.Result byDefault = run(gen, "-m", w32.toString());
        assertEquals(0, byDefault.code(), byDefault.toString());
        assertEquals(0, run(gen, "-m", w0.toString(), "--ctx", "512").code());
        Path in = tmp.resolve("in.jsonl");
        Files.writeString(in, "{\"id\": 1, \"prompt\": \"the cat\", \"max_tokens\": 2, \"temperature\": 0}\n");
        CliRunner.Result batch = CliRunner.run("batch", "-m", w32.toString(), "--in", in.toString(), "--out",
                tmp.resolve("o.jsonl").toString(), "--force", "--ctx", "64", "-t", "1");
        assertEquals(0, batch.code(), batch.toString());
        oneLine(CliRunner.run("synth", "--like", "tiny", "--sliding-window", "0", "-o", tmp.resolve("x.gguf").toString()),
                "--sliding-window 0: use 1 to 16777216 positions");
    }

    private static CliRunner.Result run(String[] fixed, String... more) {
        String[] args = java.util.Arrays.copyOf(fixed, fixed.length + more.length);
        System.arraycopy(more, 0, args, fixed.length, more.length);
        return CliRunner.run(args);
    }

    @Test
    void fineTuningRefusesPhi3AndTrainingRefusesQwenInOneLine() throws Exception {
        Path phi3 = synth("phi3", "--rope-dims", "8");
        Path data = tmp.resolve("d.jsonl");
        Files.writeString(data, "{\"text\": \"the cat sat on the mat\"}\n");
        oneLine(CliRunner.run("finetune", "-m", phi3.toString(), "--data", data.toString(), "--steps", "1", "--ctx", "16", "--rank", "2",
                "--val-split", "0", "-t", "1", "-o", tmp.resolve("a.gguf").toString()),
                "support the llama, mistral, qwen2 and qwen3 architectures; this model is 'phi3'");
        Path text = tmp.resolve("d.txt");
        Files.writeString(text, "the cat sat on the mat. the dog ran.\n");
        oneLine(CliRunner.run("train", "--init", synth("qwen2").toString(), "--data", text.toString(), "--steps", "1", "-t", "1",
                "-o", tmp.resolve("t.gguf").toString()), "train --init continues llama and mistral models only");
    }

    @Test
    void badArchitectureArgumentsAreOneLine() {
        oneLine(CliRunner.run("synth", "--arch", "gemma9", "-o", tmp.resolve("x.gguf").toString()), "unknown architecture 'gemma9'");
        oneLine(CliRunner.run("synth", "--arch", "qwen3", "--head-dim", "0", "-o", tmp.resolve("x.gguf").toString()), "--head-dim 0");
        oneLine(CliRunner.run("synth", "--arch", "qwen3", "--head-dim", "33", "-o", tmp.resolve("x.gguf").toString()), "must be even");
    }
}
