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

    public static SessionOptions defaults() {
        return new SessionOptions(0, KvCache.Type.F16, 256, false);
    }

    public SessionOptions withContextLength(int n) {
        return new SessionOptions(n, kvType, batchSize, allLogits);
    }

    public SessionOptions withKvType(KvCache.Type t) {
        return new SessionOptions(contextLength, t, batchSize, allLogits);
    }

    public SessionOptions withBatchSize(int b) {
        return new SessionOptions(contextLength, kvType, b, allLogits);
    }

    public SessionOptions withAllLogits(boolean all) {
        return new SessionOptions(contextLength, kvType, batchSize, all);
    }
}
