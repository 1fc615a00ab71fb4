// Package cria.serve: the OpenAI-compatible HTTP server on the batch engine.
/**
 * {@code cria serve}: an OpenAI-compatible HTTP server ({@link cria.serve.OpenAiServer}, set up by
 * {@link cria.serve.ServeOptions}) over one model and the continuous-batching engine. Uses the
 * engine's public API only.
 */
package cria.serve;
