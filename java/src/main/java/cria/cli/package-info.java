/**
 * The cria command line: one picocli command per verb; expected failures are one line on stderr and exit code 1.
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release. Programs use {@link cria.engine}.
 */
package cria.cli;
