// `cria eval`: a model (and others to compare) on fine-tuning data: loss, perplexity, classification scores, exact match.
package cria.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.engine.Model;
import cria.engine.ModelOptions;
import cria.engine.Session;
import cria.train.ClassificationReport;
import cria.train.Example;
import cria.train.Examples;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Scores models on a JSONL file of {@code cria finetune}'s format ({@link Examples}): the mean
 * loss over the trained tokens and its perplexity for every kind of line; accuracy, per-class
 * precision and recall, macro-F1 and the confusion matrix for {@code {"text","label"}} lines;
 * greedy exact match for {@code {"prompt","completion"}} lines (see {@link Evaluation}). Prints a
 * markdown table, one column per model, or one JSON object with {@code --json}; progress on stderr.
 */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Evaluate a model on fine-tuning data (JSONL of {\"text\"}, {\"prompt\",\"completion\"}, {\"messages\":[...]} or",
            "{\"text\",\"label\"} lines): mean loss and perplexity over the trained tokens; for labelled lines accuracy, per-class",
            "precision/recall, macro-F1 and the confusion matrix (the prediction is the label with the most probable completion);",
            "for prompt/completion lines greedy exact match (until EOS, or a --stop text). --compare adds columns for other models",
            "(without adapters).",
            "Example: cria stories --task mood --train 2000 --val 200 --test 400 -o mood",
            "         cria eval -m target/default/cria-stories.gguf --data mood/test.jsonl"})
final class EvalCommand extends Verb {
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    @Mixin
    ModelArgs modelArgs;

    @Option(names = "--data", required = true, paramLabel = "FILE.jsonl", description = "the examples")
    Path data;

    @Option(names = "--compare", arity = "1..*", paramLabel = "OTHER.gguf", description = "more models to score, each in its own column")
    List<Path> compare = new ArrayList<>();

    @Option(names = "--labels", split = ",", paramLabel = "A,B,...", description = "the label set, in report order (default: the file's labels, sorted)")
    List<String> labels;

    @Option(names = "--limit", defaultValue = "0", paramLabel = "N", description = "score the first N examples only (default: all)")
    int limit;

    @Option(names = "--stop", paramLabel = "TEXT", description = {"exact match: greedy generation also ends before this text (repeatable),",
        "e.g. --stop $'\\n' for a model that never learned EOS, with completions that end in a line break"})
    List<String> stop = new ArrayList<>();

    @Option(names = "--json", description = "print one JSON object instead of markdown")
    boolean json;

    /** What one model scored. */
    record Result(String name, Path file, List<String> adapters, Evaluation eval) {}

    @Override
    public Integer call() {
        if (limit < 0) {
            throw new CriaException("--limit must be 0 (all) or positive, got " + limit);
        }
        if (stop.contains("")) {
            throw new CriaException("--stop needs some text (an empty stop string would end every generation at once)");
        }
        Examples file = Examples.read(data, labels); // a bad file fails before any model loads
        List<Example> chosen = limit > 0 && limit < file.examples().size() ? file.examples().subList(0, limit) : file.examples();
        List<Path> models = new ArrayList<>();
        models.add(modelArgs.model);
        models.addAll(compare);
        for (Path m : models) {
            if (!Files.isRegularFile(m)) {
                throw new CriaException(m + (Files.exists(m) ? ": not a file" : ": no such file"));
            }
        }
        Function<Path, String> names = names(models);
        ModelOptions options = modelArgs.modelOptions();
        ModelOptions plain = ModelOptions.defaults().withBackend(options.backend()).withThreads(options.threads())
                .withVerbose(options.verbose());
        List<Result> results = new ArrayList<>();
        for (int i = 0; i < models.size(); i++) {
            Path m = models.get(i);
            List<String> adapters = i == 0 ? adapters() : List.of();
            String name = names.apply(m) + (adapters.isEmpty() ? "" : " + " + String.join(" + ", adapters));
            results.add(new Result(name, m, adapters, score(m, i == 0 ? options : plain, file, chosen, name)));
        }
        if (json) {
            out().println(Json.write(json(file, chosen.size(), results)));
        } else {
            out().print(markdown(file, chosen.size(), results));
        }
        out().flush();
        return 0;
    }

    private Evaluation score(Path path, ModelOptions options, Examples file, List<Example> chosen, String name) {
        try (Model model = Model.load(path, options, err()::println)) {
            Examples bound = file.bind(model.tokenizer(), Examples.chatTemplate(model.file().metadata(), model.tokenizer()));
            try (Session s = model.newSession(modelArgs.sessionOptions().withAllLogits(true))) {
                Evaluation eval = new Evaluation(s, bound, stop);
                Progress progress = new Progress(err(), "eval " + name, chosen.size(), "examples", Progress.stderrIsTerminal());
                for (Example e : chosen) {
                    eval.add(e);
                    progress.add(1);
                }
                progress.finish();
                if (eval.truncated() > 0) {
                    err().println("cria: " + eval.truncated() + " of " + chosen.size() + " examples were longer than the context of "
                            + s.contextLength() + " tokens and were cut to fit (a longer --ctx keeps them whole)");
                }
                return eval;
            }
        }
    }

