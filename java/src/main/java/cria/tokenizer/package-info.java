/**
 * A model's vocabulary and chat template, as llama.cpp reads them from GGUF metadata (public API):
 * {@link cria.tokenizer.Tokenizer} encodes and decodes with the same ids and text as llama.cpp,
 * and is safe to share between threads; {@link cria.tokenizer.ChatTemplate} renders
 * conversations with the file's Jinja template under limits (a hostile template fails with a
 * {@link cria.CriaException}). The other classes are the tokenizers' parts and are package-private.
 */
package cria.tokenizer;
