// Acts as a user's project: installs dev.cria:cria into a fresh local repository, builds the README's example with Maven, runs it.
package cria;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a Java programmer does with Cria, done by the test: {@code tools/maven-install} (what
 * {@code make install} runs) puts the built jar, sources and Javadoc into a local repository of
 * the test's own; a separate Maven project that declares the README's {@code <dependency>} block
 * compiles the README's example; the program runs with the README's JVM options, from the
 * dependency alone (no {@code -Dcria.native.dir}, no checkout on the class path), and must take
 * the native path. Then the same program without each option (one line naming it), and with a
 * jar whose native library was deleted (the one-line notice, then the pure-Java path).
 *
 * <p>Everything the user's build resolves besides Cria (plugins, Cria's dependencies) comes from
 * the developer's own ~/.m2 repository, offered to it as a file:// repository before Maven
 * Central. Needs the jars {@code make} builds and {@code mvn} on the path; skips and says why
 * without them.
 */
class UserProjectTest {
    @TempDir
    static Path tmp;

    private static final Path ROOT = Path.of(System.getProperty("user.dir"));

    private record Run(int code, String out, String err) {
        @Override
        public String toString() {
            return "exit " + code + "\n--- stdout\n" + out + "\n--- stderr\n" + err;
        }
    }

