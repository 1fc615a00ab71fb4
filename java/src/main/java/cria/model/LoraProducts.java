// The LoRA corrections of the forward pass, resident in the backend and grouped by the step whose products they correct.
package cria.model;

import cria.backend.Backend;
import cria.backend.Weight;
import cria.tensor.Tensor;

/**
 * A {@link LoraStack} made resident and laid out for {@link Llama}'s forward pass: per layer the
 * corrections of q/k/v (which share their input), of the attention output, of gate/up (which
 * share theirs) and of the down projection, and one of the output matrix. A group is null when no
 * adapter touches its products, so an unadapted step costs nothing.
 */
final class LoraProducts {
    /**
     * The corrections of some products of one input: {@code out[target[j]] += b[j] · (a[j] · x)}.
     * The a[j] share their row length (the input's width) and the common rank.
     */
    record Group(Weight[] a, Weight[] b, int[] target) {}

    final Group[] qkv;      // targets: 0 = q, 1 = k, 2 = v
    final Group[] wo;       // target 0: the residual stream
    final Group[] gateUp;   // targets: 0 = gate (hb), 1 = up (hb2)
    final Group[] down;     // target 0: the residual stream
    final Group output;     // target 0: the logits
    final int rank;

    /** The stack's corrections made resident (every group null for an empty stack). */
    LoraProducts(LoraStack stack, LlamaConfig c, Backend backend) {
        rank = stack.rank();
        int layers = c.layers();
        qkv = new Group[layers];
        wo = new Group[layers];
        gateUp = new Group[layers];
        down = new Group[layers];
        for (int l = 0; l < layers; l++) {
            String p = "blk." + l + ".";
            // phi3's fused matrices: one correction whose output rows are q, k, v (gate, up) in turn
            LoraStack.Product fusedQkv = stack.product(p + "attn_qkv.weight");
            LoraStack.Product up = stack.product(p + "ffn_up.weight");
            qkv[l] = fusedQkv != null ? split(fusedQkv, backend, c.qDim(), c.kvDim(), c.kvDim())
                    : group(stack, backend, p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight");
            wo[l] = group(stack, backend, p + "attn_output.weight");
            gateUp[l] = up != null && up.outputs() == 2L * c.ffn() ? split(up, backend, c.ffn(), c.ffn())
                    : group(stack, backend, p + "ffn_gate.weight", p + "ffn_up.weight");
            down[l] = group(stack, backend, p + "ffn_down.weight");
        }
        output = group(stack, backend, LoraAdapter.OUTPUT);
    }

    /**
     * The correction of a fused matrix as one per part: the parts share A (the same resident
     * weight) and each takes its own rows of B, a slice of the same memory.
     */
    private static Group split(LoraStack.Product p, Backend backend, int... parts) {
        long total = 0;
        for (int w : parts) {
            total += w;
        }
        if (total != p.outputs()) {
            throw new cria.CriaException("LoRA correction of " + p.base() + " has " + p.outputs() + " output rows, but its parts need "
                    + total + "; the adapter was made for another model");
        }
        Weight a = backend.weight(p.a());
        Weight[] as = new Weight[parts.length];
        Weight[] bs = new Weight[parts.length];
        int[] target = new int[parts.length];
        Tensor b = p.b();
        long first = 0;
        for (int i = 0; i < parts.length; i++) {
            long rb = b.rowBytes();
            Tensor rows = new Tensor(b.name() + "[" + i + "]", b.type(), new long[] {b.shape()[0], parts[i]},
                    b.data().asSlice(first * rb, parts[i] * rb));
            as[i] = a;
            bs[i] = backend.weight(rows);
            target[i] = i;
            first += parts[i];
        }
        return new Group(as, bs, target);
    }

    boolean isEmpty() {
        return rank == 0;
    }

    /** The adapted ones among the named products (in order), resident; null when none is. */
    private static Group group(LoraStack stack, Backend backend, String... names) {
        int count = 0;
        for (String n : names) {
            count += stack.product(n) != null ? 1 : 0;
        }
        if (count == 0) {
            return null;
        }
        Weight[] a = new Weight[count];
        Weight[] b = new Weight[count];
        int[] target = new int[count];
        int j = 0;
        for (int i = 0; i < names.length; i++) {
            LoraStack.Product p = stack.product(names[i]);
            if (p != null) {
                a[j] = backend.weight(p.a());
                b[j] = backend.weight(p.b());
                target[j] = i;
                j++;
            }
        }
        return new Group(a, b, target);
    }

    /** Every distinct output width of the corrections (the widths of the activation buffers they need). */
    int[] widths() {
        java.util.TreeSet<Integer> w = new java.util.TreeSet<>();
        for (Group[] gs : new Group[][] {qkv, wo, gateUp, down, {output}}) {
            for (Group g : gs) {
                if (g != null) {
                    for (Weight b : g.b()) {
                        w.add(b.rows());
                    }
                }
            }
        }
        return w.stream().mapToInt(Integer::intValue).toArray();
    }

    /** True when the output matrix's correction has this width (its buffer then needs the logits' rows). */
    boolean outputWidth(int width) {
        return output != null && output.b()[0].rows() == width;
    }
}
