// `cria stories`: writes the built-in corpus of simple English stories (the text the default model is trained on), or a fine-tuning task made from it.
package cria.cli;

import cria.CriaException;
import cria.train.StoryCorpus;
import cria.train.StoryTasks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Writes the project's own story corpus, or with {@code --task} a fine-tuning data set in its style. */
@Command(name = "stories", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Write the built-in corpus: simple English stories made by a seeded generator in Cria's own code (one story per",
            "line, lower-case), the text `make run` trains its default model on. Deterministic for a seed.",
            "With --task, write a fine-tuning data set in the same style instead: DIR/train.jsonl, DIR/val.jsonl and",
            "DIR/test.jsonl, balanced and disjoint, for cria finetune and cria eval. Tasks:",
            "  mood  {\"text\",\"label\"} lines: does a short story end happy, sad or scared",
            "  who   {\"prompt\",\"completion\"} lines: a short story, then \"\\nwho was the story about?\\n\"; the completion is the",
            "        main character's name on its own line (\" lily.\\n\"), one of 40, while other people are named too",
            "        (greedy exact match: cria eval --stop $'\\n' for a model that never learned EOS, such as stories260K)",
            "Example: cria stories -o stories.txt --bytes 3000000 --seed 1",
            "         cria stories --task mood --train 2000 --val 200 --test 400 --seed 7 -o mood",
            "         cria stories --task who --train 2000 --val 200 --test 200 --seed 7 -o who"})
final class StoriesCommand extends Verb {
    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE|DIR", description = "the text file to write (with --task: the directory)")
    Path output;

    @Option(names = "--bytes", paramLabel = "N", description = "about this many bytes of corpus (default: 3000000)")
    Long bytes;

    @Option(names = {"-s", "--seed"}, defaultValue = "1", paramLabel = "S", description = "random seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--task", paramLabel = "NAME", description = "write a fine-tuning data set instead: mood or who")
    String task;

    @Option(names = "--train", defaultValue = "2000", paramLabel = "N", description = "with --task: training examples (default: ${DEFAULT-VALUE})")
    int train;

    @Option(names = "--val", defaultValue = "200", paramLabel = "N", description = "with --task: validation examples (default: ${DEFAULT-VALUE})")
    int val;

    @Option(names = "--test", defaultValue = "400", paramLabel = "N", description = "with --task: test examples (default: ${DEFAULT-VALUE})")
    int test;

    @Override
    public Integer call() {
        if (task != null) {
            return writeTask();
        }
        long n = bytes == null ? 3_000_000 : bytes;
        if (n < 1 || n > 1L << 34) {
            throw new CriaException("--bytes " + n + ": between 1 and 16 GiB");
        }
        OutputFiles.check(output, "-o", OutputFiles.Kind.FILE);
        StoryCorpus.write(output, n, seed);
        out().println("wrote " + output + ": " + Units.bytes(output.toFile().length()) + " of stories (seed " + seed + ")");
        return 0;
    }

    private int writeTask() {
        if (bytes != null) {
            throw new CriaException("--bytes sizes the corpus; with --task give --train, --val and --test instead");
        }
        boolean completes = StoryTasks.completes(task); // an unknown task fails before anything is written
        if (Files.exists(output) && !Files.isDirectory(output)) {
            throw new CriaException(output + ": not a directory; with --task, -o names the directory to write the splits into");
        }
        Map<Path, Integer> written = StoryTasks.write(task, output, train, val, test, seed);
        for (Map.Entry<Path, Integer> w : written.entrySet()) {
            out().println("wrote " + w.getKey() + ": " + w.getValue() + " examples");
        }
        String what = completes ? "prompt/completion, answers balanced over " + StoryTasks.whoNames().size() + " names"
                : "labels " + String.join(", ", StoryTasks.labels(task));
        out().println("task " + task + ": " + what + " (balanced; seed " + seed + ")");
        return 0;
    }
}
