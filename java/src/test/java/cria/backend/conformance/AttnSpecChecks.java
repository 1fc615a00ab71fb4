// Conformance bodies for attention under an AttnSpec: sliding windows, logit soft-caps and other scales against ref.
package cria.backend.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.AttnSpec;
import cria.backend.Batch;
import cria.backend.KvCache;
import cria.backend.conformance.KvChecks.Caches;
import cria.backend.conformance.Pairs.Pair;
import cria.backend.conformance.Tolerances.Check;
import cria.bench.Compare;
import java.util.ArrayList;
import java.util.List;

/** Each method is one case's body: attention with a spec on the target and on ref, outputs compared. */
final class AttnSpecChecks {
    private AttnSpecChecks() {}

    /** The specs every target is checked under, for head size {@code headDim}. */
    static List<AttnSpec> specs(int headDim) {
        float plain = AttnSpec.plain(headDim).scale();
        List<AttnSpec> out = new ArrayList<>();
        // 40: a window that ends inside the flash kernel's 64-position tiles; 1000: longer than every sequence
        for (int window : new int[] {0, 1, 3, 40, 1000}) {
            for (float cap : new float[] {0, 5}) {
                out.add(new AttnSpec(plain, window, cap));
            }
        }
        out.add(new AttnSpec(0.3f, 0, 0));
        out.add(new AttnSpec(0.3f, 3, 5));
        return out;
    }

    /**
     * Sequences of 150, 9 and 1 positions stored interleaved; then three batches under every spec
     * of {@link #specs}: a prompt chunk (positions 100..149 of one sequence: 50 entries, the prefill
     * path; CUDA's flash kernel then skips whole tiles of keys before a window), a mixed batch of
     * entries of all three sequences at their ends and in their middles, and one decode entry.
     * Queries are large (sd 3) so that the soft-cap of 5 changes the scores.
     */
    static void windowSoftcapScale(Pairs p) {
        record Geometry(int heads, int kvHeads, int headDim, KvCache.Type type) {}
        List<Geometry> geometries = new ArrayList<>(List.of(new Geometry(8, 2, 64, KvCache.Type.F16),
                new Geometry(4, 4, 8, KvCache.Type.F32)));
        if (p.target.kind() != Target.Kind.CUDA) {
            geometries.add(new Geometry(66, 1, 8, KvCache.Type.F16));  // the native path hands these to its Java ops
        }
        for (Geometry g : p.dev.quick() ? geometries.subList(0, 1) : geometries) {
            Caches c = KvChecks.caches(p, new KvCache.Config(1, g.kvHeads() * g.headDim(), g.type(), 16, 12, 3, 160));
            int[] seqs = KvChecks.fill(p, c, 1, new int[] {150, 9, 1}, 16);
            List<int[][]> batches = new ArrayList<>();
            int[][] prompt = new int[50][];
            for (int t = 0; t < 50; t++) {
                prompt[t] = new int[] {seqs[0], 100 + t};
            }
            batches.add(prompt);
            batches.add(new int[][] {{seqs[0], 149}, {seqs[1], 8}, {seqs[0], 17}, {seqs[2], 0}, {seqs[1], 2}, {seqs[0], 70}});
            batches.add(new int[][] {{seqs[1], 8}});
            int qDim = g.heads() * g.headDim();
            for (int[][] entries : batches) {
                Batch batch = new Batch(entries.length);
                for (int[] e : entries) {
                    batch.add(0, e[1], e[0], false);
                }
                int n = entries.length;
                Pair q = p.pair("q", n, qDim, p.gaussian(n * qDim, 3));
                // the split tunings apply to the decode kernel; prompt batches take the flash kernel where it fits
                List<String> tunings = n >= 16 ? p.dev.attentionTunings().subList(0, 1) : p.dev.attentionTunings();
                // the slow schedules (quick devices) take two specs: a window inside a tile, a window with a cap and a scale
                List<AttnSpec> specs = p.dev.quick() ? List.of(new AttnSpec(AttnSpec.plain(g.headDim()).scale(), 40, 0),
                        new AttnSpec(0.3f, 3, 5)) : specs(g.headDim());
                for (AttnSpec spec : specs) {
                    for (String tuning : tunings) {
                        p.dev.attentionTuning(tuning);
                        Pair out = p.pair("att", n, qDim, null);
                        p.ops().beginStep(batch, c.t());
                        p.ops().attention(q.t(), c.t(), 0, g.heads(), g.kvHeads(), g.headDim(), spec, batch, out.t());
                        p.ops().endStep();
                        p.ref.ops().attention(q.r(), c.r(), 0, g.heads(), g.kvHeads(), g.headDim(), spec, batch, out.r());
                        p.same("attention " + g + " " + spec + ", " + n + " entries, " + tuning, out, n,
                                n >= 16 ? Check.PROMPT_ATTENTION : Check.ATTENTION);
                    }
                    p.dev.attentionTuning(p.dev.attentionTunings().get(0));
                }
            }
        }
    }

