/**
 * Tensors over mapped bytes, one codec per GGML block format (bit-exact with ggml), llama.cpp's quantization plans and the quantizer.
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release. Programs use {@link cria.engine}.
 */
package cria.tensor;
