// Reads the compiled CUDA kernels (one fatbin per kernel family) from the jar.
package cria.backend.cuda;

import cria.CriaException;
import java.io.IOException;
import java.io.InputStream;

/**
 * The build ({@code make kernels}) compiles kernels/&lt;family&gt;.cu with nvcc into
 * {@code cria/kernels/<family>.fatbin} on the class path (sm_80, sm_86, sm_89, sm_90 code and
 * compute_90 PTX that newer GPUs compile at load).
 */
final class Fatbins {
    private Fatbins() {}

    /** The resource path of a family's fatbin. */
    static String resource(String family) {
        return "cria/kernels/" + family + ".fatbin";
    }

    /** True when this build carries the family's kernels. */
    static boolean present(String family) {
        return Fatbins.class.getClassLoader().getResource(resource(family)) != null;
    }

    /**
     * The fatbin bytes of a family.
     *
     * @throws CriaException when this build has no CUDA kernels
     */
    static byte[] read(String family) {
        try (InputStream in = Fatbins.class.getClassLoader().getResourceAsStream(resource(family))) {
            if (in == null) {
                throw new CriaException("this build of Cria has no CUDA kernels (" + resource(family)
                        + " is missing: nvcc was not found when it was built); install the CUDA toolkit and run 'make', or use --backend cpu");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new CriaException("cannot read the CUDA kernels " + resource(family) + " from the jar: " + e.getMessage(), e);
        }
    }
}
