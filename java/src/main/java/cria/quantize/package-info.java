/**
 * llama.cpp's quantization policy and the quantizer behind {@code cria quantize}: file types (type mixes), which tensor gets which type, importance matrices (llama.cpp's imatrix files and how llama-quantize uses them), and the parallel re-encoding of a model's tensors.
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release. Programs use {@link cria.engine}.
 */
package cria.quantize;
