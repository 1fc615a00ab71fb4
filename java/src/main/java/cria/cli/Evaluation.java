// One model scored on fine-tuning examples: loss on the trained tokens, labels chosen by log-probability, greedy exact match.
package cria.cli;

import cria.CriaException;
import cria.engine.GenerateOptions;
import cria.engine.Generation;
import cria.engine.Session;
import cria.sample.SamplerParams;
import cria.train.ClassificationReport;
import cria.train.Example;
import cria.train.Examples;
import java.util.ArrayList;
import java.util.List;

/**
 * Scores one session's model on bound examples. Every example adds its trained tokens' negative
 * log-likelihood (as {@link Examples#encode} marks them, cut to the context). A classification is
 * predicted as the label whose completion (label and EOS) has the highest total log-probability
 * after the prompt: the prompt is evaluated once, then each label after it (the cache truncated
 * back to the prompt in between); its loss is that of its true label. A prompt/completion is also
 * generated greedily from its prompt, at most the reference's token count + 8 tokens, stopping at
 * an end-of-generation token or before a stop string, and compared with the reference after
 * trimming whitespace. Stop strings serve models that never learned to end a text: stories260K
 * (llama2.c) separates its stories with BOS, and its EOS shares the output row of the hundreds of
 * tokens it never saw, so that no adapter of its layers makes EOS the most likely token; a reference
 * that ends with the stop string ({@code " lily.\n"} with {@code "\n"}) then matches.
 */
final class Evaluation {
    /** Extra tokens a greedy generation may run past the reference's length. */
    static final int EXTRA_TOKENS = 8;

    private final Session session;
    private final List<String> stop;
    private final Examples examples;
    private final int vocab;
    private final int ctx;

    private double nll;
    private long trainedTokens;
    private int count;
    private int truncated;
    private final List<Integer> truth = new ArrayList<>();
    private final List<Integer> predicted = new ArrayList<>();
    private int generated;
    private int matched;

    Evaluation(Session session, Examples examples) {
        this(session, examples, List.of());
    }

    /** Scoring whose greedy generations also end before any of {@code stop}. */
    Evaluation(Session session, Examples examples, List<String> stop) {
        this.session = session;
        this.examples = examples;
        this.stop = List.copyOf(stop);
        this.vocab = session.model().config().vocab();
        this.ctx = session.contextLength();
    }

    /** Scores one example. */
    void add(Example e) {
        count++;
        if (e.kind() == Example.Kind.CLASSIFICATION) {
            classify(e);
            return;
        }
        Examples.Encoded enc = examples.encode(e, ctx, 0, 0);
        truncated += enc.truncated() ? 1 : 0;
        if (enc.tokens().length >= 2) {
            session.reset();
            int[] tokens = enc.tokens();
            boolean[] trained = enc.trained();
            session.evalAll(enc.inputs(), (i, logits) -> {
                if (trained[i + 1]) {
                    nll -= logSoftmax(logits, tokens[i + 1]);
                    trainedTokens++;
                }
            });
        }
        if (e.kind() == Example.Kind.COMPLETION) {
            exactMatch(e);
        }
    }

    private void classify(Example e) {
        List<String> labels = examples.labels();
        int[][] completions = new int[labels.size()][];
        int longest = 0;
        for (int l = 0; l < completions.length; l++) {
            completions[l] = examples.encodeCompletion(e, labels.get(l));
            longest = Math.max(longest, completions[l].length);
        }
        int room = ctx - longest + 1; // the last token of a completion is scored, never evaluated
        if (room < 1) {
            throw new CriaException("a label takes " + longest + " tokens, more than the context of " + ctx + " holds; raise --ctx");
        }
        int[] full = examples.encodePrompt(e);
        int[] prompt = examples.fitPrompt(full, room);
        truncated += prompt.length < full.length ? 1 : 0;
        session.reset();
        float[] last = session.eval(prompt).clone();
        double[] score = new double[labels.size()];
        int best = 0;
        for (int l = 0; l < completions.length; l++) {
            int[] c = completions[l];
            double[] s = {logSoftmax(last, c[0])};
            if (c.length > 1) {
                session.truncate(prompt.length);
                session.evalAll(java.util.Arrays.copyOf(c, c.length - 1), (i, logits) -> s[0] += logSoftmax(logits, c[i + 1]));
            }
            score[l] = s[0];
            if (score[l] > score[best]) {
                best = l;
            }
        }
        int t = labels.indexOf(e.label());
        nll -= score[t];
        trainedTokens += completions[t].length;
        truth.add(t);
        predicted.add(best);
    }

    private void exactMatch(Example e) {
        int[] reference = examples.encodeCompletion(e, e.completion());
        int max = reference.length + EXTRA_TOKENS;
        int[] prompt = examples.fitPrompt(examples.encodePrompt(e), Math.max(1, ctx - max));
        GenerateOptions greedy = GenerateOptions.defaults().withSampler(SamplerParams.greedy()).withMaxTokens(max).withStop(stop);
        Generation g = session.generateAfter(prompt, greedy, (id, text) -> true);
        generated++;
        matched += ClassificationReport.exactMatch(e.completion(), g.text()) ? 1 : 0;
    }

    /** log(softmax(logits)[token]) in double, max-shifted. */
    private double logSoftmax(float[] logits, int token) {
        return PerplexityCommand.logSoftmax(logits, vocab, token);
    }

    /** Examples scored. */
    int count() {
        return count;
    }

    /** Examples cut to fit the context. */
    int truncated() {
        return truncated;
    }

    /** Trained tokens scored. */
    long trainedTokens() {
        return trainedTokens;
    }

    /** Mean negative log-likelihood per trained token (NaN for none). */
    double meanLoss() {
        return trainedTokens == 0 ? Double.NaN : nll / trainedTokens;
    }

    /** The classification report, or null when no example was a classification. */
    ClassificationReport report() {
        if (truth.isEmpty()) {
            return null;
        }
        return ClassificationReport.of(examples.labels(), truth.stream().mapToInt(Integer::intValue).toArray(),
                predicted.stream().mapToInt(Integer::intValue).toArray());
    }

    /** Prompt/completion examples generated. */
    int generated() {
        return generated;
    }

    /** Of those, the ones whose generation matched the reference. */
    int matched() {
        return matched;
    }
}
