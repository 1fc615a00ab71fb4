// Feeds `cria info` hundreds of mutated GGUF files: every run must end with exit 0, or exit 1 and one line on stderr.
package cria.gguf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import cria.CliRunner;
import cria.SharedData;
import cria.TestModels;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Byte flips, truncations and rewrites of header fields (counts, lengths, types, dimensions,
 * offsets) on real files. The rule under test: a broken or hostile file never crashes the JVM,
 * never hangs, never prints a stack trace; it gets one line naming the file and exit code 1.
 */
class HostileFileTest {

    @TempDir
    Path tmp;

    private int ran;
    private int rejected;

    @Test
    void mutatedCopiesOfAFileTheTestWritesGetOneLineErrors() throws IOException {
        Path base = TestModels.tinyLlama(tmp.resolve("base.gguf"), 1);
        mutateAll(Files.readAllBytes(base), "tiny", 200);
        assertTrue(rejected > ran / 3, "most mutations should be rejected: " + rejected + " of " + ran);
    }

    @Test
    void mutatedCopiesOfSharedModelsGetOneLineErrors() throws IOException {
        Path models = SharedData.require("models");
        for (String name : new String[] {"stories260K.gguf", "synth-tok512-Q4_K.gguf", "stories260K-F16.gguf"}) {
            Path f = models.resolve(name);
            if (Files.exists(f)) {
                mutateAll(Files.readAllBytes(f), name, 120);
            }
        }
        assertTrue(ran >= 300, "ran " + ran);
    }

