// BF16: bfloat16, the upper half of an F32.
package cria.tensor;

import cria.gguf.GgmlType;

/** Codec for BF16 tensors. */
final class BF16Codec extends HalfCodec {
    @Override
    public GgmlType type() {
        return GgmlType.BF16;
    }

    @Override
    float toFloat(short bits) {
        return Half.bf16ToFloat(bits);
    }

    @Override
    short fromFloat(float v) {
        return Half.floatToBf16(v);
    }
}
