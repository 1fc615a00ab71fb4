// The places the conformance suite runs every op: the CPU backend's two paths and the CUDA kernels on the emulator and a GPU.
package cria.backend.conformance;

import cria.backend.cpu.CpuBackend;
import cria.backend.cuda.Devices;
import cria.backend.cuda.Skips;
import cria.gguf.GgmlType;
import java.util.Arrays;
import java.util.List;
import java.util.function.LongFunction;

/**
 * A target: a name (part of every case's name), a {@link Kind} that picks its column of the
 * {@link Tolerances} table, the weight types it reads, and how to open it for one case (given the
 * case's seed). Opening skips the case (a JUnit assumption, reason printed once) when the target
 * cannot run here: no native library, no g++/libffi for the emulator, no GPU, or not selected by
 * {@code -Dcria.test.targets=name,name} (e.g. {@code cuda-gpu} on a device machine).
 * <p>The emulator also runs under two other thread schedules ({@code reverse}, {@code random}:
 * seeded by the case's seed), which expose missing barriers the forward order hides; those two run
 * a few weight types only, and {@code random} two attention tunings of four (it is slow).
 */
record Target(String name, Kind kind, List<GgmlType> types, LongFunction<Device> opener) {

    /** Which column of the tolerance table applies. */
    enum Kind {
        /** The CPU backend without native kernels: weights dequantized, float activations. */
        CPU_JAVA,
        /** The CPU backend with native kernels: quantized weights meet activations quantized to 8 bits. */
        CPU_NATIVE,
        /** The CUDA kernels: f32 activations, f32 accumulation in another order. */
        CUDA
    }

    /** The CPU backend's weight types. */
    static final List<GgmlType> CPU_TYPES = List.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1,
            GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K,
            GgmlType.Q6_K, GgmlType.IQ4_NL, GgmlType.IQ4_XS);

    static final Target CPU_JAVA_TARGET = new Target("cpu-java", Kind.CPU_JAVA, CPU_TYPES,
            seed -> Device.host(new CpuBackend(2, false)));

    static final Target CPU_NATIVE_TARGET = new Target("cpu-native", Kind.CPU_NATIVE, CPU_TYPES, seed -> {
        CpuBackend b = new CpuBackend(2, true);
        if (!b.usesNativeKernels()) {
            String why = b.describe();
            b.close();
            Skips.unless(false, "cpu-native: the native library (target/native/libcria.so, built by make) is not loaded: " + why);
        }
        return Device.host(b);
    });

    /** Every target, in the order cases are listed. */
    static final List<Target> ALL = List.of(
            CPU_JAVA_TARGET,
            CPU_NATIVE_TARGET,
            new Target("cuda-emulator", Kind.CUDA, Devices.types(), seed -> Device.cuda(Devices.EMULATOR, null, seed, false)),
            new Target("cuda-emulator reverse", Kind.CUDA, List.of(GgmlType.Q4_0, GgmlType.Q6_K, GgmlType.F16),
                    seed -> Device.cuda(Devices.EMULATOR, "REVERSE", seed, false)),
            new Target("cuda-emulator random", Kind.CUDA, List.of(GgmlType.Q4_0),
                    seed -> Device.cuda(Devices.EMULATOR, "RANDOM", seed, true)),
            new Target("cuda-gpu", Kind.CUDA, Devices.types(), seed -> Device.cuda(Devices.GPU, null, seed, false)));

    /** The CPU backend's two paths (for the checks of properties only the CPU backend promises). */
    static final List<Target> CPU = List.of(CPU_JAVA_TARGET, CPU_NATIVE_TARGET);

    /** Opens the target for one case, or skips the case with the reason it cannot run here. */
    Device open(long seed) {
        String only = System.getProperty("cria.test.targets", "").trim();
        if (!only.isEmpty()) {
            Skips.unless(Arrays.stream(only.split(",")).map(String::trim).anyMatch(name::equals),
                    name + ": not among -Dcria.test.targets=" + only);
        }
        return opener.apply(seed);
    }

    @Override
    public String toString() {
        return name;
    }
}
