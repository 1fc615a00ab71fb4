// Output paths of every verb that writes a file: special files survive, and each bad path is one line, exit code 1.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.CriaException;
import cria.TestModels;
import cria.gguf.GgmlType;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OutputFilesTest {
    @TempDir
    static Path shared;

    @TempDir
    Path tmp;

    static Path model;

    @BeforeAll
    static void model() {
        model = TestModels.tinyLlama(shared.resolve("m.gguf"), 41);
    }

    /** Exit code 1 and exactly one line on stderr, "cria...", containing every part; no stack trace. */
    static void oneLine(CliRunner.Result r, String... parts) {
        assertEquals(1, r.code(), r.toString());
        String err = r.err().strip();
        assertEquals(1, err.lines().count(), r.toString());
        assertTrue(err.startsWith("cria"), r.toString());
        assertFalse(err.contains("Exception"), r.toString());
        for (String p : parts) {
            assertTrue(err.contains(p), "'" + p + "' in " + r);
        }
    }

    static Path fifo(Path p) throws Exception {
        Process pr;
        try {
            pr = new ProcessBuilder("mkfifo", p.toString()).redirectErrorStream(true).start();
        } catch (IOException e) {
            Assumptions.abort("no mkfifo here: " + e.getMessage());
            return null;
        }
        Assumptions.assumeTrue(pr.waitFor() == 0, "mkfifo failed");
        return p;
    }

    static boolean isFifo(Path p) throws IOException {
        return ((Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS) & 0170000) == 0010000;
    }

    static boolean isCharDevice(Path p) throws IOException {
        return ((Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS) & 0170000) == 0020000;
    }

    Path prompts() throws IOException {
        Path in = tmp.resolve("in.jsonl");
        Files.writeString(in, "{\"id\": 1, \"prompt\": \"ab\", \"max_tokens\": 2, \"temperature\": 0}\n");
        return in;
    }

    CliRunner.Result batch(Path out, String... extra) throws IOException {
        String[] base = {"batch", "-m", model.toString(), "--in", prompts().toString(), "--out", out.toString(), "--backend", "cpu"};
        String[] all = java.util.Arrays.copyOf(base, base.length + extra.length);
        System.arraycopy(extra, 0, all, base.length, extra.length);
        return CliRunner.run(all);
    }

    // ---- 1. nothing but a regular file is deleted, truncated or replaced ----------------------------

    @Test
    void batchRefusesAPipeWithAndWithoutForceAndResume() throws Exception {
        Path p = fifo(tmp.resolve("pipe"));
        for (String[] extra : new String[][] {{}, {"--force"}, {"--resume"}}) {
            oneLine(batch(p, extra), p + " is not a regular file; --out needs a file path");
            assertTrue(isFifo(p), "the pipe is still a pipe after " + String.join(" ", extra));
        }
    }

    @Test
    void batchRefusesADevice() throws Exception {
        Path dev = Path.of("/dev/null");
        Assumptions.assumeTrue(Files.exists(dev) && isCharDevice(dev), "no /dev/null here");
        oneLine(batch(dev, "--force"), "/dev/null is not a regular file; --out needs a file path");
        assertTrue(isCharDevice(dev));
    }

    @Test
    void batchWritesThroughALinkAndKeepsIt() throws Exception {
        Path target = tmp.resolve("target.jsonl");
        Files.writeString(target, "old\n");
        Path link = Files.createSymbolicLink(tmp.resolve("link.jsonl"), target);
        CliRunner.Result r = batch(link, "--force");
        assertEquals(0, r.code(), r.toString());
        assertTrue(Files.isSymbolicLink(link), "the link is not replaced");
        assertTrue(Files.readString(target).contains("\"finish_reason\""), "the results went to the link's target");
        assertFalse(Files.readString(target).contains("old"));
    }

    @Test
    void linksToPipesAndToNothingAreRefused() throws Exception {
        Path p = fifo(tmp.resolve("pipe"));
        Path toPipe = Files.createSymbolicLink(tmp.resolve("to-pipe"), p);
        oneLine(batch(toPipe, "--force"), "is not a regular file");
        assertTrue(isFifo(p));
        Path dangling = Files.createSymbolicLink(tmp.resolve("dangling"), tmp.resolve("nothing"));
        oneLine(batch(dangling), "is a link to a missing file");
        assertFalse(Files.exists(tmp.resolve("nothing")), "nothing created through the link");
    }

    @Test
    void modelWritersRefuseAPipe() throws Exception {
        Path p = fifo(tmp.resolve("pipe.gguf"));
        oneLine(CliRunner.run("synth", "--like", "tiny", "-o", p.toString()), "is not a regular file; -o needs a file path");
        oneLine(CliRunner.run("quantize", model.toString(), p.toString(), "Q8_0"), "is not a regular file; OUT.gguf needs a file path");
        assertTrue(isFifo(p));
        // GgufWriter itself (what quantize and synth call, and other callers of the library) refuses too
        Metadata md = new Metadata("test");
        md.put("general.architecture", GgufValue.ofString("llama"));
        GgufWriter w = new GgufWriter(md);
        w.addTensor("t", GgmlType.F32, new long[] {4}, MemorySegment.ofArray(new float[4]));
        CriaException e = assertThrows(CriaException.class, () -> w.write(p));
        assertTrue(e.getMessage().contains("not a regular file"), e.getMessage());
        assertTrue(isFifo(p));
        // and through a link it replaces the file the link names, keeping the link
        Path real = tmp.resolve("real.gguf");
        Files.writeString(real, "old");
        Path link = Files.createSymbolicLink(tmp.resolve("link.gguf"), real);
        w.write(link);
        assertTrue(Files.isSymbolicLink(link));
        assertTrue(Files.size(real) > 3, "the new model is where the link points");
    }

    @Test
    void streamsMayGoToADeviceWhichStaysOne() throws Exception {
        Path dev = Path.of("/dev/null");
        Assumptions.assumeTrue(Files.exists(dev) && isCharDevice(dev), "no /dev/null here");
        CliRunner.Result r = CliRunner.run("logits", "-m", model.toString(), "--ids", "1,2", "-o", "/dev/null", "--backend", "cpu");
        assertEquals(0, r.code(), r.toString());
        assertTrue(isCharDevice(dev));
    }

    // ---- 2. every bad output path is one line naming the path and the cause -----------------------

    @Test
    void missingFolder() throws Exception {
        Path missing = tmp.resolve("no/such/dir/x.f32");
        oneLine(CliRunner.run("logits", "-m", model.toString(), "--ids", "1,2", "-o", missing.toString(), "--backend", "cpu"),
                missing.toString(), "does not exist");
        oneLine(CliRunner.run("tensor", model.toString(), "token_embd.weight", "-o", missing.toString()), "does not exist");
        oneLine(batch(tmp.resolve("no/dir/out.jsonl")), "does not exist");
        oneLine(CliRunner.run("quantize", model.toString(), tmp.resolve("no/dir/q.gguf").toString(), "Q8_0"), "does not exist");
        oneLine(CliRunner.run("synth", "-o", tmp.resolve("no/dir/s.gguf").toString()), "does not exist");
        assertFalse(Files.exists(tmp.resolve("no")), "no folder was made");
    }

    @Test
    void aFolder() throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("dir"));
        oneLine(CliRunner.run("logits", "-m", model.toString(), "--ids", "1,2", "-o", dir.toString(), "--backend", "cpu"),
                dir + " is a directory; -o needs a file path");
        oneLine(CliRunner.run("tensor", model.toString(), "token_embd.weight", "-o", dir.toString()), "is a directory");
        oneLine(batch(dir, "--force"), "is a directory");
        oneLine(CliRunner.run("quantize", model.toString(), dir.toString(), "Q8_0"), "is a directory");
        oneLine(CliRunner.run("kernels", "--md", dir.toString()), dir + " is a directory; --md needs a file path");
        Path l1 = Files.writeString(tmp.resolve("l1.json"), "[{\"n_prompt\": 128, \"n_gen\": 0, \"avg_ts\": 1.0}]");
        oneLine(CliRunner.run("bench", "-m", model.toString(), "--from", l1.toString(), "--compare", l1.toString(),
                "--png", dir.toString()), "is a directory; --png needs a file path");
        assertTrue(Files.isDirectory(dir));
    }

    @Test
    void aFullDevice() throws Exception {
        Path full = Path.of("/dev/full");
        Assumptions.assumeTrue(Files.exists(full) && isCharDevice(full), "no /dev/full here");
        oneLine(CliRunner.run("logits", "-m", model.toString(), "--ids", "1,2", "-o", "/dev/full", "--backend", "cpu"),
                "/dev/full: cannot write: No space left on device");
        oneLine(CliRunner.run("tensor", model.toString(), "token_embd.weight", "-o", "/dev/full"),
                "/dev/full: cannot write: No space left on device");
    }

    @Test
    void permissionDenied() throws Exception {
        Path ro = Files.createDirectory(tmp.resolve("ro"));
        Files.setPosixFilePermissions(ro, PosixFilePermissions.fromString("r-xr-xr-x"));
        try {
            Assumptions.assumeFalse(Files.isWritable(ro), "running as root: permissions do not stop us");
            oneLine(CliRunner.run("logits", "-m", model.toString(), "--ids", "1,2", "-o", ro.resolve("x.f32").toString(), "--backend", "cpu"),
                    "permission denied");
            oneLine(batch(ro.resolve("out.jsonl")), "permission denied");
        } finally {
            Files.setPosixFilePermissions(ro, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
    }

    @Test
    void causesOfFailedWritesAreWords() {
        Path p = Path.of("/x/y");
        assertEquals("cannot write: No space left on device", OutputFiles.cause(p, new IOException("No space left on device")));
        assertEquals("permission denied", OutputFiles.cause(p, new java.nio.file.AccessDeniedException("/x/y")));
        assertEquals("cannot create the file: folder /x does not exist", OutputFiles.cause(p, new java.nio.file.NoSuchFileException("/x/y")));
        assertEquals("is a directory; give a file path", OutputFiles.cause(p, new java.nio.file.FileSystemException("/x/y", null, "Is a directory")));
    }
}
