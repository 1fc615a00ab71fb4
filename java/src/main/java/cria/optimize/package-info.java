/**
 * Making models smaller with measured quality: calibration passes over text, the importance
 * matrix, pruning (magnitude, Wanda, SparseGPT, N:M), low-rank factorization (SVD, SVD-LLM) and
 * the report that compares the results.
 */
package cria.optimize;
