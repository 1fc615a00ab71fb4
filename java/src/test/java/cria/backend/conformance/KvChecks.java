// Conformance bodies for the KV cache ops: storeKv (byte for byte), paged attention over interleaved sequences, ropeStoreKv.
package cria.backend.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import cria.backend.AttnSpec;
import cria.backend.Backend;
import cria.backend.Batch;
import cria.backend.Buf;
import cria.backend.KvCache;
import cria.backend.Rope;
import cria.backend.conformance.Pairs.Pair;
import cria.backend.conformance.Tolerances.Check;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Each method is one case's body: the ops on the target and on ref with the same inputs, outputs compared. */
final class KvChecks {
    private KvChecks() {}

    /** A cache of the same geometry on each side. */
    record Caches(KvCache t, KvCache r) {}

    static Caches caches(Pairs p, KvCache.Config config) {
        return new Caches(p.later(p.backend.kvCache(config)), p.later(p.ref.kvCache(config)));
    }

    static int newSequence(Caches c) {
        int s = c.t().newSequence();
        assertEquals(s, c.r().newSequence(), "both caches number sequences alike");
        return s;
    }

    static void reserve(Caches c, int seq, int positions) {
        c.t().reserve(seq, positions);
        c.r().reserve(seq, positions);
    }

    /**
     * storeKv then attention, for three geometries: 8 query heads on 2 KV heads of 64 values (f16
     * cache), 4 on 4 of 8 (f32; stories260K-like tiny heads), 4 on 1 of 256 (f16; the largest head,
     * two outputs per thread); on the CPU also 66 on 1 of 8 (both cache types: more query heads per
     * KV head than the native kernel takes, so its Java ops run them). Two layers, sequences of 301, 37 and 1 positions stored in mixed
     * batches of 7 (as continuous batching interleaves them); the cache must then hold ref's bytes.
     * Queries at the ends of the sequences and in the middle of one (attending over a prefix), under
     * each of the target's attention tunings (split counts on CUDA).
     */
    static void storeKvAndAttention(Pairs p) {
        record Geometry(int heads, int kvHeads, int headDim, KvCache.Type type) {}
        Geometry[] geometries = {new Geometry(8, 2, 64, KvCache.Type.F16), new Geometry(4, 4, 8, KvCache.Type.F32),
            new Geometry(4, 1, 256, KvCache.Type.F16)};
        if (p.target.kind() == Target.Kind.CPU_JAVA || p.target.kind() == Target.Kind.CPU_NATIVE) {
            // more than 64 query heads per KV head: the native path hands these to its Java ops
            geometries = Arrays.copyOf(geometries, geometries.length + 2);
            geometries[geometries.length - 2] = new Geometry(66, 1, 8, KvCache.Type.F32);
            geometries[geometries.length - 1] = new Geometry(66, 1, 8, KvCache.Type.F16);
        }
        for (Geometry g : p.dev.quick() ? Arrays.copyOf(geometries, 1) : geometries) {
            int layers = 2;
            int kvDim = g.kvHeads() * g.headDim();
            Caches c = caches(p, new KvCache.Config(layers, kvDim, g.type(), 16, 48, 3, 400));
            int[] lengths = {301, 37, 1};
            int[] seqs = fill(p, c, layers, lengths, 7);
            p.sameCache("storeKv " + g, c.t(), c.r());
            int[][] entries = {{seqs[0], 300}, {seqs[1], 36}, {seqs[0], 130}, {seqs[2], 0}};
            Batch batch = new Batch(entries.length);
            for (int[] e : entries) {
                batch.add(0, e[1], e[0], false);
            }
            int n = entries.length;
            int qDim = g.heads() * g.headDim();
            Pair q = p.pair("q", n, qDim, p.gaussian(n * qDim, 1));
            for (String tuning : p.dev.attentionTunings()) {
                p.dev.attentionTuning(tuning);
                Pair out = p.pair("att", n, qDim, null);
                p.ops().beginStep(batch, c.t());
                p.ops().attention(q.t(), c.t(), 1, g.heads(), g.kvHeads(), g.headDim(), AttnSpec.plain(g.headDim()), batch, out.t());
                p.ops().endStep();
                p.ref.ops().attention(q.r(), c.r(), 1, g.heads(), g.kvHeads(), g.headDim(), AttnSpec.plain(g.headDim()), batch, out.r());
                p.same("attention " + g + " " + tuning, out, n, Check.ATTENTION);
            }
            p.dev.attentionTuning(p.dev.attentionTunings().get(0));
        }
    }

