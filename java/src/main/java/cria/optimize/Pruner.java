// Prunes a model file layer by layer (magnitude, Wanda or SparseGPT), each layer calibrated through the layers already pruned.
package cria.optimize;

import cria.CriaException;
import cria.backend.Weight;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import cria.model.LlamaConfig;
import cria.model.LlamaWeights;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Writes a pruned copy of a model. The copy starts as the model with the seven products of every
 * block ({@link #MATRICES}) in F32 (dequantized when the model is quantized; embeddings, norms and
 * the output matrix as they were). The copy is then mapped writable and pruned in place, layer by
 * layer in order: for layer {@code l}, the calibration text runs through the copy, whose layers
 * before {@code l} are already pruned, and only layer {@code l}'s product inputs are kept (the
 * input norms for Wanda, {@code H = X·Xᵀ} for SparseGPT); then its seven matrices are pruned
 * (output rows as comparison groups) and the next layer sees their effect. Magnitude pruning
 * needs no calibration. The result is a normal GGUF with zeros in place, renamed over the target
 * only when complete.
 */
public final class Pruner {
    private Pruner() {}

    /** The products of each block, in the order the forward pass reaches them. */
    public static final List<String> MATRICES = List.of("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down");

    /** The pruning method. */
    public enum Method {
        /** Smallest |W| per output row. */
        MAGNITUDE,
        /** Smallest |W|·‖X‖ per output row (Sun et al.). */
        WANDA,
        /** OBS updates from the damped Hessian (Frantar and Alistarh). */
        SPARSEGPT;

        /** Whether the method needs calibration text. */
        public boolean calibrated() {
            return this != MAGNITUDE;
        }

        /** The name on the command line. */
        public String id() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** The method named {@code s}; a one-line error listing the names otherwise. */
        public static Method parse(String s) {
            for (Method m : values()) {
                if (m.id().equalsIgnoreCase(s == null ? "" : s.strip())) {
                    return m;
                }
            }
            throw new CriaException("--method must be magnitude, wanda or sparsegpt; got '" + s + "'");
        }
    }

    /**
     * How to prune.
     *
     * @param calibration the text (null for magnitude)
     * @param backend     "cpu" or "ref": where the calibration runs
     * @param threads     CPU threads, 0 = one per core
     * @param ctx         tokens per calibration chunk
     * @param maxChunks   most chunks, 0 = all the text gives
     * @param damp        SparseGPT's dampening, a fraction of the mean diagonal of H
     * @param block       SparseGPT's column block
     * @param maskGroup   SparseGPT's comparison group for unstructured masks (row: every row its share; block: the whole block's)
     */
    public record Options(Method method, PrunePattern pattern, Path calibration, String backend, int threads, int ctx,
                          int maxChunks, double damp, int block, SparseGpt.MaskGroup maskGroup) {
        /** Options with SparseGPT's masks chosen per row. */
        public Options(Method method, PrunePattern pattern, Path calibration, String backend, int threads, int ctx,
                       int maxChunks, double damp, int block) {
            this(method, pattern, calibration, backend, threads, ctx, maxChunks, damp, block, SparseGpt.MaskGroup.ROW);
        }

        public Options {
            if (maskGroup == null) {
                throw new IllegalArgumentException("maskGroup");
            }
            if (method.calibrated() && calibration == null) {
                throw new CriaException(method.id() + " needs calibration text: give --calib FILE (a few hundred KB of text like the model's)");
            }
            if (!(damp >= 0 && damp <= 10)) {
                throw new CriaException("--damp must be between 0 and 10 (a fraction of the Hessian's mean diagonal), got " + damp);
            }
            if (block < 1 || block > 1 << 16) {
                throw new CriaException("--block must be 1 to 65536 columns, got " + block);
            }
            if (maxChunks < 0) {
                throw new CriaException("--chunks must be 0 (all) or positive, got " + maxChunks);
            }
        }
    }

    /** Told how the work goes (from the calling thread). */
    public interface Listener {
        /** Before the layers: how many, and the calibration tokens each one runs (0 for magnitude). */
        default void start(int layers, long tokensPerLayer) { }

        /** Layer {@code layer} begins. */
        default void layer(int layer, int layers) { }

        /** {@code n} more calibration tokens have run. */
        default void tokens(long n) { }

