// Launcher of kernels/sample.cu: argmax, softmax and top-k sampling of logits rows on the device.
package cria.backend.cuda;

import java.util.List;

/** sample_argmax / sample_topk / sample_softmax: one block of {@link #THREADS} threads per logits row. */
final class SampleKernels extends Launcher {
    static final String FAMILY = "sample";
    static final KernelSpec ARGMAX = new KernelSpec(FAMILY, "sample_argmax", "piip");
    static final KernelSpec TOPK = new KernelSpec(FAMILY, "sample_topk", "piiifffpp");
    static final KernelSpec SOFTMAX = new KernelSpec(FAMILY, "sample_softmax", "piifpi");
    static final int THREADS = 1024;
    /** Largest k of sample_topk (kernels/sample.cu's TOPK_MAX). */
    static final int MAX_K = cria.backend.DeviceSampler.MAX_TOP_K;

    static List<KernelSpec> specs() {
        return List.of(ARGMAX, TOPK, SOFTMAX);
    }

    SampleKernels(Gpu gpu) {
        super(gpu, FAMILY, specs());
    }

    void argmax(long logits, int stride, int vocab, int rows, long out) {
        args.reset().ptr(logits).i32(stride).i32(vocab).ptr(out);
        launch(ARGMAX, rows, 1, 1, THREADS, 0);
    }

    void topk(long logits, int stride, int vocab, int rows, int k, float temperature, float topP, float minP, long uniforms, long out) {
        args.reset().ptr(logits).i32(stride).i32(vocab).i32(k).f32(temperature).f32(topP).f32(minP).ptr(uniforms).ptr(out);
        launch(TOPK, rows, 1, 1, THREADS, 0);
    }

    void softmax(long logits, int stride, int vocab, int rows, float temperature, long out, int outStride) {
        args.reset().ptr(logits).i32(stride).i32(vocab).f32(1f / temperature).ptr(out).i32(outStride);
        launch(SOFTMAX, rows, 1, 1, THREADS, 0);
    }
}