    /** Stores the same random keys and values on both sides for sequences of the given lengths, interleaved; returns the sequence ids. */
    static int[] fill(Pairs p, Caches c, int layers, int[] lengths, int chunk) {
        int kvDim = c.t().kvDim();
        int[] seqs = new int[lengths.length];
        for (int s = 0; s < lengths.length; s++) {
            seqs[s] = newSequence(c);
            reserve(c, seqs[s], lengths[s]);
        }
        Pair k = p.pair("k", chunk, kvDim, null);
        Pair v = p.pair("v", chunk, kvDim, null);
        Batch batch = new Batch(chunk);
        List<int[]> todo = new ArrayList<>();
        int longest = Arrays.stream(lengths).max().orElse(0);
        for (int pos = 0; pos < longest; pos++) {
            for (int s = 0; s < lengths.length; s++) {
                if (pos < lengths[s]) {
                    todo.add(new int[] {seqs[s], pos});
                }
            }
        }
        for (int from = 0; from < todo.size(); from += chunk) {
            int m = Math.min(chunk, todo.size() - from);
            batch.clear();
            for (int i = 0; i < m; i++) {
                batch.add(0, todo.get(from + i)[1], todo.get(from + i)[0], false);
            }
            for (int layer = 0; layer < layers; layer++) {
                p.put(k, p.gaussian(m * kvDim, 1));
                p.put(v, p.gaussian(m * kvDim, 1));
                p.ops().beginStep(batch, c.t());
                p.ops().storeKv(c.t(), layer, k.t(), v.t(), batch);
                p.ops().endStep();
                p.ref.ops().storeKv(c.r(), layer, k.r(), v.r(), batch);
            }
        }
        return seqs;
    }

    /**
     * Decoding three sequences (70, 5 and 33 positions) together, up to four positions of each per
     * step, pages handed out in the order the steps ask for them: storeKv then attention each step
     * (8 query heads on 2 KV heads of 32 values), with an f32 and an f16 cache.
     */
    static void pagedAttentionInterleaved(Pairs p) {
        for (KvCache.Type type : KvCache.Type.values()) {
            int heads = 8;
            int kvHeads = 2;
            int headDim = 32;
            int kvDim = kvHeads * headDim;
            int[] lens = {70, 5, 33};
            Caches c = caches(p, new KvCache.Config(1, kvDim, type, 16, 16, 4, 128));
            int[] seqs = new int[lens.length];
            for (int s = 0; s < lens.length; s++) {
                seqs[s] = newSequence(c);
            }
            int[] pos = new int[lens.length];
            int cap = 12;
            Pair q = p.pair("q", cap, heads * headDim, null);
            Pair k = p.pair("k", cap, kvDim, null);
            Pair v = p.pair("v", cap, kvDim, null);
            Batch batch = new Batch(cap);
            for (int step = 0; ; step++) {
                batch.clear();
                for (int s = 0; s < lens.length; s++) {
                    for (int t = 0; t < 4 && pos[s] < lens[s]; t++) {
                        reserve(c, seqs[s], pos[s] + 1);
                        batch.add(0, pos[s]++, seqs[s], false);
                    }
                }
                int n = batch.size();
                if (n == 0) {
                    break;
                }
                p.put(q, p.gaussian(n * heads * headDim, 1));
                p.put(k, p.gaussian(n * kvDim, 1));
                p.put(v, p.gaussian(n * kvDim, 1));
                Pair o = p.pair("o", n, heads * headDim, null);
                p.ops().beginStep(batch, c.t());
                p.ops().storeKv(c.t(), 0, k.t(), v.t(), batch);
                p.ops().attention(q.t(), c.t(), 0, heads, kvHeads, headDim, AttnSpec.plain(headDim), batch, o.t());
                p.ops().endStep();
                p.ref.ops().storeKv(c.r(), 0, k.r(), v.r(), batch);
                p.ref.ops().attention(q.r(), c.r(), 0, heads, kvHeads, headDim, AttnSpec.plain(headDim), batch, o.r());
                p.same("paged attention " + type + " cache, step " + step + " (" + n + " entries)", o, n, Check.ATTENTION);
            }
            p.sameCache("storeKv " + type + " cache after the interleaved steps", c.t(), c.r());
        }
    }

