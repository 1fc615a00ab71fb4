/**
 * Sampling: {@link cria.sample.SamplerParams} (public API: the settings of a generation, with
 * llama.cpp's defaults and order) and {@link cria.sample.Sampler} (the seeded sampler that applies
 * them to logits; one per sequence, not thread-safe).
 */
package cria.sample;
