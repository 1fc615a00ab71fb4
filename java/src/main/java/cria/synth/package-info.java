/**
 * Random-weight model files at the shapes of real models ({@code cria synth}): metadata, a synthetic vocabulary, and tensors of any weight type, for tests and benchmarks where a trained model is not needed.
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release. Programs use {@link cria.engine}.
 */
package cria.synth;
