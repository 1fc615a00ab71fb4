// Times CpuTrainOps' ops at the training benchmark's shapes (GFLOP/s each) and whole training steps (tokens/s).
package cria.bench;

import cria.backend.Buf;
import cria.backend.Rope;
import cria.backend.cpu.CpuBackend;
import cria.backend.cpu.CpuTrainOps;
import java.util.Arrays;
import java.util.Locale;

/**
 * A benchmark main, not a test: {@code TrainOpsBench [small|large|both] [threads] [native|java] [steps]}.
 * For each shape it times every op of one layer at the micro-batch's n rows (median of several
 * runs after warm-up) and prints milliseconds and GFLOP/s (2 flops per multiply-add), then times
 * whole training steps of the model ({@link TrainModel}: forward, backward, AdamW) and prints
 * tokens per second. Run after {@code make native} and {@code mvn test-compile}:
 * <pre>
 * java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dcria.native.dir=target/native \
 *   -cp target/test-classes:target/classes cria.bench.TrainOpsBench both 2 native
 * </pre>
 */
public final class TrainOpsBench {
    private TrainOpsBench() {}

    public static void main(String[] args) {
        String which = args.length > 0 ? args[0] : "both";
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        boolean nat = args.length <= 2 || !args[2].equals("java");
        int steps = args.length > 3 ? Integer.parseInt(args[3]) : 3;
        try (CpuBackend be = new CpuBackend(threads, nat); CpuTrainOps t = be.trainOps()) {
            System.out.println("# " + be.describe() + ", train ops " + (t.usesNativeKernels() ? "native" : "Java"));
            if (which.equals("small") || which.equals("both")) {
                run(t, "small", TrainModel.SMALL, steps);
            }
            if (which.equals("large") || which.equals("both")) {
                run(t, "large", TrainModel.LARGE, steps);
            }
        }
    }

    interface Op {
        void run();
    }

    /** -Dbench.only=a,b: time only the ops whose names start with one of these (and no whole step unless "step" is one). */
    static final String[] ONLY = System.getProperty("bench.only", "").isEmpty() ? null : System.getProperty("bench.only").split(",");

    static boolean wanted(String name) {
        if (ONLY == null) {
            return true;
        }
        for (String o : ONLY) {
            if (name.startsWith(o)) {
                return true;
            }
        }
        return false;
    }

    /** Median milliseconds of reps runs after warm runs. */
    static double time(Op op, int warm, int reps) {
        for (int i = 0; i < warm; i++) {
            op.run();
        }
        double[] ms = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            op.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(ms);
        return ms[reps / 2];
    }

    static void line(String name, double ms, double macs) {
        System.out.printf(Locale.ROOT, "  %-28s %9.3f ms %8.1f GFLOP/s%n", name, ms, macs > 0 ? 2 * macs / ms / 1e6 : 0);
    }