    /**
     * A window of W at position t is attention over exactly the keys t - W + 1 .. t: the same
     * output as plain attention over a sequence that holds only those keys (copied to its positions
     * 0 .. W - 1). Checked on ref (bit for bit) and on the target (itself, and against ref), for
     * windows 1, 3, 5 at positions before, at and after the window fills, with and without a
     * soft-cap. A window off by one position fails: the check first proves that W and W + 1 differ.
     */
    static void windowIsTheLastPositions(Pairs p) {
        int heads = 4;
        int kvHeads = 2;
        int headDim = 16;
        int kvDim = kvHeads * headDim;
        int qDim = heads * headDim;
        int len = 12;
        int[] windows = {1, 3, 5};
        int[] positions = {2, 7, 11};
        int cases = windows.length * positions.length;
        Caches c = KvChecks.caches(p, new KvCache.Config(1, kvDim, KvCache.Type.F32, 4, 3 + 2 * cases, 1 + cases, 16));
        int all = KvChecks.newSequence(c);
        KvChecks.reserve(c, all, len);
        float[] ks = p.gaussian(len * kvDim, 1);
        float[] vs = p.gaussian(len * kvDim, 1);
        store(p, c, all, 0, len, ks, vs);
        float plain = AttnSpec.plain(headDim).scale();
        for (int w : windows) {
            for (int pos : positions) {
                int first = Math.max(0, pos - w + 1);
                int span = pos + 1 - first;
                int last = KvChecks.newSequence(c);  // only the window's keys
                KvChecks.reserve(c, last, span);
                store(p, c, last, first, span, ks, vs);
                // the query leans towards the key just outside the window, so that taking it in by mistake shows
                // whatever the random data (pure noise once left it a weight too small for the check below to see)
                float[] qv = p.gaussian(qDim, 1);
                if (pos >= w) {
                    for (int h = 0; h < heads; h++) {
                        int kh = h / (heads / kvHeads);
                        for (int d = 0; d < headDim; d++) {
                            qv[h * headDim + d] += 2 * ks[(pos - w) * kvDim + kh * headDim + d];
                        }
                    }
                }
                Pair q = p.pair("q", 1, qDim, qv);
                for (float cap : new float[] {0, 5}) {
                    AttnSpec windowed = new AttnSpec(plain, w, cap);
                    String what = "window " + w + " at position " + pos + ", soft-cap " + cap;
                    Pair win = attend(p, c, q, all, pos, windowed, heads, kvHeads, headDim);
                    Pair over = attend(p, c, q, last, span - 1, windowed.withWindow(0), heads, kvHeads, headDim);
                    float[] refWin = Pairs.down(p.ref, win.r(), 1);
                    assertArrayEquals(Pairs.down(p.ref, over.r(), 1), refWin, "ref: " + what + " is not attention over keys "
                            + first + ".." + pos + " alone");
                    if (pos >= w) {  // one more key must show, or this check could not see a window off by one
                        Pair wider = attend(p, c, q, all, pos, windowed.withWindow(w + 1), heads, kvHeads, headDim);
                        float[] refWider = Pairs.down(p.ref, wider.r(), 1);
                        assertTrue(Compare.relErr(refWider, refWin, qDim) > 1e-3, "ref: windows " + w + " and " + (w + 1)
                                + " at position " + pos + " should differ");
                    }
                    p.judge(what + ": against plain attention over its keys on the target", p.down(win.t(), 1), p.down(over.t(), 1),
                            qDim, Tolerances.of(Check.ATTENTION, p.target.kind()));
                    p.same(what + ": against ref", win, 1, Check.ATTENTION);
                }
            }
        }
    }

    /** Stores rows from .. from + count - 1 of the keys ks and values vs at positions 0 .. count - 1 of seq, on both sides. */
    private static void store(Pairs p, Caches c, int seq, int from, int count, float[] ks, float[] vs) {
        int kvDim = c.t().kvDim();
        float[] k = java.util.Arrays.copyOfRange(ks, from * kvDim, (from + count) * kvDim);
        float[] v = java.util.Arrays.copyOfRange(vs, from * kvDim, (from + count) * kvDim);
        Pair kp = p.pair("k", count, kvDim, k);
        Pair vp = p.pair("v", count, kvDim, v);
        Batch batch = new Batch(count);
        for (int i = 0; i < count; i++) {
            batch.add(0, i, seq, false);
        }
        p.ops().beginStep(batch, c.t());
        p.ops().storeKv(c.t(), 0, kp.t(), vp.t(), batch);
        p.ops().endStep();
        p.ref.ops().storeKv(c.r(), 0, kp.r(), vp.r(), batch);
    }

    /** One query of sequence seq at position pos under spec, on both sides. */
    private static Pair attend(Pairs p, Caches c, Pair q, int seq, int pos, AttnSpec spec, int heads, int kvHeads, int headDim) {
        Batch batch = new Batch(1);
        batch.add(0, pos, seq, false);
        Pair out = p.pair("att", 1, heads * headDim, null);
        p.ops().beginStep(batch, c.t());
        p.ops().attention(q.t(), c.t(), 0, heads, kvHeads, headDim, spec, batch, out.t());
        p.ops().endStep();
        p.ref.ops().attention(q.r(), c.r(), 0, heads, kvHeads, headDim, spec, batch, out.r());
        return out;
    }
}
