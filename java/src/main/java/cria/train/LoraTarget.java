// The products of a Llama layer that LoRA adapts, by the short names of --targets.
package cria.train;

import cria.CriaException;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/** A product of a layer: q, k, v and o of attention; gate, up and down of the feed-forward block. */
public enum LoraTarget {
    Q, K, V, O, GATE, UP, DOWN;

    /** The short name used by {@code --targets}. */
    public String shortName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses "q,k,v,o,gate,up,down" (any subset, any order; "all" for every one). */
    public static Set<LoraTarget> parse(String spec) {
        Set<LoraTarget> set = EnumSet.noneOf(LoraTarget.class);
        for (String part : spec.split(",")) {
            String p = part.trim().toLowerCase(Locale.ROOT);
            if (p.isEmpty()) {
                continue;
            }
            if (p.equals("all")) {
                set.addAll(EnumSet.allOf(LoraTarget.class));
                continue;
            }
            LoraTarget found = null;
            for (LoraTarget t : values()) {
                if (t.shortName().equals(p)) {
                    found = t;
                }
            }
            if (found == null) {
                throw new CriaException("--targets " + spec + ": unknown target '" + part.trim() + "'; use q, k, v, o, gate, up, down or all");
            }
            set.add(found);
        }
        if (set.isEmpty()) {
            throw new CriaException("--targets " + spec + ": name at least one of q, k, v, o, gate, up, down");
        }
        return set;
    }
}
