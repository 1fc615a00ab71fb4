// Kernel sources, launchers and the built fatbins agree: every entry point declared with its signature, every family in the jar.
package cria.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;

/**
 * Reads kernels/*.cu: each {@code extern "C" __global__} entry point, with a signature letter per
 * parameter, must be declared by its family's launcher with the same letters (a mismatch would
 * pass garbage to a kernel silently), and vice versa. With nvcc present, each family's fatbin
 * must be on the class path and in target/cria.jar, and hold code for sm_80..sm_90 plus PTX.
 */
class KernelSourcesTest {
    private static final Pattern ENTRY = Pattern.compile(
            "extern \"C\" __global__ void (?:__launch_bounds__\\([^)]*\\) )?(\\w+)\\(([^)]*)\\)");

    static Path kernels() {
        Path root = EmuBuild.root();
        Skips.unless(root != null, "kernel source tests: kernels/ not found from " + System.getProperty("user.dir"));
        return root.resolve("kernels");
    }

    static char letter(String param) {
        String p = param.strip();
        if (p.contains("*")) {
            return 'p';
        }
        String type = p.substring(0, p.lastIndexOf(' ')).replace("const ", "").strip();
        return switch (type) {
            case "int", "unsigned", "uint32_t", "int32_t" -> 'i';
            case "float" -> 'f';
            case "double" -> 'd';
            case "long long", "int64_t", "size_t", "uint64_t" -> 'l';
            default -> throw new IllegalArgumentException("unknown kernel parameter type in '" + p + "'");
        };
    }

    /** family -> (entry point -> signature), from the sources. */
    static Map<String, Map<String, String>> fromSources() throws IOException {
        Map<String, Map<String, String>> out = new TreeMap<>();
        try (Stream<Path> files = Files.list(kernels())) {
            for (Path f : files.filter(p -> p.toString().endsWith(".cu")).sorted().toList()) {
                String family = f.getFileName().toString().replace(".cu", "");
                Map<String, String> entries = new TreeMap<>();
                Matcher m = ENTRY.matcher(Files.readString(f));
                while (m.find()) {
                    StringBuilder sig = new StringBuilder();
                    for (String p : m.group(2).split(",")) {
                        if (!p.isBlank()) {
                            sig.append(letter(p));
                        }
                    }
                    entries.put(m.group(1), sig.toString());
                }
                out.put(family, entries);
            }
        }
        return out;
    }

    @Test
    void everyEntryPointIsDeclaredWithItsSignatureAndNothingElse() throws IOException {
        Map<String, Map<String, String>> src = fromSources();
        Map<String, Map<String, String>> declared = new TreeMap<>();
        Kernels.families().forEach((family, specs) -> {
            Map<String, String> m = new TreeMap<>();
            specs.forEach(s -> m.put(s.name(), s.signature()));
            declared.put(family, m);
        });
        assertEquals(src.keySet(), declared.keySet(), "kernel families (kernels/*.cu) vs launchers (Kernels.families)");
        for (String family : src.keySet()) {
            assertEquals(src.get(family), declared.get(family), "entry points of kernels/" + family + ".cu vs its launcher");
            for (String name : src.get(family).keySet()) {
                assertTrue(name.startsWith(family + "_"), name + " must be named " + family + "_<variant>");
            }
        }
    }

    static boolean nvccPresent() {
        try {
            Process p = new ProcessBuilder("nvcc", "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    @Test
    void fatbinsAreOnTheClassPathAndInTheJarWhenNvccIsHere() throws IOException, InterruptedException {
        Skips.unless(nvccPresent(), "fatbin tests: nvcc is not on the PATH, so the build made no CUDA kernels");
        Path jar = EmuBuild.root().resolve("target/cria.jar");
        for (String family : Kernels.families().keySet()) {
            String res = Fatbins.resource(family);
            assertTrue(Fatbins.present(family), res + " is not on the test class path: run 'make kernels' (the Makefile builds them before the tests)");
            byte[] head;
            try (InputStream in = getClass().getClassLoader().getResourceAsStream(res)) {
                assertNotNull(in);
                head = in.readNBytes(4);
            }
            assertArrayEquals(new byte[] {0x50, (byte) 0xed, 0x55, (byte) 0xba}, head, res + " does not start with the fatbin magic");
            if (Files.exists(jar)) {
                try (ZipFile z = new ZipFile(jar.toFile())) {
                    assertNotNull(z.getEntry(res), res + " is missing from " + jar);
                }
            }
        }
    }

    @Test
    void fatbinsHoldCodeForEveryTargetArchitecture() throws IOException, InterruptedException {
        Skips.unless(nvccPresent(), "fatbin tests: nvcc is not on the PATH, so the build made no CUDA kernels");
        for (String family : Kernels.families().keySet()) {
            Skips.unless(Fatbins.present(family), "fatbin tests: " + Fatbins.resource(family) + " is not on the class path");
            Path fatbin = Files.createTempFile("cria-" + family, ".fatbin");
            fatbin.toFile().deleteOnExit();
            Files.write(fatbin, Fatbins.read(family));
            List<String> listing = run("cuobjdump", "--list-elf", "--list-ptx", fatbin.toString());
            TreeSet<String> missing = new TreeSet<>();
            if (listing != null) {
                // cuobjdump names each piece by the architecture it was built for: "ELF file 1: embed.1.sm_90.cubin",
                // "PTX file 1: embed.1.sm_90.ptx" (the PTX of compute_90, which later GPUs compile at load)
                for (String arch : new String[] {"sm_80", "sm_86", "sm_89", "sm_90"}) {
                    if (listing.stream().noneMatch(l -> l.startsWith("ELF file") && l.contains("." + arch + "."))) {
                        missing.add(arch);
                    }
                }
                if (listing.stream().noneMatch(l -> l.startsWith("PTX file") && (l.contains("sm_90") || l.contains("compute_90")))) {
                    missing.add("compute_90 (PTX)");
                }
            } else {  // without cuobjdump the cubins' embedded "-arch sm_XX" options tell (PTX unchecked)
                String all = new String(Files.readAllBytes(fatbin), java.nio.charset.StandardCharsets.ISO_8859_1);
                for (String arch : new String[] {"-arch sm_80 ", "-arch sm_86 ", "-arch sm_89 ", "-arch sm_90 "}) {
                    if (!all.contains(arch)) {
                        missing.add(arch.strip());
                    }
                }
            }
            if (!missing.isEmpty()) {
                fail(family + ".fatbin lacks " + missing + (listing != null ? "; cuobjdump lists: " + String.join(" | ", listing) : ""));
            }
        }
    }

    private static List<String> run(String... cmd) throws InterruptedException {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String text = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                return null;
            }
            return new ArrayList<>(text.lines().toList());
        } catch (IOException e) {
            return null;
        }
    }
}
