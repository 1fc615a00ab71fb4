// `cria kernels`: one-line refusal without a GPU, option errors, and its table, JSON and PNG on made-up timings.
package cria.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import cria.CliRunner;
import cria.CriaException;
import cria.bench.KernelBench;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelsCommandTest {
    static final KernelBench.Peaks PEAKS = new KernelBench.Peaks(3000, 800);
    static final List<KernelBench.Result> RESULTS = List.of(
            new KernelBench.Result("gemv", "gemv_q4_0", "4096x4096", 3e-7, null, 0.0125, 760.2, "GB/s", 760.2 / 3000),
            new KernelBench.Result("gemm", "gemm_f16", "4096x4096 n=512", 4e-4, null, 0.09, 190.9, "TFLOP/s", 190.9 / 800),
            new KernelBench.Result("flash", "flash_f16_128", "n=512 causal", Double.NaN,
                    "relative error 0.9 (limit 0.003); first bad element row 0 col 1: cuda 1.0 vs ref 2.0", Double.NaN, Double.NaN,
                    "TFLOP/s", Double.NaN));

    private static boolean gpuHere() {
        return Files.exists(Path.of("/dev/nvidia0")) || Files.exists(Path.of("/dev/dxg"));
    }

    @Test
    void withoutAGpuItSaysSoInOneLineAndExits1() {
        Assumptions.assumeFalse(gpuHere(), "a GPU is present: the refusal cannot be seen here");
        CliRunner.Result r = CliRunner.run("kernels", "--family", "gemv");
        assertEquals(1, r.code(), r.toString());
        String err = r.err().strip();
        assertEquals(1, err.lines().count(), "one line: " + err);
        assertTrue(err.startsWith("cria: kernels needs a CUDA GPU: "), err);
        assertFalse(err.contains("Exception") || err.contains("use --backend cpu"), err);
        assertEquals("", r.out());
    }

    @Test
    void badOptionsAreOneLineErrors() {
        CliRunner.Result r = CliRunner.run("kernels", "--family", "gemv,warp-drive");
        assertEquals(1, r.code());
        assertTrue(r.err().strip().startsWith("cria: kernels: unknown family 'warp-drive'"), r.err());
        r = CliRunner.run("kernels", "--sizes", "4096x");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("--sizes: '4096x'"), r.err());
        r = CliRunner.run("kernels", "--types", "Q9_9");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("unknown weight type 'Q9_9'"), r.err());
    }

    @Test
    void sizesAreMatricesOrCounts() {
        KernelBench.validateSizes(List.of("4096x14336", "512", "16 x 32"));
        try {
            KernelBench.validateSizes(List.of("0"));
            throw new AssertionError("0 accepted");
        } catch (CriaException expected) {
            assertTrue(expected.getMessage().contains("'0'"));
        }
    }

    @Test
    void theMarkdownTableShowsRatesFractionsAndFailures() {
        String md = KernelReport.markdown("NVIDIA H100 80GB HBM3", PEAKS, RESULTS);
        assertTrue(md.startsWith("Device: NVIDIA H100 80GB HBM3\n"), md);
        assertTrue(md.contains("copy 3000 GB/s (read + written), bf16 GEMM 800 TFLOP/s"), md);
        assertTrue(md.contains("| gemv | gemv_q4_0 | 4096x4096 | ok (3.0e-07) | 12.5 us | 760.2 GB/s | 25.3 % |"), md);
        assertTrue(md.contains("| gemm | gemm_f16 | 4096x4096 n=512 | ok (4.0e-04) | 90.0 us | 190.9 TFLOP/s | 23.9 % |"), md);
        assertTrue(md.contains("| flash | flash_f16_128 | n=512 causal | FAILED: relative error 0.9"), md);
        assertTrue(KernelReport.line(RESULTS.get(2)).contains("CHECK FAILED"));
    }

    @Test
    void theJsonDocumentHoldsPeaksAndEveryResult() throws Exception {
        JsonNode root = Json.MAPPER.readTree(KernelReport.json("dev", PEAKS, RESULTS));
        assertEquals("dev", root.path("device").asText());
        assertEquals(3000, root.path("peaks").path("copy_GBps").asDouble());
        assertEquals(800, root.path("peaks").path("gemm_bf16_TFLOPs").asDouble());
        JsonNode r = root.path("results");
        assertEquals(3, r.size());
        assertEquals("gemv_q4_0", r.get(0).path("kernel").asText());
        assertEquals(12.5, r.get(0).path("median_us").asDouble(), 1e-9);
        assertEquals(760.2 / 3000, r.get(0).path("peak_fraction").asDouble(), 1e-12);
        assertEquals("failed", r.get(2).path("check").asText());
        assertTrue(r.get(2).path("median_us").isNull());
        assertTrue(r.get(2).path("failure").asText().startsWith("relative error"));
    }

    @Test
    void theChartIsAPng(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("charts/kernels.png");
        KernelReport.png(png, "dev", RESULTS);
        byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(png), 4);
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, head);
    }
}
