/**
 * Where the model runs: the Backend and Ops interfaces, buffers, weights, batches and the paged KV cache; implementations in ref (the float64 oracle), cpu (Vector API and native kernels) and cuda (JCuda).
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release. Programs use {@link cria.engine}.
 */
package cria.backend;
