/**
 * The GGUF file format (public API): {@link cria.gguf.GgufFile} maps a file once and validates
 * every count, size and offset before trusting it (a corrupt or hostile file is a one-line
 * {@link cria.gguf.GgufException}); {@link cria.gguf.Metadata} holds its typed key/value pairs;
 * {@link cria.gguf.GgufWriter} writes files. An open {@code GgufFile} may be read from many threads;
 * closing it unmaps the file.
 */
package cria.gguf;
