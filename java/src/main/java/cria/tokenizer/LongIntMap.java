// An open-addressing hash map from long keys to non-negative int values (the BPE merge table).
package cria.tokenizer;

import java.util.Arrays;

/** long -> int map without boxing; {@link #get} returns -1 for a missing key. Fixed capacity. */
final class LongIntMap {
    private final long[] keys;
    private final int[] values;
    private final int mask;

    LongIntMap(int expected) {
        int cap = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
        keys = new long[cap];
        values = new int[cap];
        Arrays.fill(values, -1);
        mask = cap - 1;
    }

    private int slot(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 32)) & mask;
    }

    int get(long key) {
        for (int i = slot(key); ; i = (i + 1) & mask) {
            if (values[i] < 0) {
                return -1;
            }
            if (keys[i] == key) {
                return values[i];
            }
        }
    }

    /** Puts a value unless the key is present (one probe sequence for both); returns whether it was put. */
    boolean putIfAbsent(long key, int value) {
        for (int i = slot(key); ; i = (i + 1) & mask) {
            if (values[i] < 0) {
                keys[i] = key;
                values[i] = value;
                return true;
            }
            if (keys[i] == key) {
                return false;
            }
        }
    }

    /** Puts a value (>= 0); the map must not be filled beyond the size given at construction. */
    void put(long key, int value) {
        for (int i = slot(key); ; i = (i + 1) & mask) {
            if (values[i] < 0 || keys[i] == key) {
                keys[i] = key;
                values[i] = value;
                return;
            }
        }
    }
}
