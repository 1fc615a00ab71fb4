// Importance-weighted quantization against llama-quantize's own bytes: recorded digests of its tensors, every file type.
package cria.quantize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import cria.SharedData;
import cria.gguf.GgmlType;
import cria.gguf.GgufFile;
import cria.tensor.Codecs;
import cria.tensor.Tensor;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code imatrix-digests-synth-tok512.txt} holds, for 16 file types, the SHA-256 of the first 64
 * rows of every tensor llama-quantize --imatrix wrote from synth-tok512-f32.gguf with the
 * {@link SeededImatrix} (how it was made is written at the top of the file). Cria's plan must
 * give every tensor the same type, and its weighted quantizers the same bytes. Skipped without
 * ../shared. (The whole files are compared by tools/imatrix-quantize-vs-llamacpp.)
 */
class ImatrixDigestsTest {
    static final String RESOURCE = "/cria/quantize/imatrix-digests-synth-tok512.txt";
    static final int ROWS = 64;

    /** The recorded lines: file type -> tensor -> "GGMLTYPE SHA256". */
    static Map<String, Map<String, String>> recorded() throws IOException {
        Map<String, Map<String, String>> d = new LinkedHashMap<>();
        try (InputStream in = ImatrixDigestsTest.class.getResourceAsStream(RESOURCE)) {
            assertNotNull(in, RESOURCE + " is missing");
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                String[] f = line.trim().split(" ");
                assertEquals(4, f.length, "bad line in " + RESOURCE + ": " + line);
                d.computeIfAbsent(f[0], k -> new LinkedHashMap<>()).put(f[1], f[2] + " " + f[3]);
            }
        }
        return d;
    }

    /** SHA-256 of the first {@link #ROWS} rows of {@code data} (rows of {@code rowBytes}). */
    static String digest(MemorySegment data, long rowBytes, long rows) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(data.asSlice(0, Math.min(ROWS, rows) * rowBytes).toArray(ValueLayout.JAVA_BYTE));
            return HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void everyFileTypeMatchesLlamaQuantizesTensors() throws Exception {
        Path model = SharedData.require("models/synth-tok512-f32.gguf");
        Map<String, Map<String, String>> expected = recorded();
        assertEquals(16, expected.size(), "file types recorded");
        Map<String, String> cache = new HashMap<>();
        List<String> failures = new ArrayList<>();
        try (GgufFile f = GgufFile.open(model); Arena arena = Arena.ofConfined()) {
            ImportanceMatrix im = SeededImatrix.of(f);
            for (Map.Entry<String, Map<String, String>> ft : expected.entrySet()) {
                LlamaFileType type = LlamaFileType.parse(ft.getKey());
                List<QuantPlan.Item> plan = QuantPlan.of(f.metadata(), f.tensors(), type, false, true);
                ImportanceUse use = ImportanceUse.check(plan, type, im, "seeded");
                Map<String, String> want = ft.getValue();
                int converted = 0;
                for (QuantPlan.Item it : plan) {
                    if (!it.converts()) {
                        continue;
                    }
                    converted++;
                    String name = it.tensor().name();
                    String w = want.get(name);
                    if (w == null) {
                        failures.add(type + " " + name + ": converted by Cria, not by llama-quantize");
                        continue;
                    }
                    float[] weights = use.weightsFor(it);
                    String got = cache.computeIfAbsent(name + " " + it.target(), k -> quantizedDigest(f, it.target(), name, weights, arena));
                    if (!w.equals(it.target() + " " + got)) {
                        failures.add(type + " " + name + ": Cria " + it.target() + " " + got + ", llama-quantize " + w);
                    }
                }
                if (converted != want.size()) {
                    failures.add(type + ": Cria converts " + converted + " tensors, llama-quantize " + want.size());
                }
            }
        }
        if (!failures.isEmpty()) {
            fail(failures.size() + " differences, first: " + String.join("; ", failures.subList(0, Math.min(5, failures.size()))));
        }
    }

    /** The digest of the first rows of {@code name} quantized to {@code type} with {@code weights} (null: none). */
    private static String quantizedDigest(GgufFile f, GgmlType type, String name, float[] weights, Arena arena) {
        Tensor t = Tensor.of(f, name);
        int n = t.rowLength();
        long rows = Math.min(ROWS, t.rows());
        long rb = type.rowBytes(n);
        MemorySegment out = arena.allocate(rb * rows);
        for (long r = 0; r < rows; r++) {
            Codecs.of(type).quantize(t.dequantizeRow(r), 0, n, weights, out, r * rb);
        }
        return digest(out, rb, rows);
    }

    /** SHA-256 of the importance matrix file llama-quantize was given (SeededImatrix of synth-tok512-f32, as written by Cria). */
    static final String IMATRIX_SHA256 = "49ea89966309091816f0971eabab73bb73ec63834590392b193dfb35af9c72c3";

    @Test
    void theSeededMatrixIsTheOneTheDigestsWereMadeWith(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        Path model = SharedData.require("models/synth-tok512-f32.gguf");
        Path file = tmp.resolve("seeded.imatrix.gguf");
        try (GgufFile f = GgufFile.open(model)) {
            ImportanceMatrix im = SeededImatrix.of(f);
            assertEquals(22, im.entries().size());
            assertEquals(0, im.entries().get("blk.1.attn_k.weight").count(), "one entry without rows");
            im.write(file);
        }
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        assertEquals(IMATRIX_SHA256, HexFormat.of().formatHex(md.digest(java.nio.file.Files.readAllBytes(file))),
                "the seeded importance matrix changed: the recorded digests were made with another one");
    }
}
