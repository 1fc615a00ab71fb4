// Learning-rate schedules: linear warmup, then cosine, linear, step, constant or cyclical.
package cria.train;

import cria.CriaException;
import java.util.Locale;

/**
 * The learning rate of each step. Step s (from 0) of {@code steps}: while s &lt; warmup it rises
 * linearly, {@code lr·(s+1)/warmup}; after that, with {@code p = (s-warmup)/(steps-1-warmup)}
 * (1 when no step follows the warmup):
 * <ul>
 * <li>{@code cosine}: {@code min + (lr-min)·(1+cos(π·p))/2}, reaching min at the last step;</li>
 * <li>{@code linear}: {@code lr + (min-lr)·p};</li>
 * <li>{@code step}: {@code lr·gamma^floor((s-warmup)/stepSize)};</li>
 * <li>{@code constant}: {@code lr};</li>
 * <li>{@code cyclical}: triangular between lr and min with {@code cycle} steps per cycle,
 *     {@code q = ((s-warmup) mod cycle)/cycle}, {@code min + (lr-min)·|2q-1|}: lr right after
 *     the warmup, min mid-cycle, lr again at its end.</li>
 * </ul>
 */
public record Schedule(Kind kind, double lr, double minLr, int warmup, int steps, double gamma, int stepSize, int cycle) {

    /** The shapes of the decay after warmup. */
    public enum Kind {
        COSINE, LINEAR, STEP, CONSTANT, CYCLICAL;

        /** The kind named (case-insensitive), or a one-line error listing them. */
        public static Kind parse(String name) {
            for (Kind k : values()) {
                if (k.name().equalsIgnoreCase(name)) {
                    return k;
                }
            }
            throw new CriaException("--schedule " + name + ": choose cosine, linear, step, constant or cyclical");
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public Schedule {
        if (!(lr > 0 && lr < 10)) {
            throw new CriaException("--lr " + lr + ": the learning rate must be above 0 and below 10 (e.g. 1e-3)");
        }
        if (!(minLr >= 0 && minLr <= lr)) {
            throw new CriaException("--min-lr " + minLr + ": must be between 0 and --lr " + lr);
        }
        if (steps < 1) {
            throw new CriaException("--steps " + steps + ": at least 1");
        }
        if (warmup < 0 || warmup > steps) {
            throw new CriaException("--warmup " + warmup + ": between 0 and --steps " + steps);
        }
        if (kind == Kind.STEP && (stepSize < 1 || !(gamma > 0 && gamma <= 1))) {
            throw new CriaException("--schedule step needs --step-size >= 1 (got " + stepSize + ") and 0 < --gamma <= 1 (got " + gamma + ")");
        }
        if (kind == Kind.CYCLICAL && cycle < 2) {
            throw new CriaException("--schedule cyclical needs --cycle of at least 2 steps (got " + cycle + ")");
        }
    }

    /** The learning rate of step {@code s}. */
    public double at(int s) {
        if (s < warmup) {
            return lr * (s + 1) / warmup;
        }
        int after = s - warmup;
        int span = steps - 1 - warmup;
        double p = span <= 0 ? 1.0 : Math.min(1.0, (double) after / span);
        return switch (kind) {
            case COSINE -> minLr + (lr - minLr) * (1 + Math.cos(Math.PI * p)) / 2;
            case LINEAR -> lr + (minLr - lr) * p;
            case STEP -> lr * Math.pow(gamma, after / stepSize);
            case CONSTANT -> lr;
            case CYCLICAL -> {
                double q = (double) (after % cycle) / cycle;
                yield minLr + (lr - minLr) * Math.abs(2 * q - 1);
            }
        };
    }
}
