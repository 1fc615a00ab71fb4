// The tokenizer of a GGUF model: text to token ids and back, as llama.cpp does it for SentencePiece and byte-level BPE vocabularies.
package cria.tokenizer;

import cria.CriaException;
import cria.gguf.Metadata;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Encodes text to token ids and decodes ids to text with the vocabulary stored in a GGUF file,
 * giving the same ids as llama.cpp's {@code llama_tokenize} and the same text as its
 * {@code llama_token_to_piece} / {@code llama_detokenize}.
 *
 * <p>Two tokenizer models are supported: {@code llama} (SentencePiece-style BPE with scores and
 * byte fallback: Llama 1/2, Mistral, Phi-3, TinyStories) and {@code gpt2} (byte-level BPE with ranked
 * merges and a pre-tokenizer chosen by {@code tokenizer.ggml.pre}: Llama 3, GPT-2, Falcon,
 * StarCoder, DeepSeek, Qwen and others). Instances are immutable apart from an internal cache and
 * safe to share between threads.
 */
public final class Tokenizer {
    private static final byte[] EMPTY = new byte[0];

    private final Vocab vocab;
    private final SpmEncoder spm;
    private final BpeEncoder bpe;
    // Filled on demand: the bytes of each token rendered with specials. Atomic so that arrays made
    // by one thread are seen whole by others.
    private final AtomicReferenceArray<byte[]> pieces;

    private Tokenizer(Vocab vocab, SpmEncoder spm, BpeEncoder bpe) {
        this.vocab = vocab;
        this.spm = spm;
        this.bpe = bpe;
        this.pieces = new AtomicReferenceArray<>(vocab.size());
    }

    /**
     * Builds the tokenizer described by a GGUF file's {@code tokenizer.*} metadata.
     *
     * @throws CriaException when the vocabulary is missing, damaged, or of a model Cria does not
     *                       support (e.g. {@code bert}, {@code t5}), naming the file and what to do
     */
    public static Tokenizer fromMetadata(Metadata md) {
        Vocab v = Vocab.load(md);
        if (v.type == Vocab.Type.SPM) {
            return new Tokenizer(v, new SpmEncoder(v), null);
        }
        String[] merges = md.strings("tokenizer.ggml.merges").orElseThrow(() -> new CriaException(md.source()
                + ": the BPE merges are missing (tokenizer.ggml.merges); use a GGUF file converted with its full tokenizer"));
        return new Tokenizer(v, null, new BpeEncoder(v, merges));
    }

    /**
     * Encodes text to token ids.
     *
     * @param addSpecial   add BOS and/or EOS where the vocabulary asks for them
     *                     ({@code tokenizer.ggml.add_bos_token} / {@code add_eos_token}, else the model type's default)
     * @param parseSpecial recognise the texts of control tokens (e.g. {@code <|eot_id|>}, {@code <s>}) as those
     *                     tokens; without it they are tokenized as plain text. User-defined tokens are always recognised.
     */
    public int[] encode(String text, boolean addSpecial, boolean parseSpecial) {
        IntList out = new IntList(Math.max(16, text.length() / 3));
        if (addSpecial && vocab.addBos && vocab.bos != Vocab.NONE) {
            out.add(vocab.bos);
        }
        boolean prevSpecial = true; // SentencePiece puts a space before the first text and before text after a special token
        for (Fragment f : partition(text, parseSpecial)) {
            if (f.token >= 0) {
                out.add(f.token);
                prevSpecial = true;
                continue;
            }
            String part = text.substring(f.start, f.end);
            if (spm != null) {
                String s = vocab.addSpacePrefix && prevSpecial ? " " + part : part;
                spm.encode(s.replace(' ', '\u2581'), out);
            } else {
                bpe.encode(part, out);
            }
            prevSpecial = false;
        }
        if (addSpecial && vocab.addEos && vocab.eos != Vocab.NONE) {
            out.add(vocab.eos);
        }
        return out.toArray();
    }

    /** A piece of the input: a special token (token >= 0) or the text [start, end). */
    private record Fragment(int token, int start, int end) {}