    private static Run run(Path dir, List<String> command) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile());
        Map<String, String> env = pb.environment();
        env.put("JAVA_HOME", System.getProperty("java.home"));
        env.put("MAVEN_OPTS", "--sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED");
        Path out = Files.createTempFile(tmp, "out", ".txt");
        Path err = Files.createTempFile(tmp, "err", ".txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + command);
        }
        return new Run(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    private static String version() throws IOException {
        Matcher m = Pattern.compile("<artifactId>cria</artifactId>\\s*<version>([^<]+)</version>").matcher(Files.readString(ROOT.resolve("pom.xml")));
        assertTrue(m.find(), "no version in pom.xml");
        return m.group(1);
    }

    private static String settings() {
        String m2 = Path.of(System.getProperty("user.home"), ".m2", "repository").toUri().toString();
        String repo = "<id>developer-m2</id><url>" + m2 + "</url><releases><enabled>true</enabled></releases>"
                + "<snapshots><enabled>false</enabled></snapshots>";
        return "<settings><profiles><profile><id>offline-first</id>"
                + "<repositories><repository>" + repo + "</repository></repositories>"
                + "<pluginRepositories><pluginRepository>" + repo + "</pluginRepository></pluginRepositories>"
                + "</profile></profiles><activeProfiles><activeProfile>offline-first</activeProfile></activeProfiles></settings>";
    }

    @Test
    void aMavenProjectDependingOnCriaRunsTheReadmeExampleOnTheNativePath() throws Exception {
        for (String jar : new String[] {"cria.jar", "cria-sources.jar", "cria-javadoc.jar"}) {
            Assumptions.assumeTrue(Files.isRegularFile(ROOT.resolve("target").resolve(jar)),
                    "skipped: target/" + jar + " is missing (run through 'make test', which builds it)");
        }
        Assumptions.assumeTrue(Files.exists(ROOT.resolve("target/generated-resources/native")),
                "skipped: this build has no native library (no C compiler?); the jar runs the pure-Java path");
        Assumptions.assumeTrue(run(tmp, List.of("mvn", "-v")).code() == 0, "skipped: mvn is not on the PATH");
        Path settings = tmp.resolve("settings.xml");
        Files.writeString(settings, settings());
        Path repo = tmp.resolve("repo");
        List<String> maven = List.of("-s", settings.toString(), "-Dmaven.repo.local=" + repo);

        // the install, into the test's own local repository
        List<String> install = new ArrayList<>(List.of(ROOT.resolve("tools/maven-install").toString()));
        install.addAll(maven);
        Run installed = run(ROOT, install);
        assertEquals(0, installed.code(), "install: " + installed);
        String version = version();
        Path artifact = repo.resolve("dev/cria/cria").resolve(version);
        for (String suffix : new String[] {".jar", "-sources.jar", "-javadoc.jar", ".pom"}) {
            assertTrue(Files.isRegularFile(artifact.resolve("cria-" + version + suffix)), "installed: cria-" + version + suffix);
        }

        // the user's project: the README's dependency block and example
        Path app = tmp.resolve("app");
        Files.createDirectories(app.resolve("src/main/java"));
        Files.writeString(app.resolve("src/main/java/Hello.java"), ReadmeExampleTest.example());
        Files.writeString(app.resolve("pom.xml"), """
                <project xmlns="http://maven.apache.org/POM/4.0.0">
                  <modelVersion>4.0.0</modelVersion>
                  <groupId>example</groupId>
                  <artifactId>hello-cria</artifactId>
                  <version>1</version>
                  <properties>
                    <maven.compiler.release>25</maven.compiler.release>
                    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
                  </properties>
                  <dependencies>
                    %s
                  </dependencies>
                  <build>
                    <plugins>
                      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>3.14.0</version></plugin>
                      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>3.8.1</version></plugin>
                    </plugins>
                  </build>
                </project>
                """.formatted(readmeDependency()));
        List<String> build = new ArrayList<>(List.of("mvn", "-B", "-q", "--no-transfer-progress"));
        build.addAll(maven);
        build.addAll(List.of("compile", "dependency:build-classpath", "-Dmdep.outputFile=cp.txt"));
        Run built = run(app, build);
        assertEquals(0, built.code(), "the user's build: " + built);
        String cp = "target/classes" + java.io.File.pathSeparator + Files.readString(app.resolve("cp.txt")).strip();
        assertFalse(cp.contains(ROOT.resolve("target").toString()), "the program must not see the checkout's build: " + cp);

        Path model = TestModels.tinyLlama(tmp.resolve("tiny.gguf"), 5);
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cache = "-Dcria.cache.dir=" + tmp.resolve("cache");

        Run native_ = run(app, List.of(javaBin, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", cache,
                "-cp", cp, "Hello", model.toString()));
        assertEquals(0, native_.code(), native_.toString());
        assertTrue(native_.err().contains("native kernels"), "the native path ran: " + native_);
        assertFalse(native_.err().contains("pure-Java"), native_.toString());
        assertTrue(native_.out().strip().lines().reduce((a, b) -> b).orElse("").matches("\\[\\d+ tokens, [0-9.]+ tokens/s, (STOP|LENGTH)]"),
                native_.toString());
        try (var files = Files.list(tmp.resolve("cache/native"))) {
            assertEquals(1, files.filter(f -> f.getFileName().toString().endsWith("-libcria.so")).count(), "extracted once, by hash");
        }

        // a program that forgot an option: one line naming it, not a linkage error
        Run noAccess = run(app, List.of(javaBin, "--add-modules", "jdk.incubator.vector", cache, "-cp", cp, "Hello", model.toString()));
        assertEquals(1, noAccess.code(), noAccess.toString());
        assertTrue(noAccess.err().contains("cria.CriaException: Cria calls native code") && noAccess.err().contains("--enable-native-access=ALL-UNNAMED"),
                noAccess.toString());
        Run noVector = run(app, List.of(javaBin, "--enable-native-access=ALL-UNNAMED", cache, "-cp", cp, "Hello", model.toString()));
        assertEquals(1, noVector.code(), noVector.toString());
        assertTrue(noVector.err().contains("cria.CriaException:") && noVector.err().contains("add --add-modules jdk.incubator.vector"),
                noVector.toString());
        assertFalse(noVector.err().contains("NoClassDefFoundError"), noVector.toString());

        // the native resource deleted from the jar: the notice once, then the pure-Java path
        Path installedJar = artifact.resolve("cria-" + version + ".jar");
        Path stripped = tmp.resolve("cria-without-native.jar");
        Files.copy(installedJar, stripped);
        try (FileSystem zip = FileSystems.newFileSystem(URI.create("jar:" + stripped.toUri()), Map.of())) {
            Path dir = zip.getPath("cria/native");
            try (var walk = Files.walk(dir)) {
                for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.delete(p);
                }
            }
        }
        String cpWithout = cp.replace(installedJar.toString(), stripped.toString());
        assertTrue(cpWithout.contains(stripped.toString()), "the class path names the installed jar: " + cp);
        Run java_ = run(app, List.of(javaBin, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", cache,
                "-cp", cpWithout, "Hello", model.toString()));
        assertEquals(0, java_.code(), java_.toString());
        List<String> notices = java_.err().lines().filter(l -> l.contains("pure-Java path")).toList();
        assertEquals(1, notices.size(), "one notice: " + java_);
        assertTrue(notices.get(0).startsWith("cria: the native CPU kernels are not available (this Cria jar has no native library for "),
                notices.get(0));
        assertTrue(java_.out().strip().lines().reduce((a, b) -> b).orElse("").matches("\\[\\d+ tokens, [0-9.]+ tokens/s, (STOP|LENGTH)]"),
                java_.toString());
    }

    /** The {@code <dependency>} block as the README prints it. */
    private static String readmeDependency() throws IOException {
        String readme = Files.readString(ROOT.resolve("README.md"), StandardCharsets.UTF_8);
        int a = readme.indexOf("<dependency>");
        int b = readme.indexOf("</dependency>", a);
        assertTrue(a >= 0 && b > a, "README.md has no <dependency> block");
        String block = readme.substring(a, b + "</dependency>".length());
        assertTrue(block.contains("<version>" + version() + "</version>"), "the README's version is the pom's: " + block);
        return block;
    }
}