    private void mutateAll(byte[] original, String label, int randomCount) throws IOException {
        long dataOffset;
        Path clean = tmp.resolve(label + ".clean.gguf");
        Files.write(clean, original);
        try (GgufFile f = GgufFile.open(clean)) {
            dataOffset = f.dataOffset();
        }
        Random r = new Random(label.hashCode());
        List<byte[]> cases = new ArrayList<>();
        // Truncations: in the header, at the data boundary, inside the data, one byte short.
        for (long cut : new long[] {0, 1, 3, 4, 7, 8, 15, 16, 23, 24, 30, dataOffset / 2, dataOffset - 1, dataOffset,
                dataOffset + 1, original.length / 2, original.length - 1}) {
            if (cut >= 0 && cut < original.length) {
                cases.add(java.util.Arrays.copyOf(original, (int) cut));
            }
        }
        for (int i = 0; i < 20; i++) {
            cases.add(java.util.Arrays.copyOf(original, r.nextInt((int) dataOffset)));
        }
        // Header fields: magic, version (1, 4, big-endian 3), counts.
        cases.add(withInt(original, 0, 0x47475546));
        cases.add(withInt(original, 4, 1));
        cases.add(withInt(original, 4, 4));
        cases.add(withInt(original, 4, 0x03000000));
        for (long v : new long[] {-1L, Long.MAX_VALUE, 1L << 40, 100_000, 0}) {
            cases.add(withLong(original, 8, v));
            cases.add(withLong(original, 16, v));
        }
        // The first key's length, and its value type.
        for (long v : new long[] {-1L, 1L << 32, original.length, 0}) {
            cases.add(withLong(original, 24, v));
        }
        int firstKeyLen = (int) ByteBuffer.wrap(original, 24, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        for (int t : new int[] {13, 99, -1, 9, 8}) {
            cases.add(withInt(original, 32 + firstKeyLen, t));
        }
        // Tensor infos: find each tensor name and rewrite n_dims, a dimension, the type, the offset.
        for (int at : tensorInfoPositions(original, (int) dataOffset, 6)) {
            int nameLen = (int) ByteBuffer.wrap(original, at, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            int dims = at + 8 + nameLen;
            int nDims = ByteBuffer.wrap(original, dims, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
            int type = dims + 4 + 8 * nDims;
            int offset = type + 4;
            for (int v : new int[] {0, 5, -1, 1 << 20}) {
                cases.add(withInt(original, dims, v));
            }
            for (long v : new long[] {-1L, 1L << 62, 3, 0, 1L << 33}) {
                cases.add(withLong(original, dims + 4, v));
            }
            for (int v : new int[] {4, 5, 31, 99, 1000, -1}) {
                cases.add(withInt(original, type, v));
            }
            for (long v : new long[] {-1L, 1, 32, 0, original.length, original.length - 32, 1L << 50}) {
                cases.add(withLong(original, offset, v));
            }
        }
        // Invalid UTF-8 in the first key.
        byte[] bad = original.clone();
        bad[32] = (byte) 0xC3;
        bad[33] = (byte) 0x28;
        cases.add(bad);
        // Random byte flips and random 8-byte rewrites in the header.
        for (int i = 0; i < randomCount; i++) {
            byte[] m = original.clone();
            int flips = 1 + r.nextInt(4);
            for (int k = 0; k < flips; k++) {
                int p = r.nextInt((int) dataOffset);
                m[p] = switch (r.nextInt(4)) {
                    case 0 -> (byte) 0xff;
                    case 1 -> 0;
                    case 2 -> (byte) (m[p] ^ (1 << r.nextInt(8)));
                    default -> (byte) r.nextInt(256);
                };
            }
            cases.add(m);
            if (i % 3 == 0) {
                int p = r.nextInt(Math.max(1, (int) dataOffset - 8));
                cases.add(withLong(original, p, r.nextLong()));
            }
        }
        for (int i = 0; i < cases.size(); i++) {
            check(cases.get(i), label + "-" + i);
        }
    }

    private void check(byte[] content, String name) throws IOException {
        Path f = tmp.resolve(name + ".gguf");
        Files.write(f, content);
        long t0 = System.nanoTime();
        CliRunner.Result res = CliRunner.run("info", f.toString());
        double secs = (System.nanoTime() - t0) / 1e9;
        ran++;
        assertTrue(secs < 10, name + " took " + secs + " s");
        if (res.code() == 0) {
            assertTrue(res.err().isEmpty() || res.err().lines().noneMatch(l -> l.contains("Exception")), name + ": " + res);
        } else {
            rejected++;
            assertEquals(1, res.code(), name + ": " + res);
            List<String> lines = res.err().lines().toList();
            assertEquals(1, lines.size(), name + ": expected one line on stderr: " + res);
            String line = lines.get(0);
            assertTrue(line.startsWith("cria: "), line);
            assertTrue(line.contains(f.toString()), "the message names the file: " + line);
            assertFalse(line.contains("Exception"), line);
        }
        Files.delete(f);
    }

    private static List<Integer> tensorInfoPositions(byte[] b, int end, int max) {
        List<Integer> out = new ArrayList<>();
        for (String n : new String[] {"token_embd.weight", "output_norm.weight", "output.weight", "blk.0.attn_q.weight",
                "blk.0.ffn_down.weight", "blk.1.ffn_up.weight"}) {
            byte[] nb = n.getBytes(StandardCharsets.US_ASCII);
            outer:
            for (int i = 8; i + nb.length <= end; i++) {
                for (int k = 0; k < nb.length; k++) {
                    if (b[i + k] != nb[k]) {
                        continue outer;
                    }
                }
                long len = ByteBuffer.wrap(b, i - 8, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
                if (len == nb.length) {
                    out.add(i - 8);
                    break;
                }
            }
            if (out.size() >= max) {
                break;
            }
        }
        if (out.isEmpty()) {
            fail("no tensor infos found");
        }
        return out;
    }

    private static byte[] withInt(byte[] b, int at, int v) {
        byte[] m = b.clone();
        ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putInt(at, v);
        return m;
    }

    private static byte[] withLong(byte[] b, int at, long v) {
        byte[] m = b.clone();
        if (at + 8 <= m.length) {
            ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putLong(at, v);
        }
        return m;
    }
}
