// The kernel benchmark's cases on the emulator (checks against ref for real, timings from a fake clock).
package cria.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.cuda.CudaBackend;
import cria.backend.cuda.Devices;
import cria.gguf.GgmlType;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Every family of {@code cria kernels} at small sizes: its check must pass on the emulated kernels
 * (so the cases build the right inputs and compare the right rows), and rates and fractions follow
 * from the clock's times and the given ceilings.
 */
class KernelBenchTest {

    @Test
    void everyFamilyChecksOutAndIsTimed() {
        try (CudaBackend cuda = Devices.open(Devices.EMULATOR)) {
            KernelBench bench = new KernelBench(cuda, queue -> {
                queue.run();
                return 2.0;  // every timed sample "takes" 2 ms
            });
            KernelBench.Options o = new KernelBench.Options(Set.copyOf(KernelBench.FAMILIES), List.of("130x256", "40", "2"),
                    List.of(GgmlType.Q4_0, GgmlType.F16), 20, 1, 2, 1L << 16, 7);
            List<KernelBench.Result> seen = new ArrayList<>();
            List<KernelBench.Result> results = bench.run(o, new KernelBench.Peaks(1000, 100), seen::add);
            assertEquals(results, seen);
            List<String> families = results.stream().map(KernelBench.Result::family).distinct().toList();
            assertEquals(KernelBench.FAMILIES, families, "every family ran: " + results);
            for (KernelBench.Result r : results) {
                assertTrue(r.ok(), r.toString());
                assertTrue(r.medianMs() > 0 && r.rate() > 0, r.toString());
                double peak = r.unit().equals("TFLOP/s") ? 100 : 1000;
                assertEquals(r.rate() / peak, r.peakFraction(), 1e-12);
                assertEquals(r.family().equals("gemm") || r.family().equals("flash") ? "TFLOP/s" : "GB/s", r.unit());
            }
        }
    }
}
