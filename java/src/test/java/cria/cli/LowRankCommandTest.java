// `cria lowrank`: what it writes, and one-line refusals of bad options and of factor tensors whose shapes lie.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.GgufEdit;
import cria.TestModels;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.model.LowRankTensors;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LowRankCommandTest {
    @TempDir
    Path tmp;

    /** A refusal: exit 1 and exactly one line on stderr containing {@code what}. */
    static void refused(String what, String... args) {
        CliRunner.Result r = CliRunner.run(args);
        assertEquals(1, r.code(), r.toString());
        assertEquals(1, r.err().strip().lines().count(), "one line: " + r);
        assertTrue(r.err().contains(what), "'" + what + "' in: " + r);
        assertTrue(r.out().isEmpty(), r.toString());
    }

    @Test
    void writesFactorsAtTheRankOfTheBudget() throws Exception {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 1);
        Path out = tmp.resolve("lr.gguf");
        CliRunner.Result r = CliRunner.run("lowrank", "-m", base.toString(), "--method", "svd", "--keep", "0.6", "--rank-step", "4",
                "--targets", "attn_q,ffn_down", "-o", out.toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("4 matrices factorized"), r.out());
        assertTrue(r.err().contains("attn_q 8, ffn_down 12"), r.err()); // 32x32: 0.6*1024/64 = 9.6 -> 8; 64x32: 0.6*2048/96 = 12.8 -> 12
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals("[32, 8]", f.tensor("blk.1.attn_q_lr_a.weight").shapeText());
            assertEquals("[8, 32]", f.tensor("blk.1.attn_q_lr_b.weight").shapeText());
            assertEquals("[64, 12]", f.tensor("blk.0.ffn_down_lr_a.weight").shapeText());
            assertEquals("[12, 32]", f.tensor("blk.0.ffn_down_lr_b.weight").shapeText());
            assertEquals(GgmlType.F32, f.tensor("blk.0.attn_k.weight").type(), "not chosen: copied");
            assertEquals(0.6f, f.metadata().number(LowRankTensors.KEY_KEEP).orElseThrow().floatValue());
            assertEquals("attn_q,ffn_down", f.metadata().string(LowRankTensors.KEY_TARGETS).orElseThrow());
        }
        r = CliRunner.run("info", out.toString());
        assertTrue(r.out().contains("low-rank:      4 block matrices stored as factors (svd, keep 0.60)"), r.out());
        // --dense while factorizing writes what multiplying the written factors back writes
        Path direct = tmp.resolve("direct.gguf");
        Path back = tmp.resolve("back.gguf");
        assertEquals(0, CliRunner.run("lowrank", "-m", base.toString(), "--method", "svd", "--keep", "0.6", "--rank-step", "4",
                "--targets", "attn_q,ffn_down", "--dense", "-o", direct.toString()).code());
        assertEquals(0, CliRunner.run("lowrank", "-m", out.toString(), "--dense", "-o", back.toString()).code());
        try (GgufFile d = GgufFile.open(direct); GgufFile b = GgufFile.open(back)) {
            assertEquals(d.tensors().size(), b.tensors().size());
            for (var t : d.tensors()) {
                assertEquals(-1L, d.data(t).mismatch(b.data(b.tensor(t.name()))), t.name());
            }
            assertEquals(null, d.tensor("blk.0.attn_q_lr_a.weight"));
        }
        // a budget that cannot save anything is refused; a role that cannot be smaller stays dense, said once
        refused("no chosen matrix has a rank", "lowrank", "-m", base.toString(), "--method", "svd", "--keep", "0.3", "-o",
                tmp.resolve("x.gguf").toString());
        r = CliRunner.run("lowrank", "-m", base.toString(), "--method", "svd", "--keep", "0.6", "--rank-step", "8", "-o",
                tmp.resolve("y.gguf").toString());
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.err().contains("attn_k [32, 16] stays dense"), r.err());
        assertEquals(1, r.err().lines().filter(l -> l.contains("attn_k [32, 16] stays dense")).count());
    }

    /** synth --lowrank: a factorized model at the ranks lowrank would give, without factorizing anything; it runs. */
    @Test
    void synthWritesRandomFactors() {
        Path syn = tmp.resolve("syn.gguf");
        CliRunner.Result r = CliRunner.run("synth", "--like", "tiny", "--lowrank", "0.6", "--rank-step", "8", "--type", "Q8_0", "-o",
                syn.toString(), "-t", "2");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("low-rank factors at --keep 0.6"), r.out());
        try (GgufFile f = GgufFile.open(syn)) {
            long in = f.tensor("blk.0.ffn_up_lr_a.weight").shape()[0];
            long k = f.tensor("blk.0.ffn_up_lr_a.weight").shape()[1];
            long out = f.tensor("blk.0.ffn_up_lr_b.weight").shape()[1];
            assertEquals(LowRankTensors.rank(out, in, 0.6, 8), k);
            assertEquals(k, f.tensor("blk.0.ffn_up_lr_b.weight").shape()[0]);
            assertEquals(GgmlType.Q8_0, f.tensor("blk.0.ffn_up_lr_a.weight").type());
            assertEquals(null, f.tensor("blk.0.ffn_up.weight"));
        }
        r = CliRunner.run("generate", "-m", syn.toString(), "-p", "hello", "-n", "4", "--backend", "cpu", "-t", "2");
        assertEquals(0, r.code(), r.toString());
        refused("--lowrank 1.0", "synth", "--like", "tiny", "--lowrank", "1", "-o", tmp.resolve("x.gguf").toString());
    }

    @Test
    void badOptionsAreRefusedInOneLine() throws Exception {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 2);
        String m = base.toString();
        String o = tmp.resolve("o.gguf").toString();
        refused("--method", "lowrank", "-m", m, "--keep", "0.5", "-o", o);
        refused("--keep 1.5", "lowrank", "-m", m, "--method", "svd", "--keep", "1.5", "-o", o);
        refused("--keep 0.0", "lowrank", "-m", m, "--method", "svd", "--keep", "0", "-o", o);
        refused("use svd or svd-llm", "lowrank", "-m", m, "--method", "pca", "--keep", "0.5", "-o", o);
        refused("needs calibration text", "lowrank", "-m", m, "--method", "svd-llm", "--keep", "0.5", "-o", o);
        refused("--calib is for --method svd-llm", "lowrank", "-m", m, "--method", "svd", "--keep", "0.5", "--calib", m, "-o", o);
        refused("unknown matrix 'attn_qkv'", "lowrank", "-m", m, "--method", "svd", "--keep", "0.5", "--targets", "attn_qkv", "-o", o);
        refused("--rank-step 0", "lowrank", "-m", m, "--method", "svd", "--keep", "0.5", "--rank-step", "0", "-o", o);
        refused("also the input", "lowrank", "-m", m, "--method", "svd", "--keep", "0.5", "-o", m);
        refused("no such file", "lowrank", "-m", m, "--method", "svd-llm", "--keep", "0.5", "--rank-step", "4", "--calib",
                tmp.resolve("none.txt").toString(), "-c", "8", "-o", o);
        Path tiny = Files.writeString(tmp.resolve("short.txt"), "a b c");
        refused("fewer than one chunk", "lowrank", "-m", m, "--method", "svd-llm", "--keep", "0.5", "--rank-step", "4", "--calib",
                tiny.toString(), "-c", "64", "-o", o);
        // a factorized input: only --dense alone
        Path lr = tmp.resolve("lr.gguf");
        assertEquals(0, CliRunner.run("lowrank", "-m", m, "--method", "svd", "--keep", "0.5", "--rank-step", "4", "-o", lr.toString()).code());
        refused("already factorized", "lowrank", "-m", lr.toString(), "--method", "svd", "--keep", "0.5", "-o", o);
        refused("already factorized", "lowrank", "-m", lr.toString(), "-o", o);
        // training needs dense weights
        Path data = Files.writeString(tmp.resolve("d.jsonl"), "{\"text\": \"a b c d e f\"}\n".repeat(8));
        refused("--dense", "finetune", "-m", lr.toString(), "--data", data.toString(), "-o", o);
        refused("--dense", "train", "--init", lr.toString(), "--data", data.toString(), "-o", o);
    }

    @Test
    void factorTensorsWhoseShapesLieAreRefusedInOneLine() {
        Path base = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 3);
        Path lr = tmp.resolve("lr.gguf");
        assertEquals(0, CliRunner.run("lowrank", "-m", base.toString(), "--method", "svd", "--keep", "0.5", "--rank-step", "4", "-o",
                lr.toString()).code());
        GgufEdit good = GgufEdit.of(lr);
        GgufEdit dense = GgufEdit.of(base);
        String a = "blk.1.attn_q_lr_a.weight";
        String b = "blk.1.attn_q_lr_b.weight";
        // A without B (inference refuses it as lowrank does: the same check)
        check(good.copy().dropTensor(b), "has no partner " + b);
        refused("has no partner " + b, "generate", "-m", tmp.resolve("bad-" + Integer.toHexString(("has no partner " + b).hashCode()) + ".gguf")
                .toString(), "-p", "a", "-n", "2");
        // both forms of one matrix
        GgufEdit both = good.copy();
        both.tensors.put("blk.1.attn_q.weight", dense.tensors.get("blk.1.attn_q.weight"));
        check(both, "both dense and factorized");
        // a rank above the matrix's sides (and the B that goes with it, so only the rank is wrong)
        check(good.copy().putTensor(a, GgmlType.F32, new long[] {32, 40}, GgufEdit.floats(0.1f))
                .putTensor(b, GgmlType.F32, new long[] {40, 32}, GgufEdit.floats(0.1f)), "rank 40 outside 1..32");
        // A and B disagree on the rank
        check(good.copy().putTensor(b, GgmlType.F32, new long[] {4, 32}, GgufEdit.floats(0.1f)), "has shape [4, 32]");
        // A's inputs are not the matrix's
        check(good.copy().putTensor(a, GgmlType.F32, new long[] {16, 4}, GgufEdit.floats(0.1f)), "has shape [16, 4]");
        // B's outputs are not the matrix's
        check(good.copy().putTensor(b, GgmlType.F32, new long[] {4, 16}, GgufEdit.floats(0.1f)), "has shape [4, 16]");
        // a factor as a vector
        check(good.copy().putTensor(a, GgmlType.F32, new long[] {32}, GgufEdit.floats(0.1f)), "has shape [32]");
    }

    private void check(GgufEdit e, String what) {
        Path f = e.write(tmp.resolve("bad-" + Integer.toHexString(what.hashCode()) + ".gguf"));
        refused(what, "lowrank", "-m", f.toString(), "--dense", "-o", tmp.resolve("d.gguf").toString());
    }
}
