// The LoRA corrections of the forward pass, resident in the backend and grouped by the step whose products they correct.
package cria.model;

import cria.backend.Backend;
import cria.backend.Weight;

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
    LoraProducts(LoraStack stack, int layers, Backend backend) {
        rank = stack.rank();
        qkv = new Group[layers];
        wo = new Group[layers];
        gateUp = new Group[layers];
        down = new Group[layers];
        for (int l = 0; l < layers; l++) {
            String p = "blk." + l + ".";
            qkv[l] = group(stack, backend, p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight");
            wo[l] = group(stack, backend, p + "attn_output.weight");
            gateUp[l] = group(stack, backend, p + "ffn_gate.weight", p + "ffn_up.weight");
            down[l] = group(stack, backend, p + "ffn_down.weight");
        }
        output = group(stack, backend, LoraAdapter.OUTPUT);
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
