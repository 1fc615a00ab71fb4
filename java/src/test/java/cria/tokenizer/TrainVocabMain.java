// Test-scope tool: trains a vocabulary on a corpus's training split and writes it into a tiny random-weight GGUF model.
package cria.tokenizer;

import cria.gguf.Metadata;
import cria.quantize.LlamaFileType;
import cria.synth.Synth;
import cria.synth.SynthShape;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code TrainVocabMain CORPUS SIZE OUT.gguf [--mixed-scripts]}: trains {@link VocabTrainer} with SIZE tokens on the
 * first 90 % of CORPUS's lines (the rest is the held-out split that tools/vocab-compare measures
 * on) and writes a 1-layer random-weight model carrying the vocabulary, which {@code cria tokenize}
 * and llama.cpp's {@code llama-tokenize} load. Used by tools/vocab-compare and tools/vocab-vs-llamacpp
 * until the CLI has {@code cria train --vocab-size}. {@code --mixed-scripts} lets pieces mix
 * letters with punctuation ({@link VocabTrainer#splitByScript(boolean)} off).
 */
public final class TrainVocabMain {
    private TrainVocabMain() {}

    /** Entry point; see the class comment for the arguments. */
    public static void main(String[] args) throws Exception {
        boolean mixed = args.length == 4 && args[3].equals("--mixed-scripts");
        if (args.length != 3 && !mixed) {
            System.err.println("usage: TrainVocabMain CORPUS SIZE OUT.gguf [--mixed-scripts]");
            System.exit(2);
        }
        List<String> lines = Files.readAllLines(Path.of(args[0]));
        List<String> train = lines.subList(0, lines.size() * 9 / 10);
        int size = Integer.parseInt(args[1]);
        long bytes = 0;
        for (String s : train) {
            bytes += s.length() + 1;
        }
        long t0 = System.nanoTime();
        TrainedVocab v = new VocabTrainer(size).splitByScript(!mixed).train(train);
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.err.printf("trained %d tokens on %d lines (%.1f MB) in %.2f s%n", v.size(), train.size(), bytes / 1e6, seconds);
        Metadata md = new Metadata(args[2]);
        v.writeTo(md);
        SynthShape shape = SynthShape.preset("tiny").with(64, 1, 2, 2, 128, size, 512);
        Synth.write(Path.of(args[2]), shape, LlamaFileType.F32, true, md, 1, 1, null);
    }
}
