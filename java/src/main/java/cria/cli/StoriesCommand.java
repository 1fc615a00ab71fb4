// `cria stories`: writes the built-in corpus of simple English stories (the text the default model is trained on).
package cria.cli;

import cria.train.StoryCorpus;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Writes the project's own story corpus. */
@Command(name = "stories", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Write the built-in corpus: simple English stories made by a seeded generator in Cria's own code (one story per",
            "line, lower-case), the text `make run` trains its default model on. Deterministic for a seed.",
            "Example: cria stories -o stories.txt --bytes 3000000 --seed 1"})
final class StoriesCommand extends Verb {
    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "the text file to write")
    Path output;

    @Option(names = "--bytes", defaultValue = "3000000", paramLabel = "N", description = "about this many bytes (default: ${DEFAULT-VALUE})")
    long bytes;

    @Option(names = {"-s", "--seed"}, defaultValue = "1", paramLabel = "S", description = "random seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Override
    public Integer call() {
        if (bytes < 1 || bytes > 1L << 34) {
            throw new cria.CriaException("--bytes " + bytes + ": between 1 and 16 GiB");
        }
        OutputFiles.check(output, "-o", OutputFiles.Kind.FILE);
        StoryCorpus.write(output, bytes, seed);
        out().println("wrote " + output + ": " + Units.bytes(output.toFile().length()) + " of stories (seed " + seed + ")");
        return 0;
    }
}
