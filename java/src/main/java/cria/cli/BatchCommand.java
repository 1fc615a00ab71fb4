// `cria batch`: JSONL prompts in, JSONL results out, many sequences decoded together, resumable.
package cria.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import cria.CriaException;
import cria.engine.BatchGenerator;
import cria.engine.GenerateOptions;
import cria.engine.Generation;
import cria.engine.Model;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Batch inference for scripts. */
@Command(name = "batch", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Run many prompts together (continuous batching) from a JSONL file; one JSON result line per prompt.",
            "Input lines: {\"id\": ..., \"prompt\": \"...\"} or {\"id\": ..., \"messages\": [{\"role\": \"user\", \"content\": \"...\"}]},",
            "  optional: max_tokens, temperature, top_p, top_k, min_p, seed, stop, repeat_penalty, frequency_penalty, presence_penalty, repeat_last_n.",
            "Output lines keep the id and add text, tokens, prompt_tokens, finish_reason (stop, length, error), timings; in input order.",
            "Example: cria batch -m model.gguf --in prompts.jsonl --out results.jsonl --parallel 16",
            "         cria batch -m model.gguf --in prompts.jsonl --out results.jsonl --resume   (after an interruption)"})
final class BatchCommand extends Verb {
    @Mixin
    ModelArgs modelArgs;

