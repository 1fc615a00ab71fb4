// `cria synth`: random-weight models at real shapes, for tests and benchmarks, in any type cria quantize makes.
package cria.cli;

import cria.gguf.GgufFile;
import cria.synth.Synth;
import cria.synth.SynthShape;
import cria.quantize.LlamaFileType;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Writes a random-weight Llama-family model (llama, qwen2, qwen3, phi3, gemma2, gemma3). */
@Command(name = "synth", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Write a random-weight Llama-family model at a real shape (meaningless text, exact numbers): for tests and benchmarks.",
            "Shapes: tiny, stories15m, llama3.2-1b, llama3.2-3b, llama3-8b, llama3.1-8b, llama2-7b, llama2-13b, mistral-7b,",
            "qwen2.5-0.5b, qwen3-0.6b, phi-3-mini, gemma-2-2b, gemma-3-1b.",
            "Example: cria synth --like llama3.2-1b --type Q4_0 -o llama1b-q4_0.gguf",
            "         cria synth --arch qwen3 --dim 256 --heads 4 --head-dim 128 -o small-qwen3.gguf",
            "         cria synth --arch gemma3 --dim 256 --heads 4 --head-dim 64 --sliding-window 16 --swa-pattern 3 -o small-gemma3.gguf"})
final class SynthCommand extends Verb {
    @Option(names = "--like", defaultValue = "tiny", paramLabel = "NAME", description = "the shape to copy (default: ${DEFAULT-VALUE})")
    String like;

    @Option(names = "--arch", paramLabel = "NAME",
            description = "architecture: llama, qwen2 (q, k, v biases; a qwen2-style byte-level BPE vocabulary), qwen3 (per-head q/k norms; the same vocabulary) phi3 (fused q/k/v and gate/up; llama's SentencePiece-style vocabulary), gemma2 or gemma3 (post-norms, GELU, soft caps (gemma2), q/k norms (gemma3), sliding windows, a Gemma-style SentencePiece vocabulary and chat template); default: the shape's")
    String arch;