    /** One ropeStoreKv setting: head size, the ropes, k's extra width (beyond kvDim), the cache, the layer, the batch's (sequence, position)s. */
    private record RopeStore(int headDim, Rope[] ropes, int[] kExtra, int layers, int pages, int positions, int reserve, int layer,
            int[][] entries) {}

    /**
     * ropeStoreKv against rope then storeKv on ref, and against rope then storeKv on the target
     * itself: f32 and f16 caches, llama and NeoX pairs, all or half the head rotated, k exactly
     * kvDim wide (CUDA: one ropekv kernel) or wider (rope, then the store). q and k must come back
     * rotated, v unchanged, and the cache hold what attention then reads.
     */
    static void ropeStoreKv(Pairs p) {
        RopeStore[] settings = {
            new RopeStore(64, new Rope[] {new Rope(64, 10000f, 1f, null, false), new Rope(32, 500000f, 1f, null, true)},
                new int[] {0, 64}, 2, 16, 128, 100, 1, new int[][] {{0, 17}, {1, 99}, {1, 0}}),
            new RopeStore(16, new Rope[] {new Rope(16, 10000f, 1f, null, false), new Rope(8, 500000f, 1f, null, true)},
                new int[] {0}, 1, 8, 64, 40, 0, new int[][] {{0, 0}, {1, 37}, {0, 1}}),
        };
        int heads = 4;
        int kvHeads = 2;
        for (RopeStore s : settings) {
            int kvDim = kvHeads * s.headDim();
            for (KvCache.Type type : KvCache.Type.values()) {
                for (Rope rope : s.ropes()) {
                    for (int extra : s.kExtra()) {
                        KvCache.Config config = new KvCache.Config(s.layers(), kvDim, type, 16, s.pages(), 2, s.positions());
                        Caches c = caches(p, config);
                        Caches other = caches(p, config);  // the target's plain ops, ref's fused op
                        for (int seq = 0; seq < 2; seq++) {
                            newSequence(c);
                            newSequence(other);
                            reserve(c, seq, s.reserve());
                            reserve(other, seq, s.reserve());
                        }
                        Batch batch = new Batch(s.entries().length);
                        for (int[] e : s.entries()) {
                            batch.add(0, e[1], e[0], false);
                        }
                        int n = batch.size();
                        int kCols = kvDim + extra;
                        float[] qv = p.gaussian(n * heads * s.headDim(), 1);
                        float[] kv = p.gaussian(n * kCols, 1);
                        float[] vv = p.gaussian(n * kvDim, 1);
                        Pair q = p.pair("q", n, heads * s.headDim(), qv);
                        Pair k = p.pair("k", n, kCols, kv);
                        Pair v = p.pair("v", n, kvDim, vv);
                        p.ops().beginStep(batch, c.t());
                        p.ops().ropeStoreKv(q.t(), k.t(), v.t(), s.headDim(), batch, rope, c.t(), s.layer());
                        p.ops().endStep();
                        p.ref.ops().rope(q.r(), k.r(), s.headDim(), batch, rope);
                        p.ref.ops().storeKv(c.r(), s.layer(), k.r(), v.r(), batch);
                        String what = "ropeStoreKv, head " + s.headDim() + ", " + type + " cache, neox=" + rope.neox() + " dims "
                                + rope.dims() + ", k " + kCols + " wide";
                        p.same(what + ": q", q, n, Check.ROPE);
                        p.same(what + ": k", k, n, Check.ROPE);
                        p.same(what + ": v unchanged", v, n, 0);
                        Pair att = p.pair("att", n, heads * s.headDim(), null);
                        p.ops().beginStep(batch, c.t());
                        p.ops().attention(q.t(), c.t(), s.layer(), heads, kvHeads, s.headDim(), AttnSpec.plain(s.headDim()), batch, att.t());
                        p.ops().endStep();
                        p.ref.ops().attention(q.r(), c.r(), s.layer(), heads, kvHeads, s.headDim(), AttnSpec.plain(s.headDim()), batch, att.r());
                        p.same("attention over what " + what + " stored", att, n, Check.ATTENTION);

                        // the target's plain ops, what the fused op stands for; ref's fused op (its default body)
                        float[][] plain = ropeStore(p.dev, false, other.t(), batch, rope, s, heads, kvHeads, qv, kv, vv);
                        float[][] refFused = ropeStore(Device.host(p.ref), true, other.r(), batch, rope, s, heads, kvHeads, qv, kv, vv);
                        double tol = Tolerances.of(Check.FUSED_VS_PLAIN, p.target.kind());
                        float[][] fused = {p.down(q.t(), n), p.down(k.t(), n), p.down(att.t(), n)};
                        float[][] refPlain = {Pairs.down(p.ref, q.r(), n), Pairs.down(p.ref, k.r(), n), Pairs.down(p.ref, att.r(), n)};
                        String[] names = {"q", "k", "attention"};
                        for (int i = 0; i < 3; i++) {
                            p.judge(what + ": " + names[i] + " against rope + storeKv on the target", fused[i], plain[i],
                                    i == 1 ? kCols : heads * s.headDim(), tol);
                            assertTrue(Arrays.equals(refFused[i], refPlain[i]), "ref: " + what + ": " + names[i] + " differs from rope + storeKv");
                        }
                    }
                }
            }
        }
    }

