// Several LoRA adapters summed into one low-rank correction per adapted tensor: A stacked, B scaled and stacked, F32 off-heap.
package cria.model;

import cria.CriaException;
import cria.gguf.GgmlType;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The adapters applied to one base model, read once. For a base tensor W adapted by pairs
 * (A<sub>i</sub>, B<sub>i</sub>) at factors s<sub>i</sub> ({@link LoraAdapter#scale}), the
 * correction {@code Σ s_i·B_i·A_i} is the product of two matrices: A (the A<sub>i</sub> one under
 * the other, {@link #rank()} rows of W's inputs) and B' (the s<sub>i</sub>·B<sub>i</sub> side by
 * side, W's outputs rows of {@link #rank()} values). Both are F32 tensors in off-heap memory this
 * object owns, so a backend can make them resident like any weight, and the forward pass needs
 * no scale op: {@code y = W·x + B'·(A·x)}.
 *
 * <p>Every product has the same rank: the largest sum of ranks over the adapted tensors, rounded
 * up to a multiple of 4 (whole 16-byte rows for the GPU's vector kernels), the rest zero rows of
 * A and zero columns of B', which add exact zeros. So one activation buffer of that width serves
 * every correction.
 *
 * <p>Every value is checked (finite, and finite once scaled) as it is copied; a failure is one line
 * naming the adapter file and tensor.
 */
public final class LoraStack implements AutoCloseable {
    /** An adapter at a user scale (1 = as trained, 0 = off, negative = reversed). */
    public record Use(LoraAdapter adapter, float scale) {}

    /**
     * The summed correction of one base tensor. {@code a}: ggml shape [inputs, rank];
     * {@code b}: [rank, outputs], already scaled. {@code used}: the rank actually filled (the rest is zero padding).
     */
    public record Product(String base, Tensor a, Tensor b, int used) {
        /** Input width (the base tensor's ne[0]). */
        public int inputs() {
            return a.rowLength();
        }

        /** Output width (the base tensor's ne[1]). */
        public int outputs() {
            return Math.toIntExact(b.rows());
        }
    }

    /** No adapters. */
    public static final LoraStack NONE = new LoraStack(null, Map.of(), 0, List.of());

    private final Arena arena;
    private final Map<String, Product> products;
    private final int rank;
    private final List<Use> uses;

    private LoraStack(Arena arena, Map<String, Product> products, int rank, List<Use> uses) {
        this.arena = arena;
        this.products = Collections.unmodifiableMap(products);
        this.rank = rank;
        this.uses = List.copyOf(uses);
    }

    /**
     * Opens adapter files ({@code files[i]} at {@code scales[i]}), checks each against the base and
     * sums them ({@link #of}); their files are closed again. Norm tensors an adapter carries are
     * ignored, as llama.cpp ignores them, with a warning to {@code warnings}.
     */
    public static LoraStack open(cria.gguf.GgufFile base, List<java.nio.file.Path> files, float[] scales,
                                 java.util.function.Consumer<String> warnings) {
        if (files.isEmpty()) {
            return NONE;
        }
        List<LoraAdapter> opened = new java.util.ArrayList<>();
        try {
            List<Use> uses = new java.util.ArrayList<>();
            for (int i = 0; i < files.size(); i++) {
                LoraAdapter a = LoraAdapter.open(files.get(i), base);
                opened.add(a);
                uses.add(new Use(a, scales[i]));
                if (!a.ignored().isEmpty()) {
                    warnings.accept("cria: warning: " + a.path() + ": " + a.ignored().size() + " adapted norm tensor"
                            + (a.ignored().size() == 1 ? "" : "s") + " ignored, as llama.cpp ignores them (" + a.ignored().get(0)
                            + (a.ignored().size() > 1 ? ", ..." : "") + ")");
                }
            }
            return of(uses);
        } finally {
            opened.forEach(LoraAdapter::close);
        }
    }

    /**
     * Reads and sums the adapters (each already checked against the base by
     * {@link LoraAdapter#open}). The adapters may be closed afterwards: the stack holds copies.
     *
     * @throws CriaException when a value is not finite, a scale is not finite, or the copies do not fit in memory
     */
    public static LoraStack of(List<Use> uses) {
        if (uses.isEmpty()) {
            return NONE;
        }
        // the stacked rank and shapes of every adapted tensor, before anything is allocated
        Map<String, int[]> shapes = new LinkedHashMap<>();  // name -> {inputs, outputs, rank sum}
        for (Use u : uses) {
            if (!Float.isFinite(u.scale())) {
                throw new CriaException(u.adapter().path() + ": the scale " + u.scale() + " is not a finite number");
            }
            for (LoraAdapter.Pair p : u.adapter().pairs().values()) {
                int[] s = shapes.computeIfAbsent(p.base(), k -> new int[] {p.inputs(), p.outputs(), 0});
                s[2] += p.rank();  // at most 4096 per adapter: no overflow for any sane count of adapters
            }
        }
        int max = 0;
        for (int[] s : shapes.values()) {
            max = Math.max(max, s[2]);
        }
        int rank = (max + 3) / 4 * 4;
        long bytes = 0;
        for (int[] s : shapes.values()) {
            bytes += 4L * rank * ((long) s[0] + s[1]);
        }
        Arena arena = Arena.ofShared();
        try {
            Map<String, Product> products = new LinkedHashMap<>();
            MemorySegment all;
            try {
                all = arena.allocate(Math.max(bytes, 64), 64);
            } catch (OutOfMemoryError e) {
                throw new CriaException("the adapters need " + (bytes >> 20) + " MiB of memory, which this machine cannot give");
            }
            long at = 0;
            for (Map.Entry<String, int[]> e : shapes.entrySet()) {
                String name = e.getKey();
                int in = e.getValue()[0];
                int out = e.getValue()[1];
                MemorySegment a = all.asSlice(at, 4L * rank * in);
                at += a.byteSize();
                MemorySegment b = all.asSlice(at, 4L * rank * out);
                at += b.byteSize();
                int k0 = 0;
                for (Use u : uses) {
                    LoraAdapter.Pair p = u.adapter().pair(name);
                    if (p != null) {
                        copy(u, p, u.adapter().scale(p, u.scale()), a, b, k0, rank);
                        k0 += p.rank();
                    }
                }
                products.put(name, new Product(name, new Tensor(name + SUFFIX_A, GgmlType.F32, new long[] {in, rank}, a),
                        new Tensor(name + SUFFIX_B, GgmlType.F32, new long[] {rank, out}, b), k0));
            }
            return new LoraStack(arena, products, rank, uses);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /** Names of the stacked copies (for messages and device allocations). */
    private static final String SUFFIX_A = LoraAdapter.SUFFIX_A + ".stacked";
    private static final String SUFFIX_B = LoraAdapter.SUFFIX_B + ".scaled";

    /** Rows A[k0 ..] = p.a's rows; columns B'[.][k0 ..] = factor · p.b's rows. */
    private static void copy(Use u, LoraAdapter.Pair p, float factor, MemorySegment a, MemorySegment b, int k0, int rank) {
        int in = p.inputs();
        int out = p.outputs();
        int r = p.rank();
        float[] row = new float[Math.max(in, r)];
        for (int k = 0; k < r; k++) {
            p.a().dequantizeRow(k, row, 0);
            for (int c = 0; c < in; c++) {
                finite(u, p.a(), row[c], k, c, false);
            }
            MemorySegment.copy(row, 0, a, ValueLayout.JAVA_FLOAT, 4L * (k0 + k) * in, in);
        }
        for (int o = 0; o < out; o++) {
            p.b().dequantizeRow(o, row, 0);
            for (int c = 0; c < r; c++) {
                finite(u, p.b(), row[c], o, c, false);
                row[c] *= factor;
                finite(u, p.b(), row[c], o, c, true);
            }
            MemorySegment.copy(row, 0, b, ValueLayout.JAVA_FLOAT, 4L * ((long) o * rank + k0), r);
        }
    }

    private static void finite(Use u, Tensor t, float v, long row, int col, boolean scaled) {
        if (!Float.isFinite(v)) {
            throw new CriaException(u.adapter().path() + ": tensor " + t.name() + " holds " + (scaled ? "a value that overflows once scaled by "
                    + u.scale() : "a non-finite value (" + v + ")") + " at row " + row + ", column " + col
                    + (scaled ? "; lower the scale" : "; the adapter is corrupt"));
        }
    }

    /** True when no adapter is applied. */
    public boolean isEmpty() {
        return products.isEmpty();
    }

    /** The common (padded) rank of every product. */
    public int rank() {
        return rank;
    }

    /** The adapters and their scales, in the order given. */
    public List<Use> uses() {
        return uses;
    }

    /** Every adapted base tensor's correction, by base name. */
    public Map<String, Product> products() {
        return products;
    }

    /** The correction of a base tensor, or null when no adapter changes it. */
    public Product product(String baseName) {
        return products.get(baseName);
    }

    /** Bytes of the stacked copies (what a backend makes resident). */
    public long bytes() {
        long n = 0;
        for (Product p : products.values()) {
            n += p.a().data().byteSize() + p.b().data().byteSize();
        }
        return n;
    }

    /**
     * Adds row {@code o} of a tensor's correction, {@code Σ_k B'[o][k]·A[k]}, to {@code w} (a row
     * of the base tensor, dequantized): the merged weight row, in float.
     */
    public void addTo(Product p, long o, float[] w) {
        int in = p.inputs();
        MemorySegment a = p.a().data();
        MemorySegment b = p.b().data();
        for (int k = 0; k < p.used(); k++) {
            float coef = b.getAtIndex(ValueLayout.JAVA_FLOAT, o * rank + k);
            if (coef != 0) {
                long base = (long) k * in;
                for (int c = 0; c < in; c++) {
                    w[c] += coef * a.getAtIndex(ValueLayout.JAVA_FLOAT, base + c);
                }
            }
        }
    }

    /** Frees the copies; tensors made resident from them on the host must not be used after. */
    @Override
    public void close() {
        if (arena != null && arena.scope().isAlive()) {
            arena.close();
        }
    }
}
