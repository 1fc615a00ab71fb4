// One LoRA adapter to apply when a model loads: its file and its scale, parsed from "FILE[:SCALE]".
package cria.engine;

import cria.CriaException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A LoRA adapter (llama.cpp's adapter GGUF) and the scale it is applied at: 1 as trained, 0 off,
 * 0.5 half-way, negative to subtract it. The factor of its correction is
 * {@code scale · alpha / rank} (see {@code cria.model.LoraAdapter}).
 *
 * @param file  the adapter GGUF
 * @param scale the user scale, finite
 */
public record LoraSpec(Path file, float scale) {

    /** Checks the scale. */
    public LoraSpec {
        if (file == null) {
            throw new CriaException("a LoRA adapter needs a file");
        }
        if (!Float.isFinite(scale)) {
            throw new CriaException("LoRA adapter " + file + ": the scale must be a finite number, got " + scale);
        }
    }

    /** The adapter at scale 1. */
    public static LoraSpec of(Path file) {
        return new LoraSpec(file, 1f);
    }

    /**
     * Parses {@code FILE} or {@code FILE:SCALE} (e.g. {@code style.gguf:0.5}). The text after the
     * last colon is the scale, unless the whole argument names an existing file.
     *
     * @throws CriaException (one line) for an empty argument, a missing file name, or a scale that
     *                       is not a finite number
     */
    public static LoraSpec parse(String arg) {
        if (arg == null || arg.isBlank()) {
            throw new CriaException("--lora needs FILE or FILE:SCALE, got an empty argument");
        }
        int colon = arg.lastIndexOf(':');
        if (colon < 0 || Files.exists(Path.of(arg))) {
            return of(Path.of(arg));
        }
        String head = arg.substring(0, colon);
        String tail = arg.substring(colon + 1).strip();
        if (head.isEmpty()) {
            throw new CriaException("--lora " + arg + ": no file before the scale; give FILE or FILE:SCALE, e.g. adapter.gguf:0.5");
        }
        float scale;
        try {
            scale = Float.parseFloat(tail);
        } catch (NumberFormatException e) {
            throw new CriaException("--lora " + arg + ": the scale '" + tail + "' is not a number; give FILE or FILE:SCALE, e.g. adapter.gguf:0.5");
        }
        if (!Float.isFinite(scale)) {
            throw new CriaException("--lora " + arg + ": the scale must be a finite number, got '" + tail + "'");
        }
        return new LoraSpec(Path.of(head), scale);
    }

    @Override
    public String toString() {
        return file + ":" + scale;
    }

    /** The scales of several adapters, in order. */
    public static float[] scales(java.util.List<LoraSpec> specs) {
        float[] s = new float[specs.size()];
        for (int i = 0; i < s.length; i++) {
            s[i] = specs.get(i).scale();
        }
        return s;
    }
}
