// One-line summaries of a model's hyper-parameters and tokenizer, from GGUF metadata.
package cria.cli;

import cria.gguf.GgufValue;
import cria.gguf.Metadata;
import java.util.ArrayList;
import java.util.List;

/** Reads the usual {@code <arch>.*} and {@code tokenizer.ggml.*} keys for display; missing keys are skipped. */
final class ModelSummary {
    private ModelSummary() {}

    private static final String[][] HYPER = {
        {"context_length", "context"},
        {"embedding_length", "dim"},
        {"block_count", "layers"},
        {"feed_forward_length", "ffn"},
        {"attention.head_count", "heads"},
        {"attention.head_count_kv", "kv heads"},
        {"attention.key_length", "head dim"},
        {"rope.dimension_count", "rope dims"},
        {"rope.freq_base", "rope base"},
        {"rope.scaling.type", "rope scaling"},
        {"rope.scaling.factor", "rope factor"},
        {"attention.layer_norm_rms_epsilon", "rms eps"},
        {"vocab_size", "vocab"},
        {"expert_count", "experts"},
    };

    static String hyperParameters(Metadata md, String arch) {
        List<String> parts = new ArrayList<>();
        for (String[] h : HYPER) {
            GgufValue v = md.get(arch + "." + h[0]);
            if (v != null && !v.isArray()) {
                parts.add(h[1] + " " + scalar(v));
            }
        }
        return String.join(", ", parts);
    }

    private static String scalar(GgufValue v) {
        Double d = v.asDouble();
        if (d == null) {
            return String.valueOf(v.value());
        }
        if (v.type().isInteger()) {
            return Long.toString(v.asLong());
        }
        if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            return Long.toString(d.longValue());
        }
        return v.value() instanceof Float f ? Float.toString(f) : Double.toString(d);
    }

    static String tokenizer(Metadata md) {
        GgufValue model = md.get("tokenizer.ggml.model");
        if (model == null || !(model.value() instanceof String m)) {
            return "(none in this file)";
        }
        String kind = switch (m) {
            case "llama" -> "SentencePiece BPE";
            case "gpt2" -> "byte-level BPE";
            case "bert" -> "WordPiece";
            case "t5" -> "SentencePiece Unigram";
            case "rwkv" -> "RWKV";
            case "no_vocab" -> "no vocabulary";
            default -> "unknown kind";
        };
        StringBuilder sb = new StringBuilder(m).append(" (").append(kind).append(')');
        GgufValue tokens = md.get("tokenizer.ggml.tokens");
        if (tokens != null && tokens.isArray()) {
            sb.append(", ").append(tokens.length()).append(" tokens");
        }
        GgufValue pre = md.get("tokenizer.ggml.pre");
        if (pre != null) {
            sb.append(", pre-tokenizer ").append(pre.value());
        }
        GgufValue merges = md.get("tokenizer.ggml.merges");
        if (merges != null && merges.isArray()) {
            sb.append(", ").append(merges.length()).append(" merges");
        }
        for (String id : new String[] {"bos", "eos", "eot", "unknown", "padding"}) {
            GgufValue v = md.get("tokenizer.ggml." + id + "_token_id");
            if (v != null && v.asLong() != null) {
                sb.append(", ").append(id.equals("unknown") ? "unk" : id.equals("padding") ? "pad" : id).append(' ').append(v.asLong());
            }
        }
        if (md.get("tokenizer.chat_template") != null) {
            sb.append(", chat template");
        }
        return sb.toString();
    }
}
