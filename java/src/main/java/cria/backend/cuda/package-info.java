/**
 * The CUDA backend: JCuda context and device memory, one launcher per kernel family of kernels/, CUDA graphs and cuBLAS (the kernel benchmark harness that drives them lives in {@link cria.bench}).
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release. Programs use {@link cria.engine}.
 */
package cria.backend.cuda;
