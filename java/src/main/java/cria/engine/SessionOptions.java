// How to open a session: context length, KV cache type, batch size.
package cria.engine;

import cria.backend.KvCache;

/**
 * Options for {@link Model#newSession}.
 *
 * @param contextLength positions the session can hold; 0 means min(model context, 4096)
 * @param kvType        KV cache element type (F16 by default, F32 on request)
 * @param batchSize     prompt tokens processed per forward step
 * @param allLogits     keep room for the logits of every token of a step (for {@link Session#evalAll});
 *                      without it only the last token's logits are computed
 */
public record SessionOptions(int contextLength, KvCache.Type kvType, int batchSize, boolean allLogits) {

    /** The model's context up to 4096 positions, an F16 cache, prompts in steps of 256 tokens, last logits only. */
    public static SessionOptions defaults() {
        return new SessionOptions(0, KvCache.Type.F16, 256, false);
    }

    /** A copy holding {@code n} positions (0: the model's, at most 4096). */
    public SessionOptions withContextLength(int n) {
        return new SessionOptions(n, kvType, batchSize, allLogits);
    }

    /** A copy with another KV cache element type. */
    public SessionOptions withKvType(KvCache.Type t) {
        return new SessionOptions(contextLength, t, batchSize, allLogits);
    }

    /** A copy evaluating prompts in steps of {@code b} tokens. */
    public SessionOptions withBatchSize(int b) {
        return new SessionOptions(contextLength, kvType, b, allLogits);
    }

    /** A copy that keeps (or does not keep) room for the logits of every token of a step. */
    public SessionOptions withAllLogits(boolean all) {
        return new SessionOptions(contextLength, kvType, batchSize, all);
    }
}
