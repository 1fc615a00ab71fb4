// Command-line failures that must be one line and exit 1: lost stdout, unknown verbs, negative counts, errors before the seed line, Ctrl-C.
package cria.cli;

import static cria.cli.OutputFilesTest.oneLine;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CliErrorsTest {
    @TempDir
    static Path tmp;

    static Path model;

    @BeforeAll
    static void model() {
        model = TestModels.tinyLlama(tmp.resolve("m.gguf"), 43);
    }

    /** A standard output whose every write fails with {@code reason}, counting the attempts. */
    static final class FailingOut extends OutputStream {
        final String reason;
        final AtomicInteger writes = new AtomicInteger();

        FailingOut(String reason) {
            this.reason = reason;
        }

        @Override
        public void write(int b) throws IOException {
            writes.incrementAndGet();
            throw new IOException(reason);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            writes.incrementAndGet();
            throw new IOException(reason);
        }
    }

    record Run(int code, String err) {}

    static Run run(OutputStream out, String... args) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code;
        try (PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            code = Main.run(args, out, e);
        }
        return new Run(code, err.toString(StandardCharsets.UTF_8));
    }

    // ---- 3. standard output that cannot be written ------------------------------------------------

    @Test
    void aFullStdoutIsOneLineAndExitOneAndStopsTheGeneration() {
        FailingOut out = new FailingOut("No space left on device");
        Run r = run(out, "generate", "-m", model.toString(), "-p", "ab", "-n", "64", "--ignore-eos", "--temp", "0", "--backend", "cpu");
        assertEquals(1, r.code(), r.err());
        assertEquals(1, r.err().lines().filter(l -> l.contains("cannot write standard output")).count(), r.err());
        assertTrue(r.err().contains("cria: cannot write standard output: No space left on device"), r.err());
        assertFalse(r.err().contains("Exception"), r.err());
        // it stopped at the first failed write instead of generating 64 tokens into the void
        assertTrue(out.writes.get() <= 3, out.writes.get() + " writes");
    }

    @Test
    void everyVerbIsChecked() {
        Run help = run(new FailingOut("No space left on device"), "--help");
        assertEquals(1, help.code());
        assertEquals("cria: cannot write standard output: No space left on device", help.err().strip());
        Run tokenize = run(new FailingOut("Input/output error"), "tokenize", "-m", model.toString(), "-p", "ab");
        assertEquals(1, tokenize.code(), tokenize.err());
        assertEquals("cria: cannot write standard output: Input/output error", tokenize.err().strip());
    }

    @Test
    void devFull() throws IOException {
        Path full = Path.of("/dev/full");
        Assumptions.assumeTrue(Files.isWritable(full), "no /dev/full here");
        try (FileOutputStream out = new FileOutputStream(full.toFile())) {
            Run r = run(out, "generate", "-m", model.toString(), "-p", "ab", "-n", "4", "--temp", "0", "--backend", "cpu");
            assertEquals(1, r.code(), r.err());
            assertTrue(r.err().contains("cria: cannot write standard output: No space left on device"), r.err());
        }
    }

    @Test
    void aReaderThatLeftEndsTheRunQuietly() {
        Run r = run(new FailingOut("Broken pipe"), "generate", "-m", model.toString(), "-p", "ab", "-n", "8", "--temp", "0", "--backend", "cpu");
        assertEquals(141, r.code(), r.err());
        assertFalse(r.err().contains("cannot write"), r.err());
    }

    @Test
    void aFailedRunKeepsItsOwnLineAlone() {
        Run r = run(new FailingOut("No space left on device"), "generate", "-m", tmp.resolve("none.gguf").toString(), "-p", "ab");
        assertEquals(1, r.code());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    // ---- 4. unknown verbs, negative counts, one line before the model loads, Ctrl-C ----------------

    @Test
    void unknownVerbs() {
        for (String[] args : new String[][] {{"frob", "--help"}, {"help", "frob"}, {"frob"}}) {
            CliRunner.Result r = CliRunner.run(args);
            oneLine(r, "cria: unknown verb 'frob' (see 'cria --help')");
            assertEquals("", r.out(), "no help text for " + String.join(" ", args));
        }
        CliRunner.Result help = CliRunner.run("help", "generate");
        assertEquals(0, help.code(), help.toString());
        assertTrue(help.out().contains("Usage: cria generate"), help.toString());
    }

    @Test
    void aMissingModelIsOneLineEvenWithARandomSeed() throws IOException {
        String missing = tmp.resolve("missing.gguf").toString();
        oneLine(CliRunner.run("generate", "-m", missing, "-p", "x"), "missing.gguf");
        Path in = Files.writeString(tmp.resolve("in.jsonl"), "{\"id\": 1, \"prompt\": \"ab\"}\n");
        oneLine(CliRunner.run("batch", "-m", missing, "--in", in.toString(), "--out", tmp.resolve("o.jsonl").toString()), "missing.gguf");
    }

    @Test
    void negativeCountsAndTemperatures() throws IOException {
        String m = model.toString();
        Path in = Files.writeString(tmp.resolve("in2.jsonl"), "{\"id\": 1, \"prompt\": \"ab\"}\n");
        String out = tmp.resolve("o2.jsonl").toString();
        oneLine(CliRunner.run("batch", "-m", m, "--in", in.toString(), "--out", out, "--cache-tokens", "-5"), "--cache-tokens", "-5");
        oneLine(CliRunner.run("batch", "-m", m, "--in", in.toString(), "--out", out, "-n", "-1"), "-n must not be negative");
        oneLine(CliRunner.run("bench", "-m", m, "-p", "-1"), "-p must be", "-1");
        oneLine(CliRunner.run("bench", "-m", m, "-p", "0", "-n", "4,-2"), "-n must be", "-2");
        oneLine(CliRunner.run("bench", "-m", m, "-r", "-1"), "-r must be at least 1");
        oneLine(CliRunner.run("generate", "-m", m, "-p", "x", "--temp", "-1"), "temperature", "-1");
        oneLine(CliRunner.run("batch", "-m", m, "--in", in.toString(), "--out", out, "--temp", "-0.5"), "temperature");
        oneLine(CliRunner.run("generate", "-m", m, "-p", "x", "--stop", ""), "--stop");
        assertFalse(Files.exists(Path.of(out)), "nothing written by refused runs");
    }

    @Test
    void ctrlCSaysOneLineAndExits130() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        AtomicInteger code = new AtomicInteger(-1);
        Interrupts.exitAction(new PrintStream(buf, true, StandardCharsets.UTF_8), code::set).run();
        assertEquals("cria: interrupted\n", buf.toString(StandardCharsets.UTF_8));
        assertEquals(130, code.get());
    }

    @Test
    void aSignalReachesTheHandler() throws InterruptedException {
        // The mechanism Main.main relies on while a model loads: SIGINT runs our action (here a
        // latch instead of an exit). Raised in this JVM only once our handler is in place.
        CountDownLatch seen = new CountDownLatch(1);
        sun.misc.SignalHandler previous = Interrupts.onInterrupt(seen::countDown);
        Assumptions.assumeTrue(previous != null, "signals cannot be caught here");
        try {
            // A job a non-interactive shell starts in the background has SIGINT ignored from the
            // start; the JVM keeps it ignored, so there is nothing to test there.
            Assumptions.assumeFalse(previous == sun.misc.SignalHandler.SIG_IGN, "SIGINT is ignored in this process (a background job)");
            sun.misc.Signal.raise(new sun.misc.Signal("INT"));
            assertTrue(seen.await(30, java.util.concurrent.TimeUnit.SECONDS), "SIGINT did not reach the handler within 30 s");
        } finally {
            Interrupts.restore(previous);
        }
    }
}
