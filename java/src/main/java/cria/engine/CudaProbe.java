// Finds out, without loading JCuda, whether a CUDA device could be used here, and says why not.
package cria.engine;

import java.nio.file.Files;
import java.nio.file.Path;

/** Cheap checks for a CUDA driver and device before any native library is touched. */
final class CudaProbe {
    private CudaProbe() {}

    /** The reason when neither a driver nor a device is here: the CPU is the only choice, nothing to explain. */
    static final String NO_GPU = "no NVIDIA GPU or CUDA driver on this host";

    private static final String[] DRIVER_DIRS = {
        "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/nvidia/lib64", "/usr/local/cuda/lib64",
        "/usr/local/cuda/compat", "/usr/lib/wsl/lib",
    };

    /**
     * Null when a driver and a device node are present (JCuda may then be loaded); else the
     * reason in a few words: which of the two is missing.
     */
    static String whyUnavailable() {
        boolean driver = false;
        for (String d : DRIVER_DIRS) {
            if (Files.exists(Path.of(d, "libcuda.so.1"))) {
                driver = true;
                break;
            }
        }
        String ld = System.getenv("LD_LIBRARY_PATH");
        if (!driver && ld != null) {
            for (String d : ld.split(":")) {
                if (!d.isEmpty() && Files.exists(Path.of(d, "libcuda.so.1"))) {
                    driver = true;
                }
            }
        }
        if (!driver) {
            driver = inLoaderCache("libcuda.so.1");
        }
        boolean device = Files.exists(Path.of("/dev/nvidia0")) || Files.exists(Path.of("/dev/dxg"));
        if (!driver && !device) {
            return NO_GPU;
        }
        if (!driver) {
            return "an NVIDIA device is present but the CUDA driver (libcuda.so.1) is not installed";
        }
        if (!device) {
            return "the CUDA driver is installed but no NVIDIA device is visible (/dev/nvidia0 missing)";
        }
        return null;
    }

    /** True when the dynamic loader's cache (ldconfig) names the library, wherever it lives. */
    private static boolean inLoaderCache(String soname) {
        try {
            byte[] cache = Files.readAllBytes(Path.of("/etc/ld.so.cache"));
            byte[] want = soname.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            outer:
            for (int i = 0; i + want.length <= cache.length; i++) {
                for (int j = 0; j < want.length; j++) {
                    if (cache[i + j] != want[j]) {
                        continue outer;
                    }
                }
                return true;
            }
        } catch (java.io.IOException | RuntimeException e) {
            // no cache (or unreadable): the directory checks above decide
        }
        return false;
    }
}
