/**
 * Training: the training interface's users beside inference (optimizer steps, schedules), the
 * training data (token streams cached beside the text, the recipe's windows) and the built-in
 * story corpus.
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release.
 */
package cria.train;