    static void run(CpuTrainOps t, String label, TrainModel.Shape s, int steps) {
        int n = s.n(), d = s.dim(), hd = s.headDim(), qd = s.heads() * hd, kd = s.kvHeads() * hd, f = s.ffn();
        System.out.printf(Locale.ROOT, "%s: dim %d, %d layers, %d/%d heads (headDim %d), ffn %d, vocab %d, ctx %d, batch %d: n = %d%n",
                label, d, s.layers(), s.heads(), s.kvHeads(), hd, f, s.vocab(), s.len(), s.seqs(), n);
        Buf x = rand(t, n, d), q = rand(t, n, qd), k = rand(t, n, kd), v = rand(t, n, kd), att = rand(t, n, qd), lse = rand(t, n, s.heads());
        Buf gate = rand(t, n, f), up = rand(t, n, f), h = rand(t, n, f), dq = rand(t, n, qd), dk = rand(t, n, kd), dv = rand(t, n, kd);
        Buf wq = rand(t, qd, d), w1 = rand(t, f, d), w2 = rand(t, d, f), dwq = rand(t, qd, d), dw1 = rand(t, f, d), dw2 = rand(t, d, f);
        Buf out = rand(t, s.vocab(), d), dout = rand(t, s.vocab(), d), xn = rand(t, n, d), dx = rand(t, n, d), rstd = rand(t, n, 1);
        Buf nw = rand(t, 1, d), dnw = rand(t, 1, d);
        int[] targets = new int[n];
        for (int i = 0; i < n; i++) {
            targets[i] = (i * 31) % s.vocab();
        }
        Rope rope = new Rope(hd, 10000f, 1f, null, false);
        double att1 = (double) s.heads() * hd * n * (s.len() + 1) / 2.0; // multiply-adds of q·k over the causal half
        int w = 30, r = 5; // warm runs: until the JIT has compiled the Java code in between
        double total = 0;
        double ms;
        if (wanted("matmul x·wqᵀ [" + qd + "x" + d + "]")) {
            ms = time(() -> t.matmul(xn, wq, n, q), w, r);
            line("matmul x·wqᵀ [" + qd + "x" + d + "]", ms, (double) n * qd * d);
        }
        if (wanted("matmul x·w1ᵀ [" + f + "x" + d + "]")) {
            ms = time(() -> t.matmul(xn, w1, n, gate), w, r);
            line("matmul x·w1ᵀ [" + f + "x" + d + "]", ms, (double) n * f * d);
        }
        if (wanted("matmul h·w2ᵀ [" + d + "x" + f + "]")) {
            ms = time(() -> t.matmul(h, w2, n, x), w, r);
            line("matmul h·w2ᵀ [" + d + "x" + f + "]", ms, (double) n * f * d);
        }
        if (wanted("matmul dx = g·w1")) {
            ms = time(() -> t.matmulBackward(gate, xn, w1, n, dx, false, null), w, r);
            line("matmul dx = g·w1", ms, (double) n * f * d);
        }
        if (wanted("matmul dx = g·w2")) {
            ms = time(() -> t.matmulBackward(x, h, w2, n, gate, false, null), w, r);
            line("matmul dx = g·w2", ms, (double) n * f * d);
        }
        if (wanted("matmul dw1 += gᵀ·x")) {
            ms = time(() -> t.matmulBackward(gate, xn, w1, n, null, false, dw1), w, r);
            line("matmul dw1 += gᵀ·x", ms, (double) n * f * d);
        }
        if (wanted("matmul dw2 += gᵀ·x")) {
            ms = time(() -> t.matmulBackward(x, h, w2, n, null, false, dw2), w, r);
            line("matmul dw2 += gᵀ·x", ms, (double) n * f * d);
        }
        if (wanted("matmul dwq += gᵀ·x")) {
            ms = time(() -> t.matmulBackward(q, xn, wq, n, null, false, dwq), w, r);
            line("matmul dwq += gᵀ·x", ms, (double) n * qd * d);
        }
        if (wanted("rope q")) {
            ms = time(() -> t.rope(q, s.heads(), hd, n, s.len(), rope, false), w, r);
            line("rope q", ms, 0);
        }
        if (wanted("attention")) {
            ms = time(() -> t.attention(q, k, v, s.seqs(), s.len(), s.heads(), s.kvHeads(), hd, att, lse, 0f, 1), w, r);
            line("attention", ms, 2 * att1);
        }
        if (wanted("attentionBackward")) {
            ms = time(() -> t.attentionBackward(att, q, k, v, att, lse, s.seqs(), s.len(), s.heads(), s.kvHeads(), hd, 0f, 1, dq, dk, dv), w, r);
            line("attentionBackward", ms, 5 * att1);
        }
        if (wanted("rmsnorm")) {
            ms = time(() -> t.rmsnorm(x, nw, 1e-5f, n, xn, rstd), w, r);
            line("rmsnorm", ms, 0);
        }
        if (wanted("rmsnormBackward")) {
            ms = time(() -> t.rmsnormBackward(x, xn, nw, rstd, n, dx, dnw), w, r);
            line("rmsnormBackward", ms, 0);
        }
        if (wanted("swiglu")) {
            ms = time(() -> t.swiglu(gate, up, n, h), w, r);
            line("swiglu", ms, 0);
        }
        if (wanted("swigluBackward")) {
            ms = time(() -> t.swigluBackward(h, gate, up, n, gate, up), w, r);
            line("swigluBackward", ms, 0);
        }
        if (wanted("add")) {
            ms = time(() -> t.add(x, xn, n), w, r);
            line("add", ms, 0);
        }
        if (wanted("dropout")) {
            ms = time(() -> t.dropout(x, n, 0.1f, 5), w, r);
            line("dropout", ms, 0);
        }
        if (wanted("crossEntropy (fwd + grads)")) {
            ms = time(() -> t.crossEntropy(xn, out, targets, n, 1f / n, dx, dout), w, r);
            line("crossEntropy (fwd + grads)", ms, 3.0 * n * s.vocab() * d);
        }
        Buf m1 = rand(t, f, d), v1 = rand(t, f, d);
        t.zero(v1);
        if (wanted("adamw [" + f + "x" + d + "]")) {
            ms = time(() -> t.adamw(w1, dw1, m1, v1, 1f, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 3), w, r);
            line("adamw [" + f + "x" + d + "]", ms, 0);
        }

        if (!wanted("step")) {
            return;
        }
        if (Boolean.getBoolean("bench.profile")) {
            profile(t, s, steps);
            return;
        }
        TrainModel m = new TrainModel(t, s, 1);
        double fwd = time(() -> m.forward(), 1, steps);
        double step = time(m::step, 1, steps);
        double flops = 3 * s.forwardMacs() * 2 * n;
        System.out.printf(Locale.ROOT, "  forward only %.1f ms; whole step (fwd + bwd + AdamW) %.1f ms = %.0f tokens/s, %.1f GFLOP/s%n",
                fwd, step, n / (step / 1000), flops / step / 1e6);
    }

