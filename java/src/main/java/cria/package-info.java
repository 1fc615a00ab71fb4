/**
 * Cria: LLaMA-family inference for the JVM.
 *
 * <p>The public API is {@link cria.engine} (load a model, open sessions, generate, batch), with
 * {@link cria.sample.SamplerParams} for sampling settings, {@link cria.tokenizer} for a model's
 * vocabulary and chat template, and {@link cria.gguf} for reading and writing GGUF files. Every
 * expected failure (a bad file, a missing model, no GPU, not enough memory, a missing JVM option)
 * is a {@link cria.CriaException} whose one-line message says what is wrong and what to do.
 *
 * <p>The other packages ({@code cria.model}, {@code cria.backend} and below, {@code cria.tensor},
 * {@code cria.cli}) are internal: public only so that Cria's own packages can use each other, not
 * a stable API.
 */
package cria;