        /** A one-line note (a warning, the dampening SparseGPT had to raise). */
        default void log(String line) { }
    }

    /** One pruned matrix: its shape and how many of its weights are now zero. */
    public record Matrix(String name, int rows, int cols, long zeros) {
        /** The fraction of zeros. */
        public double sparsity() {
            return zeros / ((double) rows * cols);
        }

        /** "attn_q", "ffn_down", ...: the name without the layer. */
        public String kind() {
            String n = name.substring(name.indexOf('.', 4) + 1);
            return n.endsWith(".weight") ? n.substring(0, n.length() - ".weight".length()) : n;
        }
    }

    /** What was done: every pruned matrix, and the calibration chunks each layer ran. */
    public record Result(List<Matrix> matrices, int chunks, int ctx) {
        /** Zeros and values per matrix kind, in {@link #MATRICES} order: {zeros, values}. */
        public Map<String, long[]> byKind() {
            Map<String, long[]> out = new LinkedHashMap<>();
            for (String k : MATRICES) {
                out.put(k, new long[2]);
            }
            for (Matrix m : matrices) {
                long[] a = out.get(m.kind());
                a[0] += m.zeros();
                a[1] += (long) m.rows() * m.cols();
            }
            return out;
        }

        /** The fraction of zeros over every pruned matrix. */
        public double sparsity() {
            long z = 0;
            long n = 0;
            for (Matrix m : matrices) {
                z += m.zeros();
                n += (long) m.rows() * m.cols();
            }
            return n == 0 ? 0 : z / (double) n;
        }
    }

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * Prunes {@code input} into {@code output} (replaced only once complete).
     *
     * @throws CriaException for a model Cria cannot run, a pattern its rows cannot take, unreadable
     *                       or too short calibration text, or a file that cannot be written
     */
    public static Result prune(Path input, Path output, Options o, Listener listener) {
        Listener l = listener == null ? new Listener() { } : listener;
        Path target = target(output);
        Path work = null;
        try {
            int[][] chunks;
            List<String> targets;
            LlamaConfig config;
            try (GgufFile in = GgufFile.open(input)) {
                GgufTensorInfo emb = in.tensor("token_embd.weight");
                config = LlamaConfig.from(in.metadata(), emb == null ? 0 : (int) Math.min(Integer.MAX_VALUE, emb.rows()));
                LlamaWeights.check(in, config);
                targets = targets(in, config, o);
                chunks = o.method().calibrated() ? chunks(in, o) : new int[0][];
                Metadata md = metadata(in, o, chunks.length, targets);
                work = Files.createTempFile(target.getParent(), "." + target.getFileName() + ".", ".pruning");
                work.toFile().deleteOnExit(); // Ctrl-C mid-run leaves no hidden model-sized file behind
                writeDenseCopy(in, md, targets, work);
            }
            List<Matrix> done = new ArrayList<>();
            try (GgufFile file = GgufFile.open(work, true)) {
                l.start(config.layers(), (long) chunks.length * o.ctx());
                if (o.method().calibrated()) {
                    try (Calibration cal = Calibration.open(file, calibrationOptions(o), l::log)) {
                        for (int layer = 0; layer < config.layers(); layer++) {
                            l.layer(layer, config.layers());
                            Map<String, Object> stats = collect(cal, chunks, layer, o.method(), l);
                            pruneLayer(file, layer, o, stats, done, l);
                        }
                    }
                } else {
                    for (int layer = 0; layer < config.layers(); layer++) {
                        l.layer(layer, config.layers());
                        pruneLayer(file, layer, o, Map.of(), done, l);
                    }
                }
                file.force();
            }
            Files.move(work, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            work = null;
            return new Result(List.copyOf(done), chunks.length, o.ctx());
        } catch (IOException e) {
            throw new CriaException(output + ": cannot write: " + e.getMessage());
        } finally {
            if (work != null) {
                try {
                    Files.deleteIfExists(work);
                } catch (IOException ignored) {
                    // best effort: the working copy is hidden and named after the target
                }
            }
        }
    }

    /** The seven products of every layer, checked against the pattern and the method's limits. */
    private static List<String> targets(GgufFile in, LlamaConfig config, Options o) {
        List<String> names = new ArrayList<>();
        for (int layer = 0; layer < config.layers(); layer++) {
            for (String m : MATRICES) {
                String name = "blk." + layer + "." + m + ".weight";
                GgufTensorInfo t = in.tensor(name);
                if (t == null || t.shape().length != 2) {
                    throw new CriaException(in.path() + ": " + name + " is missing or not a matrix; only LLaMA-style models can be pruned");
                }
                if (!Codecs.supports(t.type())) {
                    throw new CriaException(in.path() + ": " + name + " is " + t.type() + ", which Cria cannot decode");
                }
                if (t.elements() > Integer.MAX_VALUE - 64) {
                    throw new CriaException(in.path() + ": " + name + " has " + t.elements() + " weights, more than Cria prunes in one piece ("
                            + (Integer.MAX_VALUE - 64) + ")");
                }
                int cols = (int) t.rowLength();
                o.pattern().check(cols, in.path() + ": " + name);
                if (o.method() == Method.SPARSEGPT && cols > SparseGpt.MAX_COLS) {
                    throw new CriaException(in.path() + ": " + name + " has rows of " + cols + " inputs; SparseGPT's Hessian is limited to "
                            + SparseGpt.MAX_COLS + " (use wanda)");
                }
                names.add(name);
            }
        }
        return names;
    }

    private static Calibration.Options calibrationOptions(Options o) {
        return new Calibration.Options(o.backend(), o.threads(), o.ctx(), o.maxChunks(), false);
    }

    /** The calibration chunks, cut on the input model (which also proves the model runs before anything is written). */
    private static int[][] chunks(GgufFile in, Options o) {
        try (Calibration cal = Calibration.open(in, calibrationOptions(o), null)) {
            return cal.chunks(o.calibration());
        }
    }

    /** The input's metadata with what the pruning was (earlier cria.prune keys replaced). */
    private static Metadata metadata(GgufFile in, Options o, int chunks, List<String> targets) {
        Metadata md = new Metadata(in.path().toString());
        for (Map.Entry<String, GgufValue> e : in.metadata().asMap().entrySet()) {
            if (!e.getKey().startsWith("cria.prune.")) {
                md.put(e.getKey(), e.getValue());
            }
        }
        boolean allF32 = true;
        for (GgufTensorInfo t : in.tensors()) {
            if (t.shape().length >= 2 && !targets.contains(t.name()) && t.type() != GgmlType.F32) {
                allF32 = false;
            }
        }
        if (allF32) {
            md.put("general.file_type", GgufValue.ofU32(0)); // LLAMA_FTYPE_ALL_F32: every matrix is now F32
        }
        md.put("cria.prune.method", GgufValue.ofString(o.method().id()));
        md.put("cria.prune.pattern", GgufValue.ofString(o.pattern().structured() ? o.pattern().toString() : "unstructured"));
        md.put("cria.prune.sparsity", GgufValue.ofF32((float) o.pattern().sparsity()));
        if (o.method().calibrated()) {
            md.put("cria.prune.calibration.file", GgufValue.ofString(String.valueOf(o.calibration().getFileName())));
            md.put("cria.prune.calibration.chunks", GgufValue.ofU32(chunks));
            md.put("cria.prune.calibration.ctx", GgufValue.ofU32(o.ctx()));
        }
        if (o.method() == Method.SPARSEGPT) {
            md.put("cria.prune.damp", GgufValue.ofF32((float) o.damp()));
            md.put("cria.prune.block", GgufValue.ofU32(o.block()));
            if (!o.pattern().structured()) {
                md.put("cria.prune.mask_group", GgufValue.ofString(o.maskGroup().name().toLowerCase(Locale.ROOT)));
            }
        }
        return md;
    }

    /** The model with its block products in F32, every other tensor as it was. */
    private static void writeDenseCopy(GgufFile in, Metadata md, List<String> targets, Path work) {
        GgufWriter w = new GgufWriter(md);
        java.util.Set<String> dense = new java.util.HashSet<>(targets);
        for (GgufTensorInfo t : in.tensors()) {
            if (dense.contains(t.name()) && t.type() != GgmlType.F32) {
                Tensor src = Tensor.of(in, t);
                w.addTensor(t.name(), GgmlType.F32, t.shape(), dst -> {
                    float[] row = new float[src.rowLength()];
                    long rb = 4L * row.length;
                    for (long r = 0; r < src.rows(); r++) {
                        src.dequantizeRow(r, row, 0);
                        MemorySegment.copy(row, 0, dst, F32, r * rb, row.length);
                    }
                });
            } else {
                w.addTensor(t.name(), t.type(), t.shape(), in.data(t));
            }
        }
        w.write(work);
    }

    /** Layer {@code layer}'s product inputs over every chunk: per shared input, Wanda's norms or SparseGPT's H. */
    private static Map<String, Object> collect(Calibration cal, int[][] chunks, int layer, Method method, Listener l) {
        String prefix = "blk." + layer + ".";
        Map<String, Object> stats = new HashMap<>();
        Map<String, String> leader = new HashMap<>();
        Calibration.Tap tap = (Weight w, MemorySegment x, int n) -> {
            String name = w.name();
            if (!name.startsWith(prefix)) {
                return;
            }
            String kind = name.substring(prefix.length(), name.length() - ".weight".length());
            String group = inputGroup(kind);
            // q, k and v (gate and up) are shown the same rows: count them once, through the first seen
            if (!name.equals(leader.computeIfAbsent(group, g -> name))) {
                return;
            }
            Object s = stats.computeIfAbsent(group, g -> method == Method.WANDA ? new Wanda.Norms(w.cols()) : new SparseGpt.Hessian(w.cols()));
            if (s instanceof Wanda.Norms norms) {
                norms.add(x, n);
            } else {
                ((SparseGpt.Hessian) s).add(x, n);
            }
        };
        cal.run(chunks, tap, l::tokens);
        return stats;
    }

    /** The products that share an input share one group. */
    static String inputGroup(String kind) {
        return switch (kind) {
            case "attn_q", "attn_k", "attn_v" -> "attn_in";
            case "ffn_gate", "ffn_up" -> "ffn_in";
            default -> kind;
        };
    }

    /** Prunes layer {@code layer}'s seven matrices in the mapped file. */
    private static void pruneLayer(GgufFile file, int layer, Options o, Map<String, Object> stats, List<Matrix> done, Listener l) {
        int threads = o.threads() > 0 ? o.threads() : Runtime.getRuntime().availableProcessors();
        for (String kind : MATRICES) {
            String name = "blk." + layer + "." + kind + ".weight";
            Tensor t = Tensor.of(file, name);
            int cols = t.rowLength();
            int rows = Math.toIntExact(t.rows());
            MemorySegment seg = t.data();
            float[] w = new float[rows * cols];
            MemorySegment.copy(seg, F32, 0, w, 0, w.length);
            Object s = stats.get(inputGroup(kind));
            switch (o.method()) {
                case MAGNITUDE -> PruneMasks.magnitude(w, rows, cols, o.pattern());
                case WANDA -> Wanda.prune(w, rows, cols, requireStats(s, Wanda.Norms.class, name).norms(), o.pattern());
                case SPARSEGPT -> {
                    SparseGpt.Hessian h = requireStats(s, SparseGpt.Hessian.class, name);
                    SparseGpt.Result r = SparseGpt.prune(w, rows, cols, h.matrix(), o.pattern(), o.maskGroup(), o.damp(), o.block(), threads);
                    if (r.raised()) {
                        l.log(name + ": H was not positive definite; dampening raised to " + String.format(Locale.ROOT, "%.3g", r.damp()));
                    }
                }
            }
            MemorySegment.copy(w, 0, seg, F32, 0, w.length);
            done.add(new Matrix(name, rows, cols, PruneMasks.zeros(w)));
        }
    }

    private static <T> T requireStats(Object s, Class<T> type, String name) {
        if (!type.isInstance(s)) {
            throw new IllegalStateException("the calibration pass showed no input of " + name);
        }
        return type.cast(s);
    }

    /**
     * The file to rename the result over: {@link GgufWriter#target}'s rules (links followed, only a
     * regular file or a new one), and its folder must exist.
     */
    private static Path target(Path out) {
        Path abs = GgufWriter.target(out);
        if (abs.getParent() == null || !Files.isDirectory(abs.getParent())) {
            throw new CriaException(out + ": folder " + abs.getParent() + " does not exist; create it first or give another path");
        }
        return abs;
    }
}
