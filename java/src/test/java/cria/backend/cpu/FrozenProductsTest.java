package cria.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import cria.backend.HostBuf;
import cria.gguf.GgmlType;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Products with a frozen quantized weight streamed in many small panels (several per group, four
 * groups): out = x·wᵀ, dx = dout·w (written and accumulated) and the cross-entropy with its dx
 * against the same sums in double over the dequantized weight, on 1 and 2 threads and both paths.
 */
class FrozenProductsTest {

    @ParameterizedTest(name = "{0} native={1} threads={2}")
    @CsvSource({"Q8_0,true,2", "Q4_K,true,2", "Q8_0,false,2", "Q8_0,true,1"})
    void panelsGiveTheProductsOfTheDequantizedWeight(String typeName, boolean useNative, int threads) {
        GgmlType type = GgmlType.valueOf(typeName);
        int rows = 301;
        int cols = 256;
        int n = 5;
        SplittableRandom r = new SplittableRandom(3);
        float[] wv = new float[rows * cols];
        for (int i = 0; i < wv.length; i++) {
            wv[i] = (float) r.nextGaussian();
        }
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(threads, useNative)) {
            long rowBytes = type.rowBytes(cols);
            MemorySegment data = arena.allocate(rowBytes * rows, 64);
            for (int i = 0; i < rows; i++) {
                Codecs.of(type).quantize(wv, i * cols, cols, data, i * rowBytes);
            }
            Tensor t = new Tensor("w", type, new long[] {cols, rows}, data);
            double[] w = new double[rows * cols];
            for (int i = 0; i < rows; i++) {
                float[] row = t.dequantizeRow(i);
                for (int c = 0; c < cols; c++) {
                    w[i * cols + c] = row[c];
                }
            }
            CpuTrainOps ops = cpu.trainOps();
            FrozenProducts fp = new FrozenProducts(cpu.pool(), ops.path(), null, 7L * cols); // 7 rows a panel: 43 panels
            FrozenProducts.Weight fw = new FrozenProducts.Weight(t);
            HostBuf x = (HostBuf) ops.allocate("x", n, cols);
            HostBuf g = (HostBuf) ops.allocate("g", n, rows);
            float[] xv = fill(ops, x, r);
            float[] gv = fill(ops, g, r);
            HostBuf out = (HostBuf) ops.allocate("out", n, rows);
            fp.matmul(x, fw, n, out);
            for (int i = 0; i < n; i++) {
                for (int o = 0; o < rows; o++) {
                    double want = 0;
                    for (int c = 0; c < cols; c++) {
                        want += (double) xv[i * cols + c] * w[o * cols + c];
                    }
                    assertEquals(want, out.get(i, o), 1e-4 * Math.max(1, Math.abs(want)), "out[" + i + "][" + o + "]");
                }
            }
            HostBuf dx = (HostBuf) ops.allocate("dx", n, cols);
            float[] before = fill(ops, dx, r);
            for (boolean acc : new boolean[] {true, false}) {
                if (acc) {
                    ops.write(dx, before);
                }
                fp.matmulDx(g, x, fw, n, dx, acc);
                for (int i = 0; i < n; i++) {
                    for (int c = 0; c < cols; c++) {
                        double want = acc ? before[i * cols + c] : 0;
                        for (int o = 0; o < rows; o++) {
                            want += (double) gv[i * rows + o] * w[o * cols + c];
                        }
                        assertEquals(want, dx.get(i, c), 1e-4 * Math.max(1, Math.abs(want)), "dx[" + i + "][" + c + "], accumulate " + acc);
                    }
                }
            }
            int[] targets = {3, -1, 300, 0, 17};
            double loss = fp.crossEntropy(x, fw, targets, n, 0.5f, dx);
            double wantLoss = 0;
            for (int i = 0; i < n; i++) {
                if (targets[i] < 0) {
                    for (int c = 0; c < cols; c++) {
                        assertEquals(0f, dx.get(i, c), "a skipped row has no gradient");
                    }
                    continue;
                }
                double[] logit = new double[rows];
                double max = Double.NEGATIVE_INFINITY;
                for (int o = 0; o < rows; o++) {
                    for (int c = 0; c < cols; c++) {
                        logit[o] += (double) xv[i * cols + c] * w[o * cols + c];
                    }
                    max = Math.max(max, logit[o]);
                }
                double z = 0;
                for (double l : logit) {
                    z += Math.exp(l - max);
                }
                double lse = max + Math.log(z);
                wantLoss += lse - logit[targets[i]];
                for (int c = 0; c < cols; c++) {
                    double want = 0;
                    for (int o = 0; o < rows; o++) {
                        want += 0.5 * (Math.exp(logit[o] - lse) - (o == targets[i] ? 1 : 0)) * w[o * cols + c];
                    }
                    assertEquals(want, dx.get(i, c), 1e-4 * Math.max(1, Math.abs(want)), "xent dx[" + i + "][" + c + "]");
                }
            }
            assertEquals(wantLoss, loss, 1e-4 * wantLoss, "loss");
            fp.close();
            ops.close();
        }
    }

    private static float[] fill(CpuTrainOps ops, HostBuf b, SplittableRandom r) {
        float[] v = new float[b.rows() * b.cols()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        ops.write(b, v);
        return v;
    }
}