    @Option(names = "--in", required = true, paramLabel = "FILE", description = "prompts, one JSON object per line")
    Path in;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "results, one JSON object per line")
    Path out;

    @Option(names = "--parallel", defaultValue = "8", paramLabel = "N", description = "sequences in flight at most (default: ${DEFAULT-VALUE})")
    int parallel;

    @Option(names = "--resume", description = "keep the results already in --out and run only the prompts missing there")
    boolean resume;

    @Option(names = "--force", description = "overwrite an existing --out file")
    boolean force;

    @Option(names = "--unordered", description = "write results as they finish instead of in input order")
    boolean unordered;

    @Option(names = {"-n", "--max-tokens"}, defaultValue = "128", paramLabel = "N", description = "default max_tokens (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--cache-tokens", defaultValue = "0", paramLabel = "N",
            description = "positions in the shared KV pool (default: parallel x context)")
    int cacheTokens;

    @Mixin
    SamplingArgs sampling;

    private record Job(int index, BatchRequests req, CompletableFuture<Generation> result) {}

    @Override
    public Integer call() throws IOException {
        if (parallel < 1) {
            throw new CriaException("--parallel must be at least 1");
        }
        if (maxTokens < 0) {
            throw new CriaException("-n must not be negative, got " + maxTokens);
        }
        if (cacheTokens < 0) {
            throw new CriaException("--cache-tokens must be 0 (parallel x context) or positive, got " + cacheTokens);
        }
        List<String> lines = readInput();  // a line that is not UTF-8 is null here
        Set<String> done = resume ? resumeFrom() : freshOutput();
        GenerateOptions defaults = new GenerateOptions(maxTokens, sampling.params(), sampling.stop, false);
        List<BatchRequests> todo = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        int skipped = 0;
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line != null && line.isBlank()) {
                continue;
            }
            BatchRequests r = line == null
                    ? BatchRequests.invalid(i + 1, "line " + (i + 1) + ": not valid UTF-8 text")
                    : BatchRequests.parse(line, i + 1, defaults);
            if (!seen.add(r.key())) {
                r = new BatchRequests("line:" + (i + 1), null, null, null, null, "line " + (i + 1) + ": duplicate id " + r.id());
            }
            if (done.contains(r.key())) {
                skipped++;
                continue;
            }
            todo.add(r);
        }
        if (resume) {
            err().println("cria: resuming: " + skipped + " results already in " + out + ", " + todo.size() + " to go");
        }
        int ctx = modelArgs.ctx > 0 ? modelArgs.ctx : 2048;
        long t0 = System.nanoTime();
        int errors = 0;
        long generated = 0;
        try (Model model = Model.load(modelArgs.model, modelArgs.modelOptions(), err()::println)) {
            int modelCtx = model.config().trainedContextLength();
            ctx = Math.min(ctx, modelCtx);
            Progress progress = new Progress(err(), "batch", todo.size(), "prompts", Progress.stderrIsTerminal());
            BatchGenerator.Options bo = new BatchGenerator.Options(parallel, ctx, modelArgs.batchSize, cacheTokens, modelArgs.kvType);
            ArrayDeque<Job> window = new ArrayDeque<>();
            Map<Integer, String> ready = new HashMap<>();
            int nextToWrite = 0;
            BatchGenerator.Stats stats;
            // --out is emptied only once the model and the batch engine are there, and the seed is
            // said then too: a run that fails before prints its one error line only
            try (BatchGenerator gen = new BatchGenerator(model, bo); BufferedWriter w = openOutput()) {
                if (sampling.seed == null || sampling.temperature > 0) {
                    err().println("cria: default seed " + sampling.seed() + " (lines may give their own)");
                }
                int submitted = 0;
                while (submitted < todo.size() || !window.isEmpty()) {
                    while (submitted < todo.size() && window.size() < 4 * parallel) {
                        BatchRequests r = todo.get(submitted);
                        window.add(new Job(submitted, r, submit(gen, model, r)));
                        submitted++;
                    }
                    Job j = unordered ? firstDone(window) : window.peek();
                    window.remove(j);
                    String line;
                    try {
                        Generation g = j.result.get();
                        generated += g.tokens().length;
                        line = resultLine(j.req, g);
                    } catch (ExecutionException e) {
                        errors++;
                        Throwable c = e.getCause();
                        line = errorLine(j.req, c instanceof CriaException ? c.getMessage() : String.valueOf(c));
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new CriaException("interrupted");
                    }
                    ready.put(j.index, line);
                    while (unordered ? !ready.isEmpty() : ready.containsKey(nextToWrite)) {
                        String l = unordered ? ready.remove(j.index) : ready.remove(nextToWrite++);
                        w.write(l);
                        w.write('\n');
                        w.flush();
                    }
                    progress.add(1);
                    double secs = (System.nanoTime() - t0) / 1e9;
                    progress.status(String.format(Locale.ROOT, "%.1f tokens/s", generated / Math.max(secs, 1e-9)));
                }
                stats = gen.stats();
            }
            progress.finish();
            err().println(String.format(Locale.ROOT, "cria: %d forward steps: %d prompt tokens, %d generated; decode-only steps ran %.1f tokens/s",
                    stats.steps(), stats.promptTokens(), stats.generatedTokens(), stats.decodeTokensPerSecond()));
        } catch (IOException e) {
            throw OutputFiles.failed(out, e); // only the results file is written in there (a full disk, a lost mount)
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        err().println(String.format(Locale.ROOT, "cria: %d prompts (%d errors) in %.1f s, %d tokens generated, %.1f tokens/s; results in %s",
                todo.size(), errors, secs, generated, generated / Math.max(secs, 1e-9), out));
        return 0;
    }

    private static Job firstDone(ArrayDeque<Job> window) {
        while (true) {
            for (Job j : window) {
                if (j.result.isDone()) {
                    return j;
                }
            }
            try {
                CompletableFuture.anyOf(window.stream().map(Job::result).toArray(CompletableFuture[]::new)).get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CriaException("interrupted");
            } catch (ExecutionException e) {
                // one of them failed: it is done, the loop above finds it
            }
        }
    }

    private static CompletableFuture<Generation> submit(BatchGenerator gen, Model model, BatchRequests r) {
        if (r.error() != null) {
            return CompletableFuture.failedFuture(new CriaException(r.error()));
        }
        try {
            int[] ids = r.messages() != null ? model.chatTokens(r.messages()) : model.tokenizer().encode(r.prompt(), true, true);
            return gen.submit(ids, r.options(), (id, t) -> true);
        } catch (CriaException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * The input lines, each decoded on its own: a line that is not valid UTF-8 becomes null (an
     * error line for that line only), the others run. A final line without a newline counts;
     * a CR before the newline is dropped.
     */
    private List<String> readInput() {
        try (java.io.InputStream s = new java.io.BufferedInputStream(Files.newInputStream(in))) {
            List<String> lines = new ArrayList<>();
            java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();
            java.nio.charset.CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                    .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT);
            int b;
            boolean pending = false;
            while ((b = s.read()) >= 0) {
                if (b != '\n') {
                    line.write(b);
                    pending = true;
                    continue;
                }
                lines.add(decode(utf8, line.toByteArray()));
                line.reset();
                pending = false;
            }
            if (pending) {
                lines.add(decode(utf8, line.toByteArray()));
            }
            return lines;
        } catch (NoSuchFileException e) {
            throw new CriaException(in + ": no such file");
        } catch (java.nio.file.AccessDeniedException e) {
            throw new CriaException(in + ": permission denied");
        } catch (IOException e) {
            throw new CriaException(in + ": cannot read: " + e.getMessage());
        }
    }

    private static String decode(java.nio.charset.CharsetDecoder utf8, byte[] bytes) {
        int n = bytes.length;
        if (n > 0 && bytes[n - 1] == '\r') {
            n--;
        }
        try {
            return utf8.reset().decode(java.nio.ByteBuffer.wrap(bytes, 0, n)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            return null;
        }
    }

    /**
     * Checks that --out may be started over. Nothing is deleted or truncated here: the file is
     * emptied when it is opened, after the model has loaded, so a failed load leaves it as it was.
     * Only a regular file (or a link to one) is accepted: a device or a pipe is never replaced.
     */
    private Set<String> freshOutput() {
        boolean exists = OutputFiles.check(out, "--out", OutputFiles.Kind.FILE);
        try {
            if (exists && Files.size(out) > 0 && !force) {
                throw new CriaException(out + " already exists: add --resume to complete it, or --force to start over");
            }
        } catch (IOException e) {
            throw OutputFiles.failed(out, e);
        }
        return Set.of();
    }

    /** Opens --out for the results: appended to with --resume, emptied otherwise (checked again: the load took time). */
    private BufferedWriter openOutput() {
        OutputFiles.check(out, "--out", OutputFiles.Kind.FILE);
        try {
            return Files.newBufferedWriter(out, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    resume ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING);
        } catch (IOException e) {
            throw OutputFiles.failed(out, e);
        }
    }

    /** Keys of the complete result lines in --out; a torn last line (an interrupted write) is cut off. */
    private Set<String> resumeFrom() {
        Set<String> done = new HashSet<>();
        // a regular file only: reading /dev/zero or a pipe would never end, and cutting one is meaningless
        if (!OutputFiles.check(out, "--out", OutputFiles.Kind.FILE)) {
            return done;
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(out);
        } catch (IOException e) {
            throw new CriaException(out + ": cannot read it to resume: " + OutputFiles.reason(e));
        }
        int good = 0;
        int start = 0;
        for (int i = 0; i < bytes.length; i++) {
            if (bytes[i] != '\n') {
                continue;
            }
            String line = new String(bytes, start, i - start, StandardCharsets.UTF_8);
            start = i + 1;
            try {
                JsonNode n = Json.MAPPER.readTree(line);
                if (n != null && n.isObject() && n.has("finish_reason")) {
                    JsonNode id = n.get("id");
                    done.add(id != null && !id.isNull() ? "id:" + id : "line:" + n.path("line").asInt());
                    good = i + 1;
                    continue;
                }
            } catch (IOException e) {
                // not a result line: stop here
            }
            break;
        }
        if (good < bytes.length) {
            try (RandomAccessFile f = new RandomAccessFile(out.toFile(), "rw")) {
                f.setLength(good);
            } catch (IOException e) {
                throw OutputFiles.failed(out, e);
            }
            err().println("cria: cut an incomplete last line from " + out);
        }
        return done;
    }

    private static ObjectNode base(BatchRequests r) {
        ObjectNode o = Json.MAPPER.createObjectNode();
        if (r.id() != null) {
            o.set("id", r.id());
        } else {
            o.putNull("id");
            o.put("line", Integer.parseInt(r.key().substring(r.key().indexOf(':') + 1)));
        }
        return o;
    }

    private static String resultLine(BatchRequests r, Generation g) {
        ObjectNode o = base(r);
        o.put("text", g.text());
        o.put("tokens", g.tokens().length);
        o.put("prompt_tokens", g.promptTokens());
        o.put("finish_reason", g.finishReason() == Generation.FinishReason.CANCELLED ? "stop" : g.finishReason().label());
        ObjectNode t = o.putObject("timings");
        t.put("prompt_ms", Math.round(g.promptNanos() / 1e4) / 100.0);
        t.put("generate_ms", Math.round(g.generateNanos() / 1e4) / 100.0);
        t.put("tokens_per_second", Math.round(g.tokensPerSecond() * 100) / 100.0);
        return Json.write(o);
    }

    private static String errorLine(BatchRequests r, String why) {
        ObjectNode o = base(r);
        o.put("text", "");
        o.put("tokens", 0);
        o.put("finish_reason", "error");
        o.put("error", Main.oneLine(why));
        return Json.write(o);
    }
}
