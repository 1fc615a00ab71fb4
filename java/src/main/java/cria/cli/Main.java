// The `cria` command line: the verbs, one-line errors for expected failures, exit codes.
package cria.cli;

import cria.CriaException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of the {@code cria} launcher. Expected failures ({@link CriaException}, bad
 * options, out of memory) print one line on stderr and exit with code 1; anything else is a bug
 * and keeps its stack trace.
 */
@Command(name = "cria", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Cria: LLaMA-family inference for the JVM (GGUF models, CPU and CUDA).",
        subcommands = {
            InfoCommand.class,
            TensorCommand.class,
            QuantizeCommand.class,
            GenerateCommand.class,
            LogitsCommand.class,
            BenchCommand.class,
            KernelsCommand.class,
            BatchCommand.class,
            SynthCommand.class,
            PerplexityCommand.class,
            TokenizeCommand.class,
            TemplateCommand.class,
            CommandLine.HelpCommand.class,
        })
public final class Main implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        int code = run(args, System.out, System.err);
        System.out.flush();
        System.exit(code);
    }

    /** Runs one command line with the given streams; returns the exit code. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        CommandLine cl = new CommandLine(new Main());
        PrintWriter errWriter = new PrintWriter(new java.io.OutputStreamWriter(err, StandardCharsets.UTF_8), true);
        cl.setOut(new PrintWriter(new java.io.OutputStreamWriter(out, StandardCharsets.UTF_8), true));
        cl.setErr(errWriter);
        cl.setExecutionExceptionHandler((ex, line, parsed) -> handle(ex, line, errWriter));
        cl.setParameterExceptionHandler((ex, argv) -> {
            CommandLine bad = ex.getCommandLine();
            String verb = bad.getCommandSpec().qualifiedName();
            errWriter.println(verb + ": " + oneLine(ex.getMessage()) + " (see '" + verb + " --help')");
            return 1;
        });
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            errWriter.println("cria: out of Java heap memory (" + oneLine(e.getMessage())
                    + "); give the JVM more with CRIA_JAVA_OPTS=-Xmx16g, or use a smaller model or context");
            return 1;
        } finally {
            errWriter.flush();
            out.flush();
        }
    }

    private static int handle(Exception ex, CommandLine line, PrintWriter err) throws Exception {
        Throwable t = ex;
        if (t instanceof CriaException) {
            err.println("cria: " + oneLine(t.getMessage()));
            return 1;
        }
        throw ex;
    }

    static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ').replace('\r', ' ').strip();
    }

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** Version from the jar manifest, or "dev". */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"cria " + (v == null ? "dev" : v) + " (Java " + Runtime.version() + ")"};
        }
    }
}