    // Cuts out special tokens, longest first, as llama.cpp's tokenizer_st_partition does.
    private List<Fragment> partition(String text, boolean parseSpecial) {
        List<Fragment> frags = new ArrayList<>();
        if (text.isEmpty()) {
            return frags;
        }
        frags.add(new Fragment(-1, 0, text.length()));
        for (int id : vocab.specialTokens) {
            int attr = vocab.attrs[id];
            if (!parseSpecial && (attr & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) != 0) {
                continue; // only user-defined tokens are cut out of plain text
            }
            String tok = vocab.texts[id];
            if (text.indexOf(tok) < 0) {
                continue;
            }
            List<Fragment> next = new ArrayList<>(frags.size() + 4);
            for (Fragment f : frags) {
                if (f.token >= 0) {
                    next.add(f);
                    continue;
                }
                int base = f.start;
                int end = f.end;
                while (base < end) {
                    int match = text.indexOf(tok, base, end);
                    if (match < 0) {
                        break;
                    }
                    int leftEnd = match;
                    if ((attr & TokenAttr.LSTRIP) != 0) {
                        while (leftEnd > base && isSpace(text.charAt(leftEnd - 1))) {
                            leftEnd--;
                        }
                    }
                    if (leftEnd > base) {
                        next.add(new Fragment(-1, base, leftEnd));
                    }
                    next.add(new Fragment(id, match, match + tok.length()));
                    base = match + tok.length();
                    if ((attr & TokenAttr.RSTRIP) != 0) {
                        while (base < end && isSpace(text.charAt(base))) {
                            base++;
                        }
                    }
                }
                if (base < end) {
                    next.add(new Fragment(-1, base, end));
                }
            }
            frags = next;
        }
        return frags;
    }

    // C's isspace in the "C" locale, which llama.cpp uses for stripping around special tokens.
    private static boolean isSpace(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r');
    }

    /**
     * The UTF-8 bytes one token stands for (a byte token is one byte, possibly part of a character).
     * Control and unknown tokens give nothing unless {@code renderSpecial}; user-defined tokens
     * always give their text.
     */
    public byte[] piece(int id, boolean renderSpecial) {
        checkId(id);
        if (!renderSpecial && (vocab.attrs[id] & (TokenAttr.UNKNOWN | TokenAttr.CONTROL)) != 0) {
            return EMPTY;
        }
        byte[] p = pieces.get(id);
        if (p == null) {
            p = computePiece(id);
            pieces.set(id, p);
        }
        return p;
    }

