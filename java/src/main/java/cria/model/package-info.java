/**
 * The Llama model: its configuration from metadata (every count bounded where it is read), its weights checked against the tensor table, the forward pass written once against the backend's ops, and LoRA adapters (read, checked against their base, summed, written).
 *
 * <p>Internal to Cria: public only so that Cria's own packages can use it, not a stable API; it
 * may change in any release. Programs use {@link cria.engine}.
 */
package cria.model;
