// Base of every `cria` verb: access to the command line's output streams.
package cria.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine;

/** A subcommand: returns its exit code; prints results on {@link #out()} and progress on {@link #err()}. */
abstract class Verb implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Standard output (results only). */
    PrintWriter out() {
        return spec.commandLine().getOut();
    }

    /** Standard error (progress, timings, warnings). */
    PrintWriter err() {
        return spec.commandLine().getErr();
    }
}