    private byte[] computePiece(int id) {
        int attr = vocab.attrs[id];
        String text = vocab.texts[id];
        if ((attr & (TokenAttr.UNKNOWN | TokenAttr.CONTROL | TokenAttr.USER_DEFINED)) != 0) {
            return text.getBytes(StandardCharsets.UTF_8);
        }
        if ((attr & TokenAttr.NORMAL) != 0) {
            return spm != null ? text.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8) : bytesOfByteText(text);
        }
        if ((attr & TokenAttr.BYTE) != 0) {
            try {
                return new byte[] {(byte) Integer.parseInt(text.substring(3, 5), 16)};
            } catch (RuntimeException e) {
                return new byte[] {0};
            }
        }
        return EMPTY; // unused and undefined tokens render as nothing
    }

    // Undoes GPT-2's byte-to-character mapping; characters outside it are reported as llama.cpp does.
    private static byte[] bytesOfByteText(String text) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(text.length());
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            int b = ByteUnicode.byteOf(cp);
            if (b >= 0) {
                out.write(b);
            } else {
                StringBuilder sb = new StringBuilder("[UNK_BYTE_0x");
                for (byte x : new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8)) {
                    sb.append(String.format("%02x", x & 0xFF));
                }
                sb.append(text).append(']');
                out.writeBytes(sb.toString().getBytes(StandardCharsets.UTF_8));
            }
        }
        return out.toByteArray();
    }

    /**
     * Decodes ids to text, as the inverse of {@link #encode}: the pieces joined, then read as UTF-8
     * (bytes that do not form a character become U+FFFD). The space SentencePiece puts before the
     * text at the start and after each special token is dropped again, so text encoded without
     * special parsing, with or without BOS, comes back unchanged. See {@link #detokenize} for
     * llama.cpp's exact variant.
     */
    public String decode(int[] ids, boolean renderSpecial) {
        return new String(decodeBytes(ids, renderSpecial, true), StandardCharsets.UTF_8);
    }

    /**
     * Decodes exactly as llama.cpp's {@code llama_detokenize(remove_special = false)}: only the first
     * token loses SentencePiece's leading space (so a BOS first keeps the space after it), and for
     * vocabularies that ask for it (clean_up_tokenization_spaces: GPT-2, Llama 3, Falcon, StarCoder...)
     * the spaces before {@code ? ! . ,} and some contractions are removed.
     */
    public String detokenize(int[] ids, boolean renderSpecial) {
        byte[] b = decodeBytes(ids, renderSpecial, false);
        if (vocab.cleanSpaces) {
            b = CleanSpaces.apply(b);
        }
        return new String(b, StandardCharsets.UTF_8);
    }

    private byte[] decodeBytes(int[] ids, boolean renderSpecial, boolean inverse) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(ids.length * 4);
        boolean removeSpace = vocab.addSpacePrefix;
        int special = TokenAttr.CONTROL | TokenAttr.USER_DEFINED | TokenAttr.UNKNOWN;
        for (int id : ids) {
            byte[] p = piece(id, renderSpecial);
            int skip = removeSpace && p.length > 0 && p[0] == ' ' ? 1 : 0;
            out.write(p, skip, p.length - skip);
            // encode() adds the prefix space again after every special token; llama.cpp only strips it once.
            removeSpace = inverse && vocab.addSpacePrefix && (vocab.attrs[id] & special) != 0;
        }
        return out.toByteArray();
    }

    /** A decoder for one stream of generated ids, giving out text only once its characters are complete. */
    public StreamDecoder streamDecoder(boolean renderSpecial) {
        return new StreamDecoder(this, renderSpecial);
    }

    private void checkId(int id) {
        if (id < 0 || id >= vocab.size()) {
            throw new CriaException("token id " + id + " is out of range: " + vocab.source + " has ids 0.." + (vocab.size() - 1));
        }
    }

    /** Number of tokens in the vocabulary. */
    public int vocabSize() {
        return vocab.size();
    }

    /** The beginning-of-sequence token, or -1 when the vocabulary has none. */
    public int bos() {
        return vocab.bos;
    }

    /** The end-of-sequence token, or -1 when the vocabulary has none. */
    public int eos() {
        return vocab.eos;
    }

    /** Whether {@code encode(..., addSpecial = true, ...)} puts BOS first. */
    public boolean addsBos() {
        return vocab.addBos && vocab.bos != Vocab.NONE;
    }

    /** Whether {@code encode(..., addSpecial = true, ...)} puts EOS last. */
    public boolean addsEos() {
        return vocab.addEos && vocab.eos != Vocab.NONE;
    }

    /**
     * Whether generation stops at this token: EOS, end-of-turn tokens ({@code <|eot_id|>},
     * {@code <|eom_id|>}, {@code <|end|>}, {@code <|im_end|>}, {@code <end_of_turn>}, ...) and the
     * fill-in-the-middle separators, the set llama.cpp builds.
     */
    public boolean isEndOfGeneration(int id) {
        return Arrays.binarySearch(vocab.eog, id) >= 0;
    }

    /** All end-of-generation ids, ascending. */
    public int[] endOfGenerationIds() {
        return vocab.eog.clone();
    }

    /** The token's text as stored in the vocabulary (e.g. {@code ▁the}, {@code Ġthe}, {@code <0x0A>}). */
    public String tokenText(int id) {
        checkId(id);
        return vocab.texts[id];
    }

    /** The token's {@link TokenAttr} bits. */
    public int tokenAttributes(int id) {
        checkId(id);
        return vocab.attrs[id];
    }

    /** The id of the token with exactly this text, or -1. */
    public int tokenId(String text) {
        return vocab.id(text);
    }

    /** {@code llama} (SentencePiece-style) or {@code gpt2} (byte-level BPE). */
    public String model() {
        return vocab.type == Vocab.Type.SPM ? "llama" : "gpt2";
    }

    /** The pre-tokenizer name for byte-level BPE ({@code llama-bpe}, {@code gpt-2}, ...), or null. */
    public String preTokenizer() {
        return vocab.flavor == null ? null : vocab.flavor.name();
    }

    /** Where the vocabulary came from (a file name), for messages. */
    public String source() {
        return vocab.source;
    }
}
