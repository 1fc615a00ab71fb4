// clean_up_tokenization_spaces as llama.cpp applies it after decoding: " ," -> ",", " 's" -> "'s", " ' " -> "'".
package cria.tokenizer;

import java.util.Arrays;

/**
 * The three passes llama.cpp's {@code llama_detokenize} makes over the decoded bytes for
 * vocabularies with clean-up enabled: drop the space before {@code ? ! . ,}; drop the spaces around
 * a lone apostrophe; drop the space before the contractions {@code 's 'm 're 've} (but not
 * {@code 't 'd 'll}). The passes work on bytes; every byte they look at is ASCII.
 */
final class CleanSpaces {
    private CleanSpaces() {}

    static byte[] apply(byte[] in) {
        byte[] t = in.clone();
        int total = t.length;

        // Pass 1: " ?", " !", " .", " ," lose the space.
        int n = total > 0 ? 1 : 0;
        for (int i = 1; i < total; i++) {
            byte x = t[i];
            if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) {
                n--;
            }
            t[n++] = x;
        }
        total = n;

        // Pass 2: " ' " becomes "'".
        n = total > 0 ? 1 : 0;
        for (int i = 1; i < total; i++) {
            byte x = t[i];
            if (x == '\'' && i + 1 < total && t[i - 1] == ' ' && t[i + 1] == ' ') {
                n--;
                t[++i] = 0; // the space after is dropped (llama.cpp overwrites it and skips it)
            }
            t[n++] = x;
        }
        total = n;

        // Pass 3: " 's", " 'm", " 're", " 've" lose the space.
        n = total > 0 ? 1 : 0;
        for (int i = 1; i < total; i++) {
            byte x = t[i];
            if (t[i - 1] == ' ' && x == '\'' && i + 1 < total) {
                byte x1 = t[i + 1];
                if (x1 == 's' || x1 == 'm') {
                    n--;
                } else if (x1 != 't' && x1 != 'd' && i + 2 < total) {
                    byte x2 = t[i + 2];
                    if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) {
                        n--;
                    }
                }
            }
            t[n++] = x;
        }
        return Arrays.copyOf(t, n);
    }
}
