// Kernel arguments in launch order, each in an 8-byte slot, with the signature they spell.
package cria.backend.cuda;

import java.util.Arrays;

/**
 * A reusable list of kernel arguments. Each value sits in a 64-bit slot (ints and floats in its
 * low 32 bits, little-endian), which is what the emulator reads; {@link JCudaGpu} turns slots
 * into the pointers cuLaunchKernel wants. The letters appended make the signature that
 * {@link Gpu#launch} checks against the kernel's {@link KernelSpec}.
 */
final class Args {
    private long[] slots = new long[24];
    private final StringBuilder sig = new StringBuilder(24);

    /** A copy of the slots and signature (the launch recorder keeps launches past the launcher's next reset). */
    Args copy() {
        Args a = new Args();
        a.slots = Arrays.copyOf(slots, Math.max(size(), 1));
        a.sig.append(sig);
        return a;
    }

    /** True when both hold the same arguments. */
    boolean sameAs(Args o) {
        return sig.toString().contentEquals(o.sig) && Arrays.equals(slots, 0, size(), o.slots, 0, o.size());
    }

    /** A hash of the arguments, consistent with {@link #sameAs}. */
    int hash() {
        return 31 * sig.toString().hashCode() + Arrays.hashCode(Arrays.copyOf(slots, size()));
    }

    /** Empties the list for the next launch. */
    Args reset() {
        sig.setLength(0);
        return this;
    }

    private Args put(char kind, long bits) {
        int i = sig.length();
        if (i == slots.length) {
            slots = Arrays.copyOf(slots, 2 * i);
        }
        slots[i] = bits;
        sig.append(kind);
        return this;
    }

    /** A device pointer. */
    Args ptr(long address) {
        return put('p', address);
    }

    Args i32(int v) {
        return put('i', v & 0xffffffffL);
    }

    Args f32(float v) {
        return put('f', Float.floatToRawIntBits(v) & 0xffffffffL);
    }

    Args f64(double v) {
        return put('d', Double.doubleToRawLongBits(v));
    }

    Args i64(long v) {
        return put('l', v);
    }

    int size() {
        return sig.length();
    }

    String signature() {
        return sig.toString();
    }

    char kind(int i) {
        return sig.charAt(i);
    }

    long slot(int i) {
        return slots[i];
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("(");
        for (int i = 0; i < size(); i++) {
            if (i > 0) {
                b.append(", ");
            }
            switch (kind(i)) {
                case 'p' -> b.append("0x").append(Long.toHexString(slots[i]));
                case 'f' -> b.append(Float.intBitsToFloat((int) slots[i]));
                case 'd' -> b.append(Double.longBitsToDouble(slots[i]));
                case 'i' -> b.append((int) slots[i]);
                default -> b.append(slots[i]);
            }
        }
        return b.append(")").toString();
    }
}
