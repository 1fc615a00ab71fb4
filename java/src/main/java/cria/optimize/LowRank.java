// Low-rank factorization of a model file: which matrices at which rank, the factors computed in parallel and written as GGUF.
package cria.optimize;

import cria.CriaException;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.gguf.GgufTensorInfo;
import cria.gguf.GgufValue;
import cria.gguf.GgufWriter;
import cria.gguf.Metadata;
import cria.model.LowRankTensors;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Replaces chosen block matrices of a model by two low-rank factors ({@link LowRankFactorizer},
 * stored as {@link LowRankTensors} describes: {@code blk.N.<role>_lr_a.weight} [n_in, k] and
 * {@code blk.N.<role>_lr_b.weight} [k, n_out], F32), or with {@link Options#dense} by their
 * product B·A as the dense tensor (F32), for engines that do not know the factors.
 *
 * <p><b>The rank.</b> {@code keep} is the fraction of each chosen matrix's parameters kept:
 * the rank k of an m × n matrix is the largest multiple of {@code rankStep} with
 * {@code k·(m+n) ≤ keep·m·n}. {@code cria lowrank} uses 64 by default: B's rows, k values long,
 * are then whole blocks of the 32-value quantization types (which quantizing needs) and whole
 * pairs of them (which the native CPU kernels need; an odd number of blocks runs on the Java
 * path, measured several times slower in decoding). A matrix for which that gives less than one step, or factors no
 * smaller than the matrix, stays dense (the plan says so).
 *
 * <p><b>SVD-LLM's calibration.</b> G = XᵀX of each input (q, k and v share theirs, as do gate and
 * up) is accumulated in double over the calibration text by a {@link GramPass}. The Gram
 * matrices of a whole model may not fit in memory (8192² doubles are 512 MiB): layers are taken
 * in groups whose matrices fit {@code gramBudget} bytes, one calibration pass per group, each
 * group factorized before the next pass.
 *
 * <p>The output keeps every other tensor and all metadata as they are, adds
 * {@link LowRankTensors#KEY_METHOD}, {@link LowRankTensors#KEY_KEEP} and
 * {@link LowRankTensors#KEY_TARGETS}, and lists tensors in the input's order with a factorized
 * matrix's two factors where the matrix was.
 */
public final class LowRank {
    private LowRank() {}

    /** How the factors are chosen. */
    public enum Method {
        /** Truncated SVD of W: minimizes ‖W − BA‖. */
        SVD("svd"),
        /** Truncated SVD of W·S with G = XᵀX = S·Sᵀ from calibration inputs: minimizes ‖(W − BA)·Xᵀ‖. */
        SVD_LLM("svd-llm");

        public final String label;

        Method(String label) {
            this.label = label;
        }

        /** "svd" or "svd-llm". */
        public static Method parse(String s) {
            for (Method m : values()) {
                if (m.label.equalsIgnoreCase(s)) {
                    return m;
                }
            }
            throw new CriaException("--method " + s + ": use svd or svd-llm");
        }
    }

    /**
     * What to do.
     *
     * @param targets    roles of {@link LowRankTensors#ROLES} to factorize
     * @param rankStep   ranks are multiples of this
     * @param dense      write B·A as the dense tensors instead of the factors
     * @param threads    matrices factorized at once
     * @param gramBudget bytes of Gram matrices held at once (SVD-LLM)
     */
    public record Options(Method method, double keep, List<String> targets, int rankStep, boolean dense, int threads, long gramBudget) {
        public Options {
            if (!(keep > 0 && keep < 1)) {
                throw new CriaException("--keep " + keep + ": give the fraction of parameters to keep, between 0 and 1 (e.g. 0.8)");
            }
            for (String t : targets) {
                if (!LowRankTensors.ROLES.contains(t)) {
                    throw new CriaException("--targets: unknown matrix '" + t + "'; use some of " + String.join(",", LowRankTensors.ROLES));
                }
            }
            if (targets.isEmpty()) {
                throw new CriaException("--targets: name at least one of " + String.join(",", LowRankTensors.ROLES));
            }
            if (rankStep < 1 || rankStep > 4096) {
                throw new CriaException("--rank-step " + rankStep + ": use 1 to 4096 (32 keeps factors quantizable)");
            }
            if (threads < 1) {
                throw new CriaException("--threads must be at least 1, got " + threads);
            }
            targets = List.copyOf(targets);
        }
    }

    /** One matrix to factorize: W is {@code rows} (n_out) × {@code cols} (n_in), kept at {@code rank}. */
    public record Item(int layer, String role, String name, int rows, int cols, int rank) {
        public long params() {
            return (long) rows * cols;
        }

        public long factorParams() {
            return (long) rank * (rows + cols);
        }

        /** The product whose input this matrix reads (the one that shows calibration its inputs first). */
        public String inputOf() {
            String leader = switch (role) {
                case "attn_q", "attn_k", "attn_v" -> "attn_q";
                case "ffn_gate", "ffn_up" -> "ffn_gate";
                default -> role;
            };
            return LowRankTensors.dense(layer, leader);
        }
    }

    /**
     * The matrices to factorize, the notes about chosen ones that stay dense, and parameter
     * counts: of the chosen matrices before and after, and of the whole model before and after.
     */
    public record Plan(List<Item> items, List<String> notes, long chosenBefore, long chosenAfter, long modelBefore, long modelAfter) {
        /** The chosen matrices' parameters kept (after / before). */
        public double kept() {
            return chosenBefore == 0 ? 1 : (double) chosenAfter / chosenBefore;
        }
    }

    /** Runs the calibration text through the model once; returns G = XᵀX (row-major, double) of the inputs of the named products. */
    @FunctionalInterface
    public interface GramPass {
        Map<String, double[]> run(Set<String> products);
    }

    /** Told about each matrix when its factors are ready (from any thread). */
    @FunctionalInterface
    public interface Listener {
        void factorized(Item item, LowRankFactorizer.Factors factors, double seconds);
    }

    /**
     * The plan for a dense model of {@code layers} layers.
     *
     * @throws CriaException when the file is already factorized or lacks a chosen matrix
     */
    public static Plan plan(GgufFile file, int layers, Options o) {
        String factor = LowRankTensors.firstFactor(file);
        if (factor != null) {
            throw new CriaException(file.path() + " is already factorized (" + factor + "); factorize the dense original, or write"
                    + " this one dense with --dense alone");
        }
        List<Item> items = new ArrayList<>();
        Map<String, String> notes = new LinkedHashMap<>();
        long before = 0;
        long after = 0;
        for (int l = 0; l < layers; l++) {
            for (String role : LowRankTensors.ROLES) {
                if (!o.targets().contains(role)) {
                    continue;
                }
                String name = LowRankTensors.dense(l, role);
                GgufTensorInfo t = file.tensor(name);
                if (t == null || t.shape().length < 2) {
                    throw new CriaException(file.path() + ": no matrix " + name + "; the file is not a Llama model Cria can factorize");
                }
                long n = t.shape()[0];
                long m = t.rows();
                int k = LowRankFactorizer.rank(m, n, o.keep(), o.rankStep());
                before += m * n;
                if (k == 0) {
                    notes.putIfAbsent(role + m + "x" + n, String.format(Locale.ROOT, "%s [%d, %d] stays dense: at --keep %s no rank that is a"
                            + " multiple of %d makes its factors smaller than it", role, n, m, fmt(o.keep()), o.rankStep()));
                    after += m * n;
                    continue;
                }
                Item it = new Item(l, role, name, Math.toIntExact(m), Math.toIntExact(n), k);
                items.add(it);
                after += it.factorParams();
            }
        }
        long total = 0;
        for (GgufTensorInfo t : file.tensors()) {
            total += t.elements();
        }
        return new Plan(items, List.copyOf(notes.values()), before, after, total, total - before + after);
    }

    /**
     * Computes every planned factorization and writes the output model. {@code grams} is needed
     * for SVD-LLM (null for SVD).
     */
    public static void write(GgufFile in, Plan plan, Options o, GramPass grams, Path out, Listener listener) {
        if (o.method() == Method.SVD_LLM && grams == null) {
            throw new IllegalArgumentException("SVD-LLM needs calibration");
        }
        Map<String, Item> byName = new HashMap<>();
        for (Item it : plan.items()) {
            byName.put(it.name(), it);
        }
        Metadata md = new Metadata(out.toString());
        in.metadata().asMap().forEach(md::put);
        md.put(LowRankTensors.KEY_METHOD, GgufValue.ofString(o.method().label));
        md.put(LowRankTensors.KEY_KEEP, GgufValue.ofF32((float) o.keep()));
        md.put(LowRankTensors.KEY_TARGETS, GgufValue.ofString(String.join(",", o.targets())));
        ExecutorService pool = Executors.newFixedThreadPool(o.threads(), r -> {
            Thread t = new Thread(r, "cria-lowrank");
            t.setDaemon(true);
            return t;
        });
        try {
            Scheduler s = new Scheduler(in, plan, o, grams, pool, listener);
            GgufWriter w = new GgufWriter(md);
            for (GgufTensorInfo t : in.tensors()) {
                Item it = byName.get(t.name());
                if (it == null) {
                    w.addTensor(t.name(), t.type(), t.shape(), in.data(t));
                } else if (o.dense()) {
                    w.addTensor(t.name(), GgmlType.F32, new long[] {it.cols(), it.rows()}, dst -> floats(s.take(it).product(), dst));
                } else {
                    w.addTensor(LowRankTensors.a(it.layer(), it.role()), GgmlType.F32, new long[] {it.cols(), it.rank()},
                            dst -> floats(s.get(it).a(), dst));
                    w.addTensor(LowRankTensors.b(it.layer(), it.role()), GgmlType.F32, new long[] {it.rank(), it.rows()},
                            dst -> floats(s.take(it).b(), dst));
                }
            }
            w.write(out);
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * Writes a factorized model with every factor pair multiplied back into its dense tensor
     * (F32, the name the pair stands for); everything else as it is. Returns the matrices written.
     */
    public static int densify(GgufFile in, Path out) {
        Metadata md = new Metadata(out.toString());
        in.metadata().asMap().forEach(md::put);
        GgufWriter w = new GgufWriter(md);
        int count = 0;
        for (GgufTensorInfo t : in.tensors()) {
            String dense = LowRankTensors.denseOf(t.name());
            if (dense == null) {
                w.addTensor(t.name(), t.type(), t.shape(), in.data(t));
                continue;
            }
            if (!t.name().endsWith(LowRankTensors.SUFFIX_A + ".weight")) {
                continue; // the B of a pair: written with its A
            }
            String bName = dense.substring(0, dense.length() - ".weight".length()) + LowRankTensors.SUFFIX_B + ".weight";
            GgufTensorInfo bi = in.tensor(bName);
            if (bi == null || t.shape().length < 2 || bi.shape().length < 2 || bi.shape()[0] != t.shape()[1]) {
                throw new CriaException(in.path() + ": " + t.name() + " has no matching " + bName + "; the file is damaged");
            }
            Tensor a = Tensor.of(in, t);
            Tensor b = Tensor.of(in, bi);
            int n = a.rowLength();
            int k = Math.toIntExact(a.rows());
            int m = Math.toIntExact(b.rows());
            w.addTensor(dense, GgmlType.F32, new long[] {n, m}, dst -> {
                float[] af = read(a);
                float[] bf = read(b);
                floats(new LowRankFactorizer.Factors(m, n, k, af, bf, new double[0], 0).product(), dst);
            });
            count++;
        }
        w.write(out);
        return count;
    }

    /**
     * Starts factorizations as the writer needs them: all at once for SVD; for SVD-LLM group by
     * group, each group after its calibration pass. Results wait here until written.
     */
    private static final class Scheduler {
        private final GgufFile in;
        private final Options o;
        private final GramPass grams;
        private final ExecutorService pool;
        private final Listener listener;
        private final Map<Item, Integer> groupOf = new HashMap<>();
        private final List<List<Item>> groups = new ArrayList<>();
        private final Map<Item, Future<LowRankFactorizer.Factors>> running = new HashMap<>();
        private final boolean[] started;

        Scheduler(GgufFile in, Plan plan, Options o, GramPass grams, ExecutorService pool, Listener listener) {
            this.in = in;
            this.o = o;
            this.grams = grams;
            this.pool = pool;
            this.listener = listener;
            if (o.method() == Method.SVD) {
                groups.add(plan.items());
            } else {
                groups.addAll(gramGroups(plan.items(), o.gramBudget()));
            }
            for (int g = 0; g < groups.size(); g++) {
                for (Item it : groups.get(g)) {
                    groupOf.put(it, g);
                }
            }
            started = new boolean[groups.size()];
        }

        LowRankFactorizer.Factors get(Item it) {
            int g = groupOf.get(it);
            if (!started[g]) {
                start(g);
            }
            try {
                return running.get(it).get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CriaException("low-rank factorization interrupted");
            } catch (ExecutionException e) {
                if (e.getCause() instanceof RuntimeException re) {
                    throw re;
                }
                if (e.getCause() instanceof Error err) {
                    throw err;
                }
                throw new IllegalStateException(e.getCause());
            }
        }

        /** The factors, forgotten here afterwards (the last use). */
        LowRankFactorizer.Factors take(Item it) {
            LowRankFactorizer.Factors f = get(it);
            running.remove(it);
            return f;
        }

        private void start(int g) {
            started[g] = true;
            Map<String, double[]> g2 = null;
            if (o.method() == Method.SVD_LLM) {
                Set<String> inputs = new LinkedHashSet<>();
                for (Item it : groups.get(g)) {
                    inputs.add(it.inputOf());
                }
                g2 = grams.run(inputs);
            }
            for (Item it : groups.get(g)) {
                double[] gram = g2 == null ? null : g2.get(it.inputOf());
                if (g2 != null && gram == null) {
                    throw new IllegalStateException("no Gram matrix for " + it.inputOf());
                }
                running.put(it, pool.submit(() -> {
                    long t0 = System.nanoTime();
                    float[] w = read(Tensor.of(in, in.tensor(it.name())));
                    LowRankFactorizer.Factors f = LowRankFactorizer.factorize(w, it.rows(), it.cols(), gram, it.rank());
                    if (listener != null) {
                        listener.factorized(it, f, (System.nanoTime() - t0) / 1e9);
                    }
                    return f;
                }));
            }
        }
    }

    /**
     * Consecutive layers grouped so that each group's Gram matrices (one per distinct input,
     * cols² doubles) fit {@code budget} bytes; a layer that alone exceeds it is a group of its own.
     */
    static List<List<Item>> gramGroups(List<Item> items, long budget) {
        List<List<Item>> groups = new ArrayList<>();
        List<Item> current = new ArrayList<>();
        long bytes = 0;
        int layer = -1;
        List<Item> layerItems = new ArrayList<>();
        long layerBytes = 0;
        Set<String> layerInputs = new LinkedHashSet<>();
        for (int i = 0; i <= items.size(); i++) {
            Item it = i < items.size() ? items.get(i) : null;
            if (it == null || it.layer() != layer) {
                if (!layerItems.isEmpty()) {
                    if (!current.isEmpty() && bytes + layerBytes > budget) {
                        groups.add(current);
                        current = new ArrayList<>();
                        bytes = 0;
                    }
                    current.addAll(layerItems);
                    bytes += layerBytes;
                }
                if (it == null) {
                    break;
                }
                layer = it.layer();
                layerItems = new ArrayList<>();
                layerInputs.clear();
                layerBytes = 0;
            }
            layerItems.add(it);
            if (layerInputs.add(it.inputOf())) {
                layerBytes += 8L * it.cols() * it.cols();
            }
        }
        if (!current.isEmpty()) {
            groups.add(current);
        }
        return groups;
    }

    /** Every value of a tensor as floats, row-major (rows of rowLength). */
    static float[] read(Tensor t) {
        int n = t.rowLength();
        long total = t.rows() * n;
        if (total > Integer.MAX_VALUE - 8) {
            throw new CriaException(t.name() + ": " + total + " values are too many to factorize in one piece");
        }
        float[] w = new float[(int) total];
        for (long r = 0; r < t.rows(); r++) {
            t.dequantizeRow(r, w, (int) (r * n));
        }
        return w;
    }

    private static void floats(float[] v, MemorySegment dst) {
        MemorySegment.copy(v, 0, dst, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, v.length);
    }

    static String fmt(double d) {
        String s = String.format(Locale.ROOT, "%.4f", d);
        return s.replaceAll("0+$", "").replaceAll("\\.$", "");
    }
}
