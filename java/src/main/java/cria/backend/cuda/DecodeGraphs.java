// Decode steps as CUDA graphs: a step's launches captured once, then replayed for every step that launches the same.
package cria.backend.cuda;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Keyed by the exact launch list (functions, grids, argument values): a decode step of the same
 * batch shape launches the same kernels with the same arguments every token, because everything
 * that changes per token (token ids, positions, page tables, the attention span) is read by the
 * kernels from device memory that beginStep rewrites before the graph is launched. A step that
 * launches anything else simply gets its own graph (a few are kept, least recently used first out).
 * If capturing fails on a device, graphs are switched off for the backend with one warning and the
 * step runs as plain launches.
 */
final class DecodeGraphs {
    private static final int KEEP = 8;

    private final Gpu gpu;
    private final CudaTuning tuning;
    private final Map<List<LaunchRecorder.Launch>, Object> graphs = new LinkedHashMap<>(16, 0.75f, true);
    private int captures;
    private int replays;

    DecodeGraphs(Gpu gpu, CudaTuning tuning) {
        this.gpu = gpu;
        this.tuning = tuning;
    }

    /** Runs a recorded step: replays its graph, capturing it first when it is new. */
    void run(List<LaunchRecorder.Launch> step) {
        Object g = graphs.get(step);
        if (g == null) {
            try {
                gpu.beginCapture();
                try {
                    for (LaunchRecorder.Launch l : step) {
                        l.queue(gpu);
                    }
                } finally {
                    g = gpu.endCapture();
                }
            } catch (RuntimeException e) {
                tuning.graphs = false;
                System.err.println("cria: CUDA graph capture failed (" + String.valueOf(e.getMessage()).replace('\n', ' ').strip()
                        + "); decode steps run as plain launches from now on");
                for (LaunchRecorder.Launch l : step) {
                    l.queue(gpu);
                }
                return;
            }
            graphs.put(step, g);
            captures++;
            if (graphs.size() > KEEP) {
                var eldest = graphs.entrySet().iterator().next();
                gpu.destroyGraph(eldest.getValue());
                graphs.remove(eldest.getKey());
            }
        } else {
            replays++;
        }
        gpu.launchGraph(g);
    }

    /** Graphs captured so far. */
    int captures() {
        return captures;
    }

    /** Steps that replayed a graph captured earlier. */
    int replays() {
        return replays;
    }

    /** Releases every graph. */
    void close() {
        for (Object g : graphs.values()) {
            gpu.destroyGraph(g);
        }
        graphs.clear();
    }
}