    @Option(names = "--type", defaultValue = "F16", paramLabel = "TYPE",
            description = "weight type or llama.cpp mix: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q6_K, ... (default: ${DEFAULT-VALUE})")
    String type;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "the GGUF file to write")
    Path output;

    @Option(names = "--vocab", paramLabel = "VOCAB.gguf", description = "copy the vocabulary (tokenizer.*) of this GGUF; default: a made-up one (SentencePiece for llama, byte-level BPE for qwen)")
    Path vocab;

    @Option(names = {"-s", "--seed"}, defaultValue = "1", paramLabel = "S", description = "random seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--pure", description = "every 2-D weight in TYPE (no llama.cpp mix rules)")
    boolean pure;

    @Option(names = {"-t", "--threads"}, defaultValue = "0", paramLabel = "N", description = "threads (default: all cores)")
    int threads;

    @Option(names = "--dim", paramLabel = "N", description = "override the embedding width")
    Integer dim;

    @Option(names = "--layers", paramLabel = "N", description = "override the number of layers")
    Integer layers;

    @Option(names = "--heads", paramLabel = "N", description = "override the number of query heads")
    Integer heads;

    @Option(names = "--kv-heads", paramLabel = "N", description = "override the number of key/value heads")
    Integer kvHeads;

    @Option(names = "--head-dim", paramLabel = "N", description = "override the width of a head (key_length; default dim / heads, or the shape's)")
    Integer headDim;

    @Option(names = "--rope-dims", paramLabel = "N", description = "rotate only the first N values of each head (partial rotary, as Phi-4-mini; even, at most the head size; default: all)")
    Integer ropeDims;

    @Option(names = "--rope-base", paramLabel = "B", description = "override the rope frequency base (gemma3's windowed layers keep 10000)")
    Float ropeBase;

    @Option(names = "--swa-pattern", paramLabel = "P", description = "gemma2, gemma3: layer l is windowed when l %% P < P - 1 (default: 2 for gemma2, 6 for gemma3)")
    Integer swaPattern;

    @Option(names = "--attn-softcap", paramLabel = "C", description = "gemma2: attention logits become C * tanh(s / C) (default: 50; 0: none)")
    Float attnSoftcap;

    @Option(names = "--final-softcap", paramLabel = "C", description = "gemma2, gemma3: the logits become C * tanh(l / C) (default: 30 for gemma2, none for gemma3)")
    Float finalSoftcap;

    @Option(names = "--ffn", paramLabel = "N", description = "override the feed-forward width")
    Integer ffn;

    @Option(names = "--vocab-size", paramLabel = "N", description = "override the vocabulary size (made-up vocabulary)")
    Integer vocabSize;

    @Option(names = "--ctx", paramLabel = "N", description = "override the context length")
    Integer ctx;

    @Option(names = "--lowrank", paramLabel = "P",
            description = "store block matrices as random low-rank factors at the ranks 'cria lowrank --keep P' gives (for speed tests)")
    Double lowRank;

    @Option(names = "--rank-step", defaultValue = "64", paramLabel = "N", description = "with --lowrank: ranks are multiples of N (default: ${DEFAULT-VALUE})")
    int rankStep;

    @Option(names = "--sliding-window", paramLabel = "N",
            description = "write <arch>.attention.sliding_window = N (Mistral 7B v0.1's key: llama files then attend to the last N positions;"
                    + " gemma2, gemma3: the window of their windowed layers, default 4096 for gemma2, 512 for gemma3)")
    Integer slidingWindow;

    @Override
    public Integer call() {
        if (lowRank != null && !(lowRank > 0 && lowRank < 1)) {
            throw new cria.CriaException("--lowrank " + lowRank + ": give the fraction of parameters to keep, between 0 and 1 (e.g. 0.6)");
        }
        if (rankStep < 1 || rankStep > 4096) {
            throw new cria.CriaException("--rank-step " + rankStep + ": use 1 to 4096");
        }
        double keep = lowRank == null ? 0 : lowRank;
        SynthShape shape = SynthShape.preset(like).with(dim, layers, heads, kvHeads, ffn, vocabSize, ctx);
        if (arch != null) {
            shape = shape.withArch(arch.toLowerCase(java.util.Locale.ROOT));
        }
        if (headDim != null) {
            if (headDim < 2 || headDim > cria.model.LlamaConfig.MAX_HEAD_DIM) {
                throw new cria.CriaException("--head-dim " + headDim + ": use 2 to " + cria.model.LlamaConfig.MAX_HEAD_DIM);
            }
            shape = shape.withHeadDim(headDim);
        }
        if (ropeDims != null) {
            if (ropeDims < 2 || ropeDims > cria.model.LlamaConfig.MAX_HEAD_DIM) {
                throw new cria.CriaException("--rope-dims " + ropeDims + ": use 2 to the head size");
            }
            shape = shape.withRopeDims(ropeDims);
        }
        if (ropeBase != null) {
            if (!(ropeBase >= 1 && ropeBase <= 1e9f)) {
                throw new cria.CriaException("--rope-base " + ropeBase + ": use 1 to 1e9 (e.g. 10000 or 1000000)");
            }
            shape = shape.withRopeBase(ropeBase);
        }
        if (slidingWindow != null && (slidingWindow < 1 || slidingWindow > 1 << 24)) {
            throw new cria.CriaException("--sliding-window " + slidingWindow + ": use 1 to 16777216 positions");
        }
        if (swaPattern != null) {
            if (!shape.gemma()) {
                throw new cria.CriaException("--swa-pattern is for gemma2 and gemma3 (this shape is " + shape.arch() + ")");
            }
            if (swaPattern < 1 || swaPattern > shape.layers() + 1) {
                throw new cria.CriaException("--swa-pattern " + swaPattern + ": use 1 to " + (shape.layers() + 1));
            }
        }
        Integer gemmaWindow = shape.gemma() ? slidingWindow : null;  // a Gemma shape's own; other architectures get the key below
        if (gemmaWindow != null || swaPattern != null) {
            shape = shape.withWindow(gemmaWindow, swaPattern);
        }
        if (attnSoftcap != null || finalSoftcap != null) {
            shape = shape.withSoftcaps(attnSoftcap, finalSoftcap);
        }
        shape.validate();
        java.util.Map<String, cria.gguf.GgufValue> extra = slidingWindow == null || shape.gemma() ? java.util.Map.of()
                : java.util.Map.of(shape.arch() + ".attention.sliding_window", cria.gguf.GgufValue.ofU32(slidingWindow));
        LlamaFileType ftype = LlamaFileType.parse(type);
        OutputFiles.check(output, "-o", OutputFiles.Kind.FILE); // before the weights are made: the writer renames over it
        int n = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        long params = Synth.parameters(shape, keep, rankStep);
        Progress progress = new Progress(err(), "synth", params, "weights", Progress.stderrIsTerminal());
        if (vocab != null) {
            try (GgufFile v = GgufFile.open(vocab)) {
                Synth.write(output, shape, ftype, pure, v.metadata(), seed, n, keep, rankStep, extra, progress::add);
            }
        } else {
            Synth.write(output, shape, ftype, pure, null, seed, n, keep, rankStep, extra, progress::add);
        }
        progress.finish();
        out().println("wrote " + output + ": " + shape.name() + " shape (" + shape.arch() + "), " + Units.count(params) + " random weights"
                + (lowRank == null ? "" : String.format(java.util.Locale.ROOT, " (%.1f%% of %s: low-rank factors at --keep %s)",
                        100.0 * params / shape.parameters(), Units.count(shape.parameters()), lowRank)) + ", "
                + ftype + (pure ? " (pure)" : "") + ", " + Units.bytes(output.toFile().length()));
        return 0;
    }
}
