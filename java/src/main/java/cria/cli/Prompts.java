// Turning prompt text into token ids with a model's own vocabulary.
package cria.cli;

import cria.CriaException;
import cria.engine.Model;

/** Prompt encoding for the verbs. */
final class Prompts {
    private Prompts() {}

    static int[] encode(Model model, String text) {
        throw new CriaException("text prompts are not available yet; pass --ids");
    }
}