    /** -Dbench.profile=true: whole steps through a proxy that sums each op's time (the proxy's own cost included). */
    static void profile(CpuTrainOps t, TrainModel.Shape s, int steps) {
        java.util.Map<String, double[]> acc = new java.util.TreeMap<>();
        cria.backend.TrainOps timed = (cria.backend.TrainOps) java.lang.reflect.Proxy.newProxyInstance(
                TrainOpsBench.class.getClassLoader(), new Class<?>[] {cria.backend.TrainOps.class}, (proxy, method, margs) -> {
                    long t0 = System.nanoTime();
                    Object r;
                    try {
                        r = method.invoke(t, margs);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                    double[] a = acc.computeIfAbsent(method.getName(), k -> new double[2]);
                    a[0] += (System.nanoTime() - t0) / 1e6;
                    a[1]++;
                    return r;
                });
        TrainModel m = new TrainModel(timed, s, 1);
        for (int i = 0; i < 3; i++) {
            m.step();
        }
        acc.clear();
        long t0 = System.nanoTime();
        for (int i = 0; i < steps; i++) {
            m.step();
        }
        double total = (System.nanoTime() - t0) / 1e6 / steps;
        System.out.printf(Locale.ROOT, "  profile: %.1f ms a step (%d steps)%n", total, steps);
        acc.entrySet().stream().sorted((x, y) -> Double.compare(y.getValue()[0], x.getValue()[0])).forEach(e -> System.out.printf(
                Locale.ROOT, "    %-20s %8.1f ms a step %5.1f%% (%d calls)%n", e.getKey(), e.getValue()[0] / steps,
                100 * e.getValue()[0] / steps / total, (long) (e.getValue()[1] / steps)));
    }

    static Buf rand(CpuTrainOps t, int rows, int cols) {
        Buf b = t.allocate("b", rows, cols);
        float[] v = new float[rows * cols];
        java.util.Random rnd = new java.util.Random(rows * 31L + cols);
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (rnd.nextDouble() - 0.5);
        }
        t.write(b, v);
        return b;
    }
}
