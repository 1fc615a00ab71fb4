// Builds the test-only CUDA emulator library (kernels/*.cu compiled as host C++ with g++) once per test run.
package cria.backend.cuda;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * target/cuda-emu/libcriaemu.so from java/src/test/cuda-emu/*.cpp and every kernels/*.cu,
 * rebuilt when a source is newer. Needs g++ and libffi's header; without them the emulator
 * tests are skipped with {@link #whyUnavailable()}.
 */
final class EmuBuild {
    private EmuBuild() {}

    private static Path library;
    private static String why;
    private static boolean tried;

    static Path root() {
        Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("kernels"))) {
            p = p.getParent();
        }
        return p;
    }

    /** The built library, or null (see {@link #whyUnavailable()}). */
    static synchronized Path library() {
        if (!tried) {
            tried = true;
            try {
                library = build();
            } catch (IOException | InterruptedException | RuntimeException e) {
                why = "the CUDA emulator could not be built: " + e.getMessage();
            }
        }
        return library;
    }

    static synchronized String whyUnavailable() {
        library();
        return why;
    }

    private static Path build() throws IOException, InterruptedException {
        Path root = root();
        if (root == null) {
            why = "kernels/ not found above " + System.getProperty("user.dir");
            return null;
        }
        Path emuDir = root.resolve("java/src/test/cuda-emu");
        List<Path> sources = new ArrayList<>();
        try (Stream<Path> s = Files.list(emuDir)) {
            s.filter(p -> p.toString().endsWith(".cpp")).sorted().forEach(sources::add);
        }
        try (Stream<Path> s = Files.list(root.resolve("kernels"))) {
            s.filter(p -> p.toString().endsWith(".cu")).sorted().forEach(sources::add);
        }
        List<Path> inputs = new ArrayList<>(sources);
        try (Stream<Path> s = Files.list(root.resolve("kernels"))) {
            s.filter(p -> p.toString().endsWith(".cuh")).forEach(inputs::add);
        }
        inputs.add(emuDir.resolve("cuda_emu.h"));
        Path out = root.resolve("target/cuda-emu/libcriaemu.so");
        if (Files.exists(out)) {
            long built = Files.getLastModifiedTime(out).toMillis();
            boolean fresh = true;
            for (Path p : inputs) {
                fresh &= Files.getLastModifiedTime(p).toMillis() <= built;
            }
            if (fresh) {
                return out;
            }
        }
        Files.createDirectories(out.getParent());
        List<String> cmd = new ArrayList<>(List.of("g++", "-std=c++17", "-O1", "-fPIC", "-shared", "-DCRIA_EMU",
                "-I" + root.resolve("kernels"), "-I" + emuDir, "-Wall", "-Wno-unused-function", "-Wno-unknown-pragmas",
                "-o", out.toString(), "-x", "c++"));
        sources.forEach(p -> cmd.add(p.toString()));
        cmd.addAll(List.of("-x", "none", "-lffi"));
        Path log = out.resolveSibling("build.log");
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        } catch (IOException e) {
            why = "g++ is not available (" + e.getMessage() + ")";
            return null;
        }
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            why = "g++ took more than 5 minutes";
            return null;
        }
        if (p.exitValue() != 0) {
            String text = Files.readString(log);
            if (text.contains("ffi.h")) {
                why = "libffi's header (ffi.h) is missing: install libffi-dev to run the kernels in the emulator";
                return null;
            }
            throw new IllegalStateException("g++ failed building the CUDA emulator (kernels do not compile as host C++):\n" + text);
        }
        return out;
    }
}
