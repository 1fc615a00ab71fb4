// Every kernel family's launcher, loaded together when the backend opens.
package cria.backend.cuda;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The launchers of kernels/*.cu, one per family. */
public final class Kernels {
    final EmbedKernels embed;
    public final RmsnormKernels rmsnorm;
    final MatmulKernels matmul;
    final RopeKernels rope;
    final StoreKvKernels storeKv;
    public final AttentionKernels attention;
    public final EltwiseKernels eltwise;
    final SampleKernels sample;
    public final GemmKernels gemm;
    public final FlashKernels flash;
    public final GemvKernels gemv;
    final RopeKvKernels ropeKv;

    Kernels(Gpu gpu) {
        embed = new EmbedKernels(gpu);
        rmsnorm = new RmsnormKernels(gpu);
        matmul = new MatmulKernels(gpu);
        rope = new RopeKernels(gpu);
        storeKv = new StoreKvKernels(gpu);
        attention = new AttentionKernels(gpu);
        eltwise = new EltwiseKernels(gpu);
        sample = new SampleKernels(gpu);
        gemm = new GemmKernels(gpu);
        flash = new FlashKernels(gpu);
        gemv = new GemvKernels(gpu);
        ropeKv = new RopeKvKernels(gpu);
    }

    /** Every family and the entry points its launcher declares (the build and the tests check both against kernels/). */
    static Map<String, List<KernelSpec>> families() {
        Map<String, List<KernelSpec>> m = new LinkedHashMap<>();
        m.put(EmbedKernels.FAMILY, EmbedKernels.specs());
        m.put(RmsnormKernels.FAMILY, RmsnormKernels.specs());
        m.put(MatmulKernels.FAMILY, MatmulKernels.specs());
        m.put(RopeKernels.FAMILY, RopeKernels.specs());
        m.put(StoreKvKernels.FAMILY, StoreKvKernels.specs());
        m.put(AttentionKernels.FAMILY, AttentionKernels.specs());
        m.put(EltwiseKernels.FAMILY, EltwiseKernels.specs());
        m.put(SampleKernels.FAMILY, SampleKernels.specs());
        m.put(GemmKernels.FAMILY, GemmKernels.specs());
        m.put(FlashKernels.FAMILY, FlashKernels.specs());
        m.put(GemvKernels.FAMILY, GemvKernels.specs());
        m.put(RopeKvKernels.FAMILY, RopeKvKernels.specs());
        return m;
    }

    /** Every declared entry point. */
    static List<KernelSpec> allSpecs() {
        List<KernelSpec> all = new ArrayList<>();
        families().values().forEach(all::addAll);
        return all;
    }
}
