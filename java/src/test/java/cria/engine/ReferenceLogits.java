// Reads llama.cpp's reference logits and prompt ids from ../shared/reference and compares logits against them.
package cria.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/** llama.cpp's outputs for one model, and the comparison rules of the CPU inference issue. */
record ReferenceLogits(int[] promptIds, float[][] logits) {

    static ReferenceLogits read(Path refDir, String model) throws IOException {
        String ids = Files.readString(refDir.resolve(model + ".prompt_ids.txt")).trim();
        int[] prompt = Arrays.stream(ids.split("[,\\s]+")).mapToInt(Integer::parseInt).toArray();
        byte[] raw = Files.readAllBytes(refDir.resolve(model + ".logits.f32"));
        ByteBuffer bb = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        int vocab = raw.length / 4 / prompt.length;
        float[][] l = new float[prompt.length][vocab];
        for (float[] row : l) {
            bb.asFloatBuffer().get(row);
            bb.position(bb.position() + 4 * vocab);
        }
        return new ReferenceLogits(prompt, l);
    }

    /** Relative RMS error of a against reference r: ||a - r|| / ||r||. */
    static double relRms(float[] a, float[] r) {
        double num = 0, den = 0;
        for (int i = 0; i < r.length; i++) {
            double d = a[i] - r[i];
            num += d * d;
            den += (double) r[i] * r[i];
        }
        return Math.sqrt(num / den);
    }

    static int argmax(float[] a) {
        int best = 0;
        for (int i = 1; i < a.length; i++) {
            if (a[i] > a[best]) {
                best = i;
            }
        }
        return best;
    }

    /** The tolerance of the issue for a model file's weight type. */
    static double tolerance(String model) {
        if (model.endsWith("-F16")) {
            return 3e-3;
        }
        if (model.endsWith("-BF16")) {
            return 6e-3;
        }
        if (model.endsWith("-f32") || model.equals("stories260K")) {
            return 2e-3;
        }
        return 4e-2;
    }

    static boolean isFloatModel(String model) {
        return tolerance(model) < 1e-2;
    }
}
