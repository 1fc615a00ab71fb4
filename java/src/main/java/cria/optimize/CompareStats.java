// How far one model's next-token distributions are from a base model's: KL divergence, top-1 agreement, perplexities (llama-perplexity --kl-divergence's statistics).
package cria.optimize;

import java.util.Arrays;

/**
 * Accumulates, token by token, what llama.cpp's {@code llama-perplexity --kl-divergence}
 * reports for a model Q against a base model P scored on the same tokens:
 * <ul>
 *   <li>the perplexities of both (from each one's log-probability of the actual next token) and their ratio;</li>
 *   <li>the KL divergence {@code KL(P || Q) = sum_i p_i (log p_i - log q_i)} per token: its mean and percentiles;</li>
 *   <li>"same top p": how often both put their highest logit on the same token (the first one on ties);</li>
 *   <li>Δp, the change in the probability of the actual next token: mean and RMS.</li>
 * </ul>
 * Unlike llama.cpp, which stores the base's log-probabilities as 16-bit steps clipped 16 nats
 * below the top and drops terms with {@code log p_i <= -16}, the KL divergence here is exact in
 * double precision over the whole vocabulary; the two agree to a few parts in a thousand on real
 * models. One {@code float} per token is kept for the percentiles.
 */
public final class CompareStats {
    private double sumNll;
    private double sumNll2;
    private double sumNllBase;
    private double sumNllBase2;
    private double sumKld;
    private double sumKld2;
    private double sumPDiff;
    private double sumPDiff2;
    private long sameTop;
    private long count;
    private float[] klds;
    private boolean sorted;
    private double[] logP = new double[0];
    private double[] logQ = new double[0];

    /** Statistics for about {@code expectedTokens} tokens (the per-token list grows beyond it when needed). */
    public CompareStats(long expectedTokens) {
        if (expectedTokens < 0 || expectedTokens > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("token count out of range: " + expectedTokens);
        }
        klds = new float[(int) Math.max(16, expectedTokens)];
    }

