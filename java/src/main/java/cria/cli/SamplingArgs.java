// Sampling options shared by the verbs that generate: temperature, top-k/p, min-p, penalties, seed, stop strings.
package cria.cli;

import cria.CriaException;
import cria.sample.SamplerParams;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/** A picocli mixin with llama.cpp's sampling options and defaults. */
final class SamplingArgs {
    @Option(names = "--temp", defaultValue = "0.8", paramLabel = "T", description = "temperature; 0 = greedy (default: ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = "--top-k", defaultValue = "40", paramLabel = "K", description = "keep the K most likely tokens; 0 = off (default: ${DEFAULT-VALUE})")
    int topK;

    @Option(names = "--top-p", defaultValue = "0.95", paramLabel = "P", description = "nucleus sampling; 1 = off (default: ${DEFAULT-VALUE})")
    float topP;

    @Option(names = "--min-p", defaultValue = "0.05", paramLabel = "P", description = "drop tokens less than P times as likely as the best; 0 = off (default: ${DEFAULT-VALUE})")
    float minP;

    @Option(names = "--repeat-penalty", defaultValue = "1.0", paramLabel = "R", description = "penalize repeated tokens; 1 = off (default: ${DEFAULT-VALUE})")
    float repeatPenalty;

    @Option(names = "--repeat-last-n", defaultValue = "64", paramLabel = "N", description = "tokens the penalties look back at; -1 = all (default: ${DEFAULT-VALUE})")
    int repeatLastN;

    @Option(names = "--frequency-penalty", defaultValue = "0", paramLabel = "F", description = "subtract F x count of a recent token (default: ${DEFAULT-VALUE})")
    float frequencyPenalty;

    @Option(names = "--presence-penalty", defaultValue = "0", paramLabel = "F", description = "subtract F from tokens seen recently (default: ${DEFAULT-VALUE})")
    float presencePenalty;

    @Option(names = {"-s", "--seed"}, paramLabel = "S", description = "random seed (default: a random one, printed on stderr)")
    Long seed;

    @Option(names = "--stop", paramLabel = "TEXT", description = "stop when this text is generated (repeatable)")
    List<String> stop = new ArrayList<>();

    /** The seed in use: the given one, or a fresh random one. */
    long seed() {
        if (seed == null) {
            seed = new java.security.SecureRandom().nextLong() & 0xffffffffL;
        }
        return seed;
    }

    SamplerParams params() {
        if (stop.contains("")) {
            throw new CriaException("--stop needs some text (an empty stop string would end every generation at once)");
        }
        try {
            return new SamplerParams(temperature, topK, topP, minP, repeatPenalty, repeatLastN, frequencyPenalty,
                    presencePenalty, seed()).validate();
        } catch (IllegalArgumentException e) {
            throw new CriaException(e.getMessage());
        }
    }
}
