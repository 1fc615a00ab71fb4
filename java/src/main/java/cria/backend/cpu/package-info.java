/**
 * The CPU backend: one worker pool, Vector API kernels, and the native kernels of native/ (libcria) bound through FFM, loaded from -Dcria.native.dir or extracted from the jar.
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release. Programs use {@link cria.engine}.
 */
package cria.backend.cpu;