    /** On one backend alone: ropeStoreKv, or (fused false) rope then storeKv; then attention. Returns q, k and attention's output. */
    private static float[][] ropeStore(Device dev, boolean fused, KvCache cache, Batch batch, Rope rope, RopeStore s, int heads,
            int kvHeads, float[] qv, float[] kv, float[] vv) {
        Backend b = dev.backend();
        int n = batch.size();
        Buf q = b.allocate("q", n, heads * s.headDim());
        Buf k = b.allocate("k", n, kv.length / n);
        Buf v = b.allocate("v", n, vv.length / n);
        Buf att = b.allocate("att", n, heads * s.headDim());
        dev.put(q, qv);
        dev.put(k, kv);
        dev.put(v, vv);
        dev.poison(att);
        b.ops().beginStep(batch, cache);
        if (fused) {
            b.ops().ropeStoreKv(q, k, v, s.headDim(), batch, rope, cache, s.layer());
        } else {
            b.ops().rope(q, k, s.headDim(), batch, rope);
            b.ops().storeKv(cache, s.layer(), k, v, batch);
        }
        b.ops().endStep();
        b.ops().beginStep(batch, cache);
        b.ops().attention(q, cache, s.layer(), heads, kvHeads, s.headDim(), AttnSpec.plain(s.headDim()), batch, att);
        b.ops().endStep();
        return new float[][] {Pairs.down(b, q, n), Pairs.down(b, k, n), Pairs.down(b, att, n)};
    }
}