    /**
     * {@code log(softmax(logits)[token])} over the first {@code n} logits, in double and shifted by
     * the largest logit (the value {@code cria perplexity} sums).
     */
    public static double logProb(float[] logits, int n, int token) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, logits[i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(logits[i] - max);
        }
        return logits[token] - max - Math.log(sum);
    }

    /**
     * Writes {@code log(softmax(logits))} of the first {@code n} logits into {@code out} (each
     * value the same double {@link #logProb} gives) and returns the index of the largest logit
     * (the first one on ties).
     */
    public static int logSoftmax(float[] logits, int n, double[] out) {
        double max = Double.NEGATIVE_INFINITY;
        int top = 0;
        for (int i = 0; i < n; i++) {
            if (logits[i] > max) {
                max = logits[i];
                top = i;
            }
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(logits[i] - max);
        }
        double lse = Math.log(sum);
        for (int i = 0; i < n; i++) {
            out[i] = logits[i] - max - lse;
        }
        return top;
    }

    /** {@code KL(P || Q) = sum_i exp(logP[i]) (logP[i] - logQ[i])} over the first {@code n} entries. */
    public static double klDivergence(double[] logP, double[] logQ, int n) {
        double kl = 0;
        for (int i = 0; i < n; i++) {
            double lp = logP[i];
            if (lp > Double.NEGATIVE_INFINITY) { // a token the base gives probability 0 adds nothing
                kl += Math.exp(lp) * (lp - logQ[i]);
            }
        }
        return kl;
    }

    /**
     * Adds one scored token: the base's logits and the model's logits at the same position
     * (the first {@code n} of each), and the actual next token.
     */
    public void add(float[] baseLogits, float[] logits, int n, int target) {
        if (logP.length < n) {
            logP = new double[n];
            logQ = new double[n];
        }
        int topP = logSoftmax(baseLogits, n, logP);
        int topQ = logSoftmax(logits, n, logQ);
        add(logP, topP, logQ, topQ, n, target);
    }

    /**
     * Adds one scored token from log-probabilities already computed: the base's ({@code logP},
     * its top token {@code topP}) and the model's ({@code logQ}, {@code topQ}).
     */
    public void add(double[] logP, int topP, double[] logQ, int topQ, int n, int target) {
        double nll = -logQ[target];
        double nllBase = -logP[target];
        double kl = klDivergence(logP, logQ, n);
        sumNll += nll;
        sumNll2 += nll * nll;
        sumNllBase += nllBase;
        sumNllBase2 += nllBase * nllBase;
        sumKld += kl;
        sumKld2 += kl * kl;
        double pDiff = Math.exp(-nll) - Math.exp(-nllBase);
        sumPDiff += pDiff;
        sumPDiff2 += pDiff * pDiff;
        if (topP == topQ) {
            sameTop++;
        }
        if (count == klds.length) {
            if (klds.length >= Integer.MAX_VALUE - 8) {
                throw new IllegalStateException("too many tokens for one comparison");
            }
            klds = Arrays.copyOf(klds, (int) Math.min(Integer.MAX_VALUE - 8, 2L * klds.length));
        }
        klds[(int) count++] = (float) kl;
        sorted = false;
    }

    /** Tokens added. */
    public long count() {
        return count;
    }

    /** The model's perplexity on the scored tokens. */
    public double perplexity() {
        return Math.exp(sumNll / count);
    }

    /** llama.cpp's uncertainty of the perplexity: ppl × the standard error of the mean negative log-likelihood. */
    public double perplexityError() {
        return perplexity() * standardError(sumNll, sumNll2);
    }

    /** The base's perplexity on the same tokens. */
    public double basePerplexity() {
        return Math.exp(sumNllBase / count);
    }

    /** PPL(model) / PPL(base) = exp(mean of nll - nll_base). */
    public double perplexityRatio() {
        return Math.exp((sumNll - sumNllBase) / count);
    }

    /** Mean KL divergence per token (nats). */
    public double meanKld() {
        return sumKld / count;
    }

    /** The standard error of {@link #meanKld()}. */
    public double meanKldError() {
        return standardError(sumKld, sumKld2);
    }

    /** The KL divergence below which {@code fraction} of the tokens lie (0.99: the 99th percentile), interpolated as llama.cpp does. */
    public double kldPercentile(double fraction) {
        if (count == 0) {
            return Double.NaN;
        }
        if (!sorted) {
            Arrays.sort(klds, 0, (int) count);
            sorted = true;
        }
        return percentile(klds, (int) count, fraction);
    }

    /** The largest per-token KL divergence. */
    public double maxKld() {
        return kldPercentile(1);
    }

    /** Fraction of tokens where the model's most likely token is the base's ("same top p"). */
    public double sameTopFraction() {
        return (double) sameTop / count;
    }

    /** Mean change of the actual next token's probability (model minus base). */
    public double meanPDiff() {
        return sumPDiff / count;
    }

    /** Root mean square of that change. */
    public double rmsPDiff() {
        return Math.sqrt(sumPDiff2 / count);
    }

    /**
     * The value below which {@code fraction} of the first {@code n} values of {@code sorted}
     * (ascending) lie: linear interpolation at position {@code fraction × (n - 1)}, as
     * llama-perplexity prints its KLD percentiles.
     */
    public static double percentile(float[] sorted, int n, double fraction) {
        if (n == 0) {
            return Double.NaN;
        }
        if (fraction <= 0) {
            return sorted[0];
        }
        if (fraction >= 1) {
            return sorted[n - 1];
        }
        double p = fraction * (n - 1);
        int ip = (int) p;
        double f = p - ip;
        return (1 - f) * sorted[ip] + f * sorted[Math.min(ip + 1, n - 1)];
    }

    private double standardError(double sum, double sum2) {
        if (count < 2) {
            return 0;
        }
        double mean = sum / count;
        double var = sum2 / count - mean * mean;
        return var > 0 ? Math.sqrt(var / (count - 1)) : 0;
    }
}
