// The log-probability of one generated token and of its most likely alternatives.
package cria.engine;

/**
 * Natural-log probabilities from the model's distribution at one step: the softmax of the logits
 * after any logit bias, before penalties, temperature and truncation (what OpenAI's
 * {@code logprobs} reports).
 *
 * @param token       the generated token
 * @param logprob     its log-probability
 * @param topTokens   the most likely tokens, most likely first (as many as the request asked)
 * @param topLogprobs their log-probabilities
 */
public record TokenLogprob(int token, float logprob, int[] topTokens, float[] topLogprobs) {

    /**
     * Computes the record for {@code token} from {@code logits[off, off + vocab)} with {@code top}
     * alternatives (0 to {@value GenerateOptions#MAX_TOP_LOGPROBS}).
     */
    public static TokenLogprob of(float[] logits, int off, int vocab, int token, int top) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[off + i]);
        }
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            sum += Math.exp(logits[off + i] - max);
        }
        double logZ = max + Math.log(sum);
        int k = Math.min(top, vocab);
        int[] ids = new int[k];
        float[] lp = new float[k];
        int n = 0;
        // insertion into a short sorted list: k is at most 20
        for (int i = 0; i < vocab && k > 0; i++) {
            float v = logits[off + i];
            if (n == k && v <= logits[off + ids[n - 1]]) {
                continue;
            }
            int j = n < k ? n++ : n - 1;
            while (j > 0 && logits[off + ids[j - 1]] < v) {
                ids[j] = ids[j - 1];
                j--;
            }
            ids[j] = i;
        }
        for (int i = 0; i < k; i++) {
            lp[i] = (float) (logits[off + ids[i]] - logZ);
        }
        return new TokenLogprob(token, (float) (logits[off + token] - logZ), ids, lp);
    }
}