    /** The adapters of the first model, as given with --lora (an option of the model arguments when adapters are supported). */
    private List<String> adapters() {
        CommandLine.Model.OptionSpec lora = spec.findOption("--lora");
        return lora == null ? List.of() : List.copyOf(lora.originalStringValues());
    }

    /** Models by file name, or by path where two share a file name. */
    private static Function<Path, String> names(List<Path> models) {
        Set<String> seen = new HashSet<>();
        boolean clash = false;
        for (Path m : models) {
            clash |= !seen.add(m.getFileName().toString());
        }
        boolean byPath = clash;
        return m -> byPath ? m.toString() : m.getFileName().toString();
    }

    // ---- output ----

    private String markdown(Examples file, int count, List<Result> results) {
        StringBuilder sb = new StringBuilder();
        sb.append(data).append(": ").append(count == file.examples().size() ? file.summary() : "the first " + count + " of " + file.summary())
                .append("\n\n| |");
        for (Result r : results) {
            sb.append(' ').append(cell(r.name)).append(" |");
        }
        sb.append("\n|:--|").append("--:|".repeat(results.size())).append('\n');
        row(sb, "examples", results, r -> String.valueOf(r.eval.count()));
        row(sb, "trained tokens", results, r -> String.valueOf(r.eval.trainedTokens()));
        row(sb, "mean loss", results, r -> fmt("%.4f", r.eval.meanLoss()));
        row(sb, "perplexity", results, r -> fmt("%.3f", Math.exp(r.eval.meanLoss())));
        ClassificationReport first = results.get(0).eval.report();
        if (first != null) {
            row(sb, "accuracy", results, r -> percent(r.eval.report().correct(), r.eval.report().count()));
            row(sb, "macro-F1", results, r -> fmt("%.3f", r.eval.report().macroF1()));
            for (int c = 0; c < first.labels().size(); c++) {
                int k = c;
                String l = cell(first.labels().get(c));
                row(sb, "precision " + l, results, r -> fmt("%.3f", r.eval.report().precision(k)));
                row(sb, "recall " + l, results, r -> fmt("%.3f", r.eval.report().recall(k)));
                row(sb, "F1 " + l, results, r -> fmt("%.3f", r.eval.report().f1(k)));
            }
        }
        if (results.get(0).eval.generated() > 0) {
            row(sb, "exact match", results, r -> percent(r.eval.matched(), r.eval.generated()));
        }
        if (first != null) {
            for (Result r : results) {
                sb.append("\nconfusion matrix of ").append(r.name).append(" (rows: true label, columns: predicted)\n\n")
                        .append(r.eval.report().markdownConfusion());
            }
        }
        return sb.toString();
    }

    private static void row(StringBuilder sb, String name, List<Result> results, Function<Result, String> value) {
        sb.append("| ").append(name).append(" |");
        for (Result r : results) {
            sb.append(' ').append(value.apply(r)).append(" |");
        }
        sb.append('\n');
    }

    private static String percent(long k, long n) {
        return fmt("%.1f %%", n == 0 ? 0 : 100.0 * k / n) + " (" + k + "/" + n + ")";
    }

    private static String fmt(String f, double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, f, v) : "n/a";
    }

    private static String cell(String s) {
        return s.replace("|", "\\|").replace('\n', ' ');
    }

    private ObjectNode json(Examples file, int count, List<Result> results) {
        ObjectNode o = F.objectNode();
        o.put("data", data.toString());
        o.put("examples", count);
        ObjectNode kinds = o.putObject("kinds");
        for (Map.Entry<Example.Kind, Integer> k : file.kinds().entrySet()) {
            kinds.put(k.getKey().label(), k.getValue());
        }
        ArrayNode ls = o.putArray("labels");
        file.labels().forEach(ls::add);
        ArrayNode ms = o.putArray("models");
        for (Result r : results) {
            ObjectNode m = ms.addObject();
            m.put("name", r.name);
            m.put("file", r.file.toString());
            ArrayNode ad = m.putArray("adapters");
            r.adapters.forEach(ad::add);
            m.put("examples", r.eval.count());
            m.put("truncated", r.eval.truncated());
            m.put("trained_tokens", r.eval.trainedTokens());
            double loss = r.eval.meanLoss();
            if (Double.isFinite(loss)) {
                m.put("mean_loss", loss);
                m.put("perplexity", Math.exp(loss));
            } else {
                m.putNull("mean_loss");
                m.putNull("perplexity");
            }
            ClassificationReport rep = r.eval.report();
            if (rep != null) {
                m.set("classification", rep.toJson());
            }
            if (r.eval.generated() > 0) {
                ObjectNode em = m.putObject("exact_match");
                em.put("count", r.eval.generated());
                em.put("matched", r.eval.matched());
                em.put("rate", (double) r.eval.matched() / r.eval.generated());
            }
        }
        return o;
    }
}
