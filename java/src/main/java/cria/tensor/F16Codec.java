// F16: IEEE half floats.
package cria.tensor;

import cria.gguf.GgmlType;

/** Codec for F16 tensors. */
final class F16Codec extends HalfCodec {
    @Override
    public GgmlType type() {
        return GgmlType.F16;
    }

    @Override
    float toFloat(short bits) {
        return Half.f16ToFloat(bits);
    }

    @Override
    short fromFloat(float v) {
        return Half.floatToF16(v);
    }
}
