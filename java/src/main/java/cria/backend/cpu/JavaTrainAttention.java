// Causal grouped-query attention of training and its backward, in Java: the Java path's kernels (one window and head, or KV head, per item).
package cria.backend.cpu;

import cria.backend.HostBuf;
import cria.backend.TrainOps;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The attention items of {@link JavaTrainPath}, whose fields hold the arguments (q, k, v, out,
 * lse in a..e; dout, dq, dk, dv in f..i). Forward items are (window, head) pairs; backward items
 * are (window, KV head) pairs, so that the thread of an item owns every sum into its dk and dv
 * rows and takes the heads of its group and the query rows in one fixed order.
 */
final class JavaTrainAttention {
    private static final ValueLayout.OfFloat FL = ValueLayout.JAVA_FLOAT;

    private JavaTrainAttention() {}

    private static float dot(MemorySegment a, long ao, MemorySegment b, long bo, int n) {
        float s = 0;
        for (int d = 0; d < n; d++) {
            s += a.get(FL, ao + 4L * d) * b.get(FL, bo + 4L * d);
        }
        return s;
    }

    /** Items [lo, hi) of (window, head); sc: scratch of at least len + headDim floats. */
    static void forward(JavaTrainPath p, float[] sc, int lo, int hi) {
        HostBuf q = p.a, k = p.b, v = p.c, out = p.d, lse = p.e;
        int len = p.len, heads = p.heads, hd = p.headDim, group = heads / p.kvHeads;
        float scale = (float) (1.0 / Math.sqrt(hd));
        float drop = p.p1;
        float keepScale = 1f / (1f - drop);
        MemorySegment qs = q.segment(), ks = k.segment(), vs = v.segment(), os = out.segment();
        for (int item = lo; item < hi; item++) {
            int b = item / heads, h = item % heads, kvh = h / group;
            for (int t = 0; t < len; t++) {
                int i = b * len + t;
                long qo = q.rowOffset(i) + 4L * h * hd;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j <= t; j++) {
                    float s = scale * dot(qs, qo, ks, k.rowOffset(b * len + j) + 4L * kvh * hd, hd);
                    sc[j] = s;
                    max = Math.max(max, s);
                }
                float sum = 0;
                for (int j = 0; j <= t; j++) {
                    sc[j] = (float) Math.exp(sc[j] - max);
                    sum += sc[j];
                }
                lse.set(i, h, (float) (max + Math.log(sum)));
                float inv = 1f / sum;
                for (int d = 0; d < hd; d++) {
                    sc[len + d] = 0;
                }
                long dropBase = ((long) i * heads + h) * len;
                for (int j = 0; j <= t; j++) {
                    float w = sc[j] * inv;
                    if (drop > 0f) {
                        w = TrainOps.keep(p.seed, dropBase + j, drop) ? w * keepScale : 0f;
                    }
                    long vo = v.rowOffset(b * len + j) + 4L * kvh * hd;
                    for (int d = 0; d < hd; d++) {
                        sc[len + d] += w * vs.get(FL, vo + 4L * d);
                    }
                }
                long oo = out.rowOffset(i) + 4L * h * hd;
                for (int d = 0; d < hd; d++) {
                    os.set(FL, oo + 4L * d, sc[len + d]);
                }
            }
        }
    }

    /** Items [lo, hi) of (window, KV head); sc: scratch of len floats, dq: of headDim. */
    static void backward(JavaTrainPath p, float[] sc, float[] dq, int lo, int hi) {
        HostBuf q = p.a, k = p.b, v = p.c, out = p.d, lse = p.e, dout = p.f, dqb = p.g, dkb = p.h, dvb = p.i;
        int len = p.len, heads = p.heads, hd = p.headDim, group = heads / p.kvHeads;
        float scale = (float) (1.0 / Math.sqrt(hd));
        float drop = p.p1;
        float keepScale = 1f / (1f - drop);
        MemorySegment qs = q.segment(), ks = k.segment(), vs = v.segment(), os = out.segment(), gs = dout.segment();
        MemorySegment dqs = dqb.segment(), dks = dkb.segment(), dvs = dvb.segment();
        for (int item = lo; item < hi; item++) {
            int b = item / p.kvHeads, kvh = item % p.kvHeads;
            for (int t = 0; t < len; t++) {
                long ko = dkb.rowOffset(b * len + t) + 4L * kvh * hd;
                for (int d = 0; d < hd; d++) {
                    dks.set(FL, ko + 4L * d, 0f);
                    dvs.set(FL, ko + 4L * d, 0f);
                }
            }
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                for (int t = 0; t < len; t++) {
                    int i = b * len + t;
                    long qo = q.rowOffset(i) + 4L * h * hd;
                    float l = lse.get(i, h);
                    float dd = dot(gs, qo, os, qo, hd); // D_i = dout_i · out_i (q, out and dout share the layout)
                    for (int d = 0; d < hd; d++) {
                        dq[d] = 0;
                    }
                    long dropBase = ((long) i * heads + h) * len;
                    for (int j = 0; j <= t; j++) {
                        long kvo = k.rowOffset(b * len + j) + 4L * kvh * hd;
                        float pj = (float) Math.exp(scale * dot(qs, qo, ks, kvo, hd) - l);
                        float m = drop > 0f ? (TrainOps.keep(p.seed, dropBase + j, drop) ? keepScale : 0f) : 1f;
                        float da = dot(gs, qo, vs, kvo, hd);
                        float ds = pj * (da * m - dd);
                        float pm = pj * m;
                        float dsk = scale * ds;
                        for (int d = 0; d < hd; d++) {
                            long o = kvo + 4L * d;
                            dvs.set(FL, o, dvs.get(FL, o) + pm * gs.get(FL, qo + 4L * d));
                            dks.set(FL, o, dks.get(FL, o) + dsk * qs.get(FL, qo + 4L * d));
                            dq[d] += ds * ks.get(FL, o);
                        }
                    }
                    for (int d = 0; d < hd; d++) {
                        dqs.set(FL, qo + 4L * d, scale * dq[d]);
                    }
                }
            }
        }
    }
}
