/**
 * The scalar reference backend: the oracle every other backend is checked against; never optimized.
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release. Programs use {@link cria.engine}.
 */
package cria.backend.ref;
