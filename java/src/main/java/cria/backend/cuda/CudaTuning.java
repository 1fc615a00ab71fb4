// Switches of the CUDA backend's fast paths (system properties), so a device run can compare them and tests can force each.
package cria.backend.cuda;

/**
 * Which kernels the CUDA ops choose. Defaults: tensor-core products for batches of
 * {@code cria.cuda.mmaMinBatch} (16) rows or more, flash attention for prompt batches, the staged
 * matrix-vector kernels and the fused decode kernels on; CUDA graphs off until checked on a device.
 * <ul>
 *   <li>{@code -Dcria.cuda.mma=false}: every product on the float matmul kernels</li>
 *   <li>{@code -Dcria.cuda.flash=false}: prompt attention on the one-query-per-block kernel</li>
 *   <li>{@code -Dcria.cuda.gemv=false}: decode products on the plain matmul kernels</li>
 *   <li>{@code -Dcria.cuda.fuse=false}: the fused ops run as their plain ops (no ropekv, no norm
 *       folded into a gemv, no gemv with the residual add or with SwiGLU)</li>
 *   <li>{@code -Dcria.cuda.graphs=true}: decode steps captured once as a CUDA graph and replayed</li>
 * </ul>
 */
final class CudaTuning {
    boolean mma = flag("cria.cuda.mma", true);
    int mmaMinBatch = Integer.getInteger("cria.cuda.mmaMinBatch", 16);
    boolean flash = flag("cria.cuda.flash", true);
    int flashMinBatch = Integer.getInteger("cria.cuda.flashMinBatch", 16);
    boolean gemv = flag("cria.cuda.gemv", true);
    boolean fuse = flag("cria.cuda.fuse", true);
    boolean graphs = flag("cria.cuda.graphs", false);
    /** Largest batch a decode graph is captured for. */
    int graphMaxBatch = Integer.getInteger("cria.cuda.graphMaxBatch", 8);

    private static boolean flag(String name, boolean dflt) {
        String v = System.getProperty(name);
        return v == null ? dflt : Boolean.parseBoolean(v);
    }

    @Override
    public String toString() {
        return "mma=" + mma + " (from " + mmaMinBatch + " rows), flash=" + flash + " (from " + flashMinBatch + "), gemv=" + gemv
                + ", fuse=" + fuse + ", graphs=" + graphs + " (up to " + graphMaxBatch + " rows)";
    }
}
