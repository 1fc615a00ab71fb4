// The CUDA backend: device memory for weights (raw quantized blocks), activations and KV caches; our kernels as Ops.
package cria.backend.cuda;

import cria.CriaException;
import cria.backend.Backend;
import cria.backend.Buf;
import cria.backend.DeviceSampler;
import cria.backend.KvCache;
import cria.backend.Ops;
import cria.backend.Weight;
import cria.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * A backend on one NVIDIA GPU through the CUDA driver API (JCuda). Weights go to the device as
 * the file's blocks, once; uploads wait until the model's last weight is known (the first call
 * of {@link #ops()}, {@link #allocate} or {@link #kvCache}) so that a model too large for the
 * device is refused with the sizes before anything is copied. Activations and caches are
 * allocated once per session; buffers live until the backend closes.
 * <p>Open it with {@link #open()} only after {@code cria.engine.CudaProbe} found a driver.
 */
public final class CudaBackend implements Backend, DeviceSampler {
    private final Gpu device;
    private final LaunchRecorder gpu;
    private final Kernels kernels;
    private final CudaOps ops;
    private final List<CudaWeight> awaitingUpload = new ArrayList<>();
    private long residentBytes;
    private boolean closed;
    // device-side sampling: token ids out, uniforms in
    private int sampleCap;
    private long sampleIds;
    private long sampleUniforms;
    private Gpu.Staging uniformStaging;

    /**
     * Opens the CUDA device named by {@code -Dcria.cuda.device} (default 0).
     *
     * @throws CriaException when the driver, the device or this build's kernels cannot be used; one line saying why
     */
    public static CudaBackend open() {
        return open(Integer.getInteger("cria.cuda.device", 0));
    }

    /** Opens device {@code index}; see {@link #open()}. */
    public static CudaBackend open(int index) {
        Gpu gpu;
        try {
            gpu = JCudaGpu.open(index);
        } catch (LinkageError e) {
            throw new CriaException("the CUDA driver binding (JCuda) could not be loaded (" + JCudaGpu.linkReason(e)
                    + "); use --backend cpu", e);
        }
        try {
            return new CudaBackend(gpu);
        } catch (RuntimeException | Error e) {
            gpu.close();
            throw e;
        }
    }

    /** A backend on any {@link Gpu} (tests pass an emulator). */
    CudaBackend(Gpu device) {
        this.device = device;
        this.gpu = new LaunchRecorder(device);  // everything is queued through it, so decode steps can become graphs
        this.kernels = new Kernels(gpu);
        this.ops = new CudaOps(this, gpu, kernels);
    }

    /** The device as the backend uses it (through the launch recorder). */
    public Gpu gpu() {
        return gpu;
    }

    /** The device itself (JCudaGpu on a GPU). */
    Gpu device() {
        return device;
    }

    /** The ops' kernel switches (tests and the kernel benchmark set them). */
    CudaTuning tuning() {
        return ops.tuning;
    }

    /** The ops as their class (tests reach the step's device batch through it). */
    public CudaOps cudaOps() {
        return ops;
    }

    /** The CUDA-graph cache of decode steps. */
    DecodeGraphs graphs() {
        return ops.graphs();
    }

    public Kernels kernels() {
        return kernels;
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public String describe() {
        return "cuda (" + gpu.describe() + ")";
    }

    /** The ops; the first call uploads the weights made resident so far (see the class comment). */
    @Override
    public Ops ops() {
        commitWeights();
        return ops;
    }

    @Override
    public Buf allocate(String name, int rows, int cols) {
        commitWeights();
        long floats = (long) rows * cols;
        long p = gpu.malloc(4 * floats, "activations (" + name + ")");
        gpu.memset32(p, 0, floats);
        return new CudaBuf(name, rows, cols, p);
    }

    /**
     * Registers a weight; its blocks are uploaded with the others on first use.
     *
     * @throws CriaException when no CUDA kernel reads the tensor's type
     */
    @Override
    public Weight weight(Tensor tensor) {
        if (!CudaTypes.supported(tensor.type())) {
            throw new CriaException("tensor " + tensor.name() + " has type " + tensor.type()
                    + ", which the CUDA backend cannot read yet (it reads " + CudaTypes.list() + "); use --backend cpu");
        }
        CudaWeight w = new CudaWeight(tensor);
        awaitingUpload.add(w);
        return w;
    }

    /**
     * Uploads every registered weight not yet on the device, after checking that they fit.
     *
     * @throws CriaException when they need more than the device's free memory, with both sizes
     */
    void commitWeights() {
        if (awaitingUpload.isEmpty()) {
            return;
        }
        long need = 0;
        for (CudaWeight w : awaitingUpload) {
            need += w.bytes();
        }
        Gpu.MemInfo m = gpu.memInfo();
        if (need > m.free()) {
            throw new CriaException("the model's weights need " + JCudaGpu.mib(need) + " MiB of GPU memory but only "
                    + JCudaGpu.mib(m.free()) + " MiB are free (of " + JCudaGpu.mib(m.total()) + " MiB) on " + gpu.describe()
                    + "; use a smaller or more strongly quantized model, or --backend cpu");
        }
        for (CudaWeight w : awaitingUpload) {
            long p = gpu.malloc(w.bytes(), "weight " + w.name());
            gpu.upload(p, w.tensor().data(), w.bytes());
            w.resident(p);
        }
        residentBytes += need;
        awaitingUpload.clear();
    }

    /** Bytes of weights on the device. */
    public long residentBytes() {
        return residentBytes;
    }

    /** Device memory for the backend's lifetime (small tables). */
    long persistent(long bytes, String what) {
        return gpu.malloc(bytes, what);
    }

    @Override
    public KvCache kvCache(KvCache.Config config) {
        commitWeights();
        Gpu.MemInfo m = gpu.memInfo();
        if (config.bytes() > m.free()) {
            throw new CriaException("the KV cache needs " + JCudaGpu.mib(config.bytes()) + " MiB of GPU memory but only "
                    + JCudaGpu.mib(m.free()) + " MiB are free (of " + JCudaGpu.mib(m.total()) + " MiB) on " + gpu.describe()
                    + "; lower --ctx");
        }
        return new CudaKvCache(gpu, config);
    }

    @Override
    public void download(Buf src, int rows, float[] dst) {
        CudaBuf b = (CudaBuf) src;
        long floats = (long) rows * b.cols();
        if (rows > b.rows() || dst.length < floats) {
            throw new IllegalArgumentException("download of " + rows + " rows of " + b + " into " + dst.length + " floats");
        }
        gpu.download(b.ptr(), MemorySegment.ofArray(dst), 4 * floats);
    }

    @Override
    public void sync() {
        gpu.synchronize();
    }

    // ---- DeviceSampler -----------------------------------------------------------------------

    private void sampleBuffers(int rows) {
        if (rows > sampleCap) {
            if (sampleIds != 0) {
                uniformStaging.awaitIdle();
                gpu.synchronize();
                gpu.free(sampleIds);
                gpu.free(sampleUniforms);
            }
            sampleCap = Math.max(rows, 16);
            sampleIds = gpu.malloc(4L * sampleCap, "sampled token ids");
            sampleUniforms = gpu.malloc(8L * sampleCap, "sampling draws");
            uniformStaging = gpu.staging(8L * sampleCap);
        }
    }

    private static CudaBuf logitsBuf(Buf logits, int rows, int vocab, int outLength) {
        CudaBuf b = (CudaBuf) logits;
        if (rows <= 0 || rows > b.rows() || vocab <= 0 || vocab > b.cols() || outLength < rows) {
            throw new IllegalArgumentException("sampling " + rows + " rows of " + vocab + " logits from " + b);
        }
        return b;
    }

    @Override
    public void argmax(Buf logits, int rows, int vocab, int[] out) {
        CudaBuf b = logitsBuf(logits, rows, vocab, out.length);
        sampleBuffers(rows);
        kernels.sample.argmax(b.ptr(), b.cols(), vocab, rows, sampleIds);
        gpu.download(sampleIds, MemorySegment.ofArray(out), 4L * rows);
    }

    @Override
    public void sample(Buf logits, int rows, int vocab, float temperature, int topK, float topP, float minP,
                       double[] uniforms, int[] out) {
        if (temperature <= 0) {
            argmax(logits, rows, vocab, out);
            return;
        }
        if (!supports(temperature, topK)) {
            throw new IllegalArgumentException("device sampling needs 1 <= top-k <= " + MAX_TOP_K + ", got " + topK);
        }
        CudaBuf b = logitsBuf(logits, rows, vocab, out.length);
        if (uniforms.length < rows) {
            throw new IllegalArgumentException(uniforms.length + " draws for " + rows + " rows");
        }
        sampleBuffers(rows);
        uniformStaging.awaitIdle();
        MemorySegment.copy(uniforms, 0, uniformStaging.segment(), ValueLayout.JAVA_DOUBLE, 0, rows);
        gpu.uploadAsync(sampleUniforms, uniformStaging, 0, 8L * rows);
        kernels.sample.topk(b.ptr(), b.cols(), vocab, rows, Math.min(topK, vocab), temperature, topP, minP, sampleUniforms,
                sampleIds);
        gpu.download(sampleIds, MemorySegment.ofArray(out), 4L * rows);
    }

    @Override
    public void softmax(Buf logits, int rows, int vocab, float temperature, Buf probs) {
        CudaBuf in = logitsBuf(logits, rows, vocab, rows);
        CudaBuf out = (CudaBuf) probs;
        if (!(temperature > 0) || rows > out.rows() || vocab > out.cols()) {
            throw new IllegalArgumentException("softmax of " + rows + " x " + vocab + " at temperature " + temperature + " into " + out);
        }
        kernels.sample.softmax(in.ptr(), in.cols(), vocab, rows, temperature, out.ptr(), out.cols());
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            ops.graphs().close();
            gpu.close();
        }
    }
}
