// Backend selection without a usable GPU: --backend cuda fails in one line, --backend auto falls back with one log line.
package cria.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.CliRunner;
import cria.CriaException;
import cria.TestModels;
import cria.backend.Backend;
import cria.backend.cpu.CpuBackend;
import cria.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** These run on hosts without a CUDA device or driver (CI, this machine); on a GPU host they are skipped. */
class CudaSelectionTest {

    private static String noGpu() {
        String why = CudaProbe.whyUnavailable();
        cria.backend.cuda.Skips.unless(why != null, "no-GPU selection tests: this host has a CUDA driver and device");
        return why;
    }

    @Test
    void cudaWithoutADeviceSaysWhichIsMissingInOneLine() {
        String why = noGpu();
        CriaException e = assertThrows(CriaException.class, () -> Backends.create("cuda", 1, null));
        assertEquals("--backend cuda: " + why + "; use --backend cpu", e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void jcudaWithoutADriverIsAOneLineErrorNotACrash() {
        noGpu();
        // bypasses the probe: JCuda's native library links against libcuda.so.1, absent here
        CriaException e = assertThrows(CriaException.class, cria.backend.cuda.CudaBackend::open);
        assertTrue(e.getMessage().contains("--backend cpu") && !e.getMessage().contains("\n") && e.getMessage().length() < 300,
                e.getMessage());
        System.out.println("without a driver, CudaBackend.open() says: " + e.getMessage());
    }

    @Test
    void autoFallsBackToTheCpuSayingWhyOnlyWhenAGpuIsHalfThere() {
        String why = noGpu();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (PrintStream log = new PrintStream(bytes, true, StandardCharsets.UTF_8);
             Backend b = Backends.create("auto", 1, log::println)) {
            assertInstanceOf(CpuBackend.class, b);
        }
        List<String> lines = bytes.toString(StandardCharsets.UTF_8).lines().toList();
        // a host with neither a GPU nor a driver hears nothing: the CPU is the only choice there
        assertEquals(why.equals(CudaProbe.NO_GPU) ? List.of() : List.of("cria: using the CPU backend (" + why + ")"), lines);
    }

    @Test
    void loadingAModelOnCudaFailsWithTheSameLine(@TempDir Path dir) {
        String why = noGpu();
        Path model = TestModels.tinyLlama(dir.resolve("tiny.gguf"), 1);
        CriaException e = assertThrows(CriaException.class,
                () -> Model.load(model, ModelOptions.defaults().withBackend("cuda")).close());
        assertTrue(e.getMessage().contains(why), e.getMessage());
    }

    @Test
    void everyVerbWithABackendOptionExitsOneWithOneLine(@TempDir Path dir) {
        String why = noGpu();
        CommandLine cl = new CommandLine(new Main());
        List<String> verbs = cl.getSubcommands().entrySet().stream()
                .filter(e -> e.getValue().getCommandSpec().findOption("--backend") != null).map(e -> e.getKey()).sorted().toList();
        cria.backend.cuda.Skips.unless(!verbs.isEmpty(), "CLI --backend cuda test: no cria verb takes --backend yet");
        Path model = TestModels.tinyLlama(dir.resolve("tiny.gguf"), 1);
        for (String verb : verbs) {
            CliRunner.Result r = CliRunner.run(verb, "--backend", "cuda", model.toString());
            List<String> err = r.err().lines().filter(l -> !l.isBlank() && !l.startsWith("WARNING")).toList();
            if (r.code() == 1 && err.size() == 1 && !err.get(0).contains("cuda")) {
                continue;  // the verb wants other arguments first; its own one-line error
            }
            assertEquals(1, r.code(), verb + ": " + r);
            assertEquals(List.of("cria: --backend cuda: " + why + "; use --backend cpu"), err, verb + ": " + r);
        }
    }
}
