// The conformance suite's one tolerance table: how far each op's output may be from ref's, per weight type and target kind.
package cria.backend.conformance;

import cria.backend.conformance.Target.Kind;
import cria.gguf.GgmlType;
import java.util.EnumMap;
import java.util.Map;

/**
 * Every bound is a relative RMS error ||got - ref|| / ||ref|| judged by {@link cria.bench.Compare}
 * (which also bounds each element by max(50 x tol, 1e-4) x the RMS of ref, and fails any NaN ref
 * does not have: outputs start as NaN). A planted bug gives errors of order 1.
 *
 * <pre>
 * check                                cpu-java  cpu-native  cuda    why
 * matmul, F32/F16/BF16 weights         1e-5      1e-5        1e-5    float products, another summation order
 * matmul, quantized weights            1e-5      5e-2        2e-5    native: activations quantized to 8 bits, a scale
 *                                                                    per block (an outlier in the block costs the
 *                                                                    rest precision): measured up to 2.4e-2 on 12
 *                                                                    outputs (max of 8640), p99 1.3e-2, and 2.67e-2
 *                                                                    on a Q4_K product of 1 x 512 (seed
 *                                                                    -3514668791876113077): few outputs make the
 *                                                                    measure heavy-tailed; java and cuda: weights
 *                                                                    dequantized, float activations
 * silu(gate) * up of quantized         1e-5      5e-2        2e-5    the product of two such products: both
 *   products (rmsnormGateUpSwiglu)                                   errors add (native measured up to 2.4e-2)
 * embed (any table type)               1e-6      1e-6        1e-6    a dequantized row: float rounding at most
 * rmsnorm, also the normalized rows    1e-6      1e-6        1e-6    float sums of squares in another order
 *   of the fused norm + product ops
 * rope                                 1e-6      1e-6        1e-6    sin/cos of large angles in float
 * swiglu, add                          1e-6      1e-6        1e-6    exp in float
 * gather                               0         0           0       a copy
 * attention                            1e-5      1e-5        1e-5    softmax and sums over up to 301 positions
 * a fused op against the same          1e-6      1e-6        1e-5    Ops: a fused op leaves what its plain ops
 *   target's plain ops                                               leave, within float rounding (cpu-java: the
 *                                                                    JIT changes the last bits, ~2e-7; cuda folds
 *                                                                    the norm into the product, ~5e-7)
 * KV cache bytes after storeKv; v      exact     exact       exact   f32 copies, f16 conversion rounds to nearest
 *   after ropeStoreKv (unchanged)
 * </pre>
 * Measured errors are 10 to 100 times below these bounds except where noted (print them with
 * {@code -Dcria.test.errors=true}). The products inside the fused ops use the matmul rows, and so
 * do results built on a product (a residual sum); the normalized rows use rmsnorm's.
 */
final class Tolerances {
    private Tolerances() {}

    /** A row of the table. */
    enum Check {
        MATMUL_FLOAT, MATMUL_QUANTIZED, SWIGLU_OF_QUANTIZED_PRODUCTS, EMBED, RMSNORM, ROPE, ELEMENTWISE, GATHER, ATTENTION,
        /** Attention of prompt batches (16+ entries): CUDA's flash kernel rounds Q and P to f16 (CudaPrefillTest's bound). */
        PROMPT_ATTENTION,
        FUSED_VS_PLAIN
    }

    private static final Map<Check, double[]> TABLE = new EnumMap<>(Check.class);

    static {
        //                                   cpu-java  cpu-native  cuda
        TABLE.put(Check.MATMUL_FLOAT,     new double[] {1e-5, 1e-5, 1e-5});
        TABLE.put(Check.MATMUL_QUANTIZED, new double[] {1e-5, 5e-2, 2e-5});
        TABLE.put(Check.SWIGLU_OF_QUANTIZED_PRODUCTS, new double[] {1e-5, 5e-2, 2e-5});
        TABLE.put(Check.EMBED,            new double[] {1e-6, 1e-6, 1e-6});
        TABLE.put(Check.RMSNORM,          new double[] {1e-6, 1e-6, 1e-6});
        TABLE.put(Check.ROPE,             new double[] {1e-6, 1e-6, 1e-6});
        TABLE.put(Check.ELEMENTWISE,      new double[] {1e-6, 1e-6, 1e-6});
        TABLE.put(Check.GATHER,           new double[] {0, 0, 0});
        TABLE.put(Check.ATTENTION,        new double[] {1e-5, 1e-5, 1e-5});
        TABLE.put(Check.PROMPT_ATTENTION, new double[] {1e-5, 1e-5, 3e-3});
        TABLE.put(Check.FUSED_VS_PLAIN,   new double[] {1e-6, 1e-6, 1e-5});
    }

    /** The bound for {@code check} on a target of this kind. */
    static double of(Check check, Kind kind) {
        return TABLE.get(check)[kind.ordinal()];
    }

    /** The bound for a product with weights of type {@code t}. */
    static double matmul(GgmlType t, Kind kind) {
        return of(t.isQuantized() ? Check.MATMUL_QUANTIZED : Check.MATMUL_FLOAT, kind);
    }

    /** The bound for silu(gate) * up, gate and up products with weights of type {@code t}. */
    static double swigluOfProducts(GgmlType t, Kind kind) {
        return t.isQuantized() ? of(Check.SWIGLU_OF_QUANTIZED_PRODUCTS, kind) : matmul(t, kind);
    }
}
