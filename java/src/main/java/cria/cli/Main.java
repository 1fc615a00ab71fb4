// The `cria` command line: the verbs, one-line errors for expected failures, exit codes.
package cria.cli;

import cria.CriaException;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of the {@code cria} launcher. Expected failures ({@link CriaException}, bad
 * options, an unknown verb, out of memory, lost standard output) print one line on stderr and
 * exit with code 1; anything else is a bug and keeps its stack trace.
 */
@Command(name = "cria", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Cria: LLaMA-family inference for the JVM (GGUF models, CPU and CUDA).",
        subcommands = {
            InfoCommand.class,
            TensorCommand.class,
            QuantizeCommand.class,
            PruneCommand.class,
            MergeCommand.class,
            LowRankCommand.class,
            GenerateCommand.class,
            LogitsCommand.class,
            BenchCommand.class,
            KernelsCommand.class,
            BatchCommand.class,
            SynthCommand.class,
            PerplexityCommand.class,
            CompareCommand.class,
            EvalCommand.class,
            TokenizeCommand.class,
            TemplateCommand.class,
            TrainCommand.class,
            FinetuneCommand.class,
            StoriesCommand.class,
            ImatrixCommand.class,
            ServeCommand.class,
            CommandLine.HelpCommand.class,
        })
public final class Main implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        // Until a verb installs its own (generate stops politely), Ctrl-C says one line and exits 130:
        // model loading, quantizing and benchmarks cannot stop half-way, and silence looks like a crash.
        Interrupts.exitOnInterrupt(System.err);
        // stdout unwrapped (not System.out, a PrintStream that swallows failures), so that a lost write is seen with its reason
        int code = run(args, new FileOutputStream(FileDescriptor.out), System.err);
        System.exit(code);
    }

    /**
     * Runs one command line with the given streams; returns the exit code. A failed write of
     * {@code out} turns a successful run into exit code 1 and one line on {@code err}.
     */
    public static int run(String[] args, OutputStream out, PrintStream err) {
        CommandLine cl = new CommandLine(new Main());
        PrintWriter errWriter = new PrintWriter(new OutputStreamWriter(err, StandardCharsets.UTF_8), true);
        StdoutGuard guard = new StdoutGuard(out);
        PrintWriter outWriter = new PrintWriter(new OutputStreamWriter(guard, StandardCharsets.UTF_8), true);
        cl.setOut(outWriter);
        cl.setErr(errWriter);
        cl.setExecutionExceptionHandler((ex, line, parsed) -> handle(ex, line, errWriter));
        cl.setParameterExceptionHandler((ex, argv) -> {
            CommandLine bad = ex.getCommandLine();
            String verb = bad.getCommandSpec().qualifiedName();
            String unknown = bad.getParent() == null ? unknownVerb(ex) : null;
            errWriter.println(verb + ": " + (unknown != null ? "unknown verb '" + unknown + "'" : oneLine(ex.getMessage()))
                    + " (see '" + verb + " --help')");
            return 1;
        });
        cl.setExecutionStrategy(parsed -> {
            String unknown = unknownVerb(parsed, cl);
            if (unknown != null) {
                errWriter.println("cria: unknown verb '" + unknown + "' (see 'cria --help')");
                return 1;
            }
            return new CommandLine.RunLast().execute(parsed);
        });
        int code;
        try {
            code = cl.execute(args);
        } catch (OutOfMemoryError e) {
            errWriter.println("cria: out of Java heap memory (" + oneLine(e.getMessage())
                    + "); give the JVM more with CRIA_JAVA_OPTS=-Xmx16g, or use a smaller model or context");
            code = 1;
        }
        code = checkStdout(code, outWriter, guard, out, errWriter);
        errWriter.flush();
        return code;
    }

    /**
     * Flushes standard output and checks that everything written reached it. A run that lost
     * output (a full disk, a closed terminal) fails in one line, once, whatever the verb: the
     * verbs print through a PrintWriter, which never throws. A run that failed already keeps its
     * own line and code. A reader that went away ({@code | head -1}) is not an error of ours: the
     * run ends quietly with 141, the code the shell reports for a C tool stopped by SIGPIPE
     * (128 + 13), so that {@code set -o pipefail} scripts see what they see with {@code yes | head -1}.
     */
    private static int checkStdout(int code, PrintWriter outWriter, StdoutGuard guard, OutputStream raw, PrintWriter err) {
        boolean lost = outWriter.checkError(); // flushes, then says whether any write failed
        if (raw instanceof PrintStream ps) {
            lost |= ps.checkError(); // a PrintStream swallows its own failures: only its flag tells
        }
        if (!lost || (code != 0)) {
            return code;
        }
        IOException why = guard.failure();
        if (StdoutGuard.isBrokenPipe(why)) {
            return 141;
        }
        err.println("cria: cannot write standard output" + (why == null ? "" : ": " + OutputFiles.reason(why)));
        return 1;
    }

    /** The unknown word of `cria frob` (picocli's message says "Unmatched argument"), or null. */
    private static String unknownVerb(CommandLine.ParameterException ex) {
        if (ex instanceof CommandLine.UnmatchedArgumentException u && !u.getUnmatched().isEmpty()
                && !u.getUnmatched().get(0).startsWith("-")) {
            return u.getUnmatched().get(0);
        }
        return null;
    }

    /**
     * The unknown verb of a command line that parsed, or null: `cria frob --help` parses (picocli
     * lets --help win over the stray word and would print the main help with exit code 0), and
     * so does `cria help frob`.
     */
    private static String unknownVerb(CommandLine.ParseResult parsed, CommandLine top) {
        for (String word : parsed.unmatched()) {
            if (!word.startsWith("-")) {
                return word;
            }
        }
        if (parsed.hasSubcommand() && parsed.subcommand().commandSpec().userObject() instanceof CommandLine.HelpCommand) {
            for (CommandLine.Model.ArgSpec arg : parsed.subcommand().matchedArgs()) {
                if (arg.isPositional()) {
                    for (String name : arg.originalStringValues()) {
                        if (!top.getSubcommands().containsKey(name)) {
                            return name;
                        }
                    }
                }
            }
        }
        return null;
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
