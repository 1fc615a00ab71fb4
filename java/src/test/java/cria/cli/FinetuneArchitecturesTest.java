// `cria finetune` on small qwen2 and qwen3 files (cria synth --arch): the loss falls, the adapter names the base's architecture, loads with --lora and changes the model.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import cria.CliRunner;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Random-weight qwen2 (q, k, v biases) and qwen3 (per-head q/k norms, heads of 32 values over dim
 * 64) bases, fine-tuned for a few steps on a few sentences repeated: the training loss falls, the
 * adapter is llama.cpp's format under the base's architecture with A and B on every product, the
 * trained adapter lowers the perplexity of those sentences, and the initial one (B = 0) changes nothing.
 */
class FinetuneArchitecturesTest {
    @TempDir
    Path tmp;

    private static final String[] SENTENCES = {
        "the cat sat on the mat and looked at the dog.",
        "a little bird sang a song in the tall green tree.",
        "tom and lily went to the park to play with a red ball.",
        "the sun was warm and the sky was blue all day long.",
    };

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qwen2", "qwen3"})
    void fineTunesAndTheAdapterLoads(String arch) throws Exception {
        Path base = tmp.resolve(arch + ".gguf");
        List<String> synth = new ArrayList<>(List.of("synth", "--arch", arch, "--dim", "64", "--layers", "2", "--heads", "4",
                "--kv-heads", "2", "--ffn", "96", "--vocab-size", "512", "--ctx", "128", "--type", "F32", "-s", "3", "-o", base.toString()));
        if (arch.equals("qwen3")) {
            synth.addAll(List.of("--head-dim", "32"));
        }
        CliRunner.Result r = CliRunner.run(synth.toArray(String[]::new));
        assertEquals(0, r.code(), r.toString());
        ObjectMapper json = new ObjectMapper();
        List<String> lines = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < 6; i++) {
            for (String s : SENTENCES) {
                lines.add(json.createObjectNode().put("text", s).toString());
                text.append(s).append(' ');
            }
        }
        Path data = tmp.resolve("d.jsonl");
        Files.write(data, lines, StandardCharsets.UTF_8);
        Path txt = tmp.resolve("d.txt");
        Files.writeString(txt, text.toString(), StandardCharsets.UTF_8);

        Path adapter = tmp.resolve(arch + "-lora.gguf");
        Path log = tmp.resolve(arch + ".jsonl");
        String[] common = {"finetune", "-m", base.toString(), "--data", data.toString(), "--rank", "4", "--ctx", "32", "--batch", "4",
            "--lr", "1e-2", "--val-split", "0", "--eval-every", "0", "--threads", "2"};
        r = CliRunner.run(concat(common, "--steps", "10", "--log", log.toString(), "-o", adapter.toString()));
        assertEquals(0, r.code(), r.toString());
        List<Double> losses = new ArrayList<>();
        for (String l : Files.readAllLines(log)) {
            JsonNode n = json.readTree(l);
            if (n.has("loss")) {
                losses.add(n.get("loss").asDouble());
            }
        }
        assertEquals(10, losses.size(), "a loss per step: " + losses);
        assertTrue(losses.get(9) < losses.get(0) - 0.2, arch + ": the training loss falls: " + losses);

        try (GgufFile f = GgufFile.open(adapter); GgufFile b = GgufFile.open(base)) {
            assertEquals("adapter", f.metadata().string("general.type").orElseThrow());
            assertEquals(arch, f.metadata().string("general.architecture").orElseThrow(), "the base's architecture");
            assertEquals(2 * 7 * 2, f.tensors().size(), "A and B on 7 products of 2 layers");
            for (String name : new String[] {"blk.0.attn_q.weight", "blk.1.attn_k.weight", "blk.1.attn_output.weight"}) {
                GgufTensorInfo w = b.tensor(name);
                assertEquals(w.shape()[0], f.tensor(name + ".lora_a").shape()[0], name + ": lora_a ne[0] = the product's inputs");
                assertEquals(w.shape()[1], f.tensor(name + ".lora_b").shape()[1], name + ": lora_b ne[1] = the product's outputs");
            }
        }
        double plain = FinetuneCommandTest.ppl("perplexity", "-m", base.toString(), "-f", txt.toString(), "-c", "32", "-t", "2");
        double tuned = FinetuneCommandTest.ppl("perplexity", "-m", base.toString(), "--lora", adapter.toString(), "-f", txt.toString(), "-c", "32", "-t", "2");
        assertTrue(tuned < plain * 0.9, arch + ": the adapter lowers the perplexity of what it was trained on: " + plain + " -> " + tuned);

        Path initial = tmp.resolve(arch + "-init.gguf");
        r = CliRunner.run(concat(common, "--steps", "0", "-o", initial.toString()));
        assertEquals(0, r.code(), r.toString());
        double same = FinetuneCommandTest.ppl("perplexity", "-m", base.toString(), "--lora", initial.toString(), "-f", txt.toString(), "-c", "32", "-t", "2");
        assertEquals(plain, same, 0.0, "B = 0: the initial adapter leaves the model as it was");
        assertNotEquals(same, tuned);
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
