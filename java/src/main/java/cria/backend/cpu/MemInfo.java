// The memory the system can still give (Linux's MemAvailable), for copies that are worth making only when there is room.
package cria.backend.cpu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

final class MemInfo {
    private MemInfo() {
    }

    /** Bytes of memory available for new allocations without swapping (MemAvailable), or -1 where unknown. */
    static long availableBytes() {
        Path p = Path.of("/proc/meminfo");
        if (!Files.isReadable(p)) {
            return -1;
        }
        try {
            for (String line : Files.readAllLines(p)) {
                if (line.startsWith("MemAvailable:")) {
                    String[] f = line.substring("MemAvailable:".length()).trim().split("\\s+");
                    return Long.parseLong(f[0]) * 1024; // kB
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
