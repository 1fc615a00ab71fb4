/**
 * Measurement code: the kernel benchmark harness behind {@code cria kernels} (its cases, checks against the reference backend and the device's ceilings) and the error measure shared with the conformance tests.
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release. Programs use {@link cria.engine}.
 */
package cria.bench;
