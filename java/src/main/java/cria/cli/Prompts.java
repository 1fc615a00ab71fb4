// Turning prompt text into token ids with a model's own vocabulary.
package cria.cli;

import cria.engine.Model;

/** Prompt encoding for the verbs: BOS as the vocabulary asks, special tokens parsed (as llama.cpp does for prompts). */
final class Prompts {
    private Prompts() {}

    static int[] encode(Model model, String text) {
        return model.tokenizer().encode(text, true, true);
    }
}
