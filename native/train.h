/* Training's CPU kernels (train.c, train_attention.c), called from Java through the FFM API
 * (cria.backend.cpu.NativeTrainPath). Float32 row-major buffers; every entry point does one
 * thread's share (the rows or columns it is given) and allocates nothing: scratch comes from the caller. */
#ifndef CRIA_TRAIN_H
#define CRIA_TRAIN_H
#include <stdint.h>

/* Floats of per-thread scratch cria_train_matmul needs for a weight of o rows of k values. */
int64_t cria_train_matmul_scratch(int32_t k, int32_t o);

/* Every float buffer comes with an offset in floats (xo, oo...) added to its pointer first, so that
 * callers address rows of a buffer without making a slice of it per call; strides are in floats. */

/* out[i][r] = sum_c x[i][c] * w[r][c] for rows i in [i0, i1) and r in [0, o); w [o][k] is packed per
 * call into scratch (cria_train_matmul_scratch floats, 64-byte aligned). */
void cria_train_matmul(const float *x, int64_t xo, int64_t xs, int32_t i0, int32_t i1, int32_t k, const float *w, int32_t o,
                       float *out, int64_t oo, int64_t os, float *scratch);

/* dx[i][c] (= or, with accumulate, +=) sum_r g[i][r] * w[r][c] for rows i in [i0, i1), c in [0, k); w [o][k]. */
void cria_train_matmul_dx(const float *g, int64_t go, int64_t gs, int32_t i0, int32_t i1, int32_t o, const float *w, int32_t k,
                          float *dx, int64_t dxo, int64_t dxs, int32_t accumulate, float *scratch);

/* dw[r][c] += sum_i g[i][r] * x[i][c] for weight rows r in [r0, r1), c in [0, k), input rows i in [0, n) in order. */
void cria_train_matmul_dw(const float *g, int64_t go, int64_t gs, const float *x, int64_t xo, int64_t xs, int32_t n, int32_t r0,
                          int32_t r1, int32_t k, float *dw, int64_t dws, float *scratch);

/* The most weights one multi-product call takes (q, k, v). */
#define CRIA_TRAIN_MAX_PARTS 4

/* Products of one input by several weights (q, k and v of one input; gate and up), reading the
 * input's rows once: for each j < count, with desc[4j..4j+4) = {w address, out address, o, os},
 * out_j[i][r] = sum_c x[i][c] * w_j[r][c] for rows i in [i0, i1), r < o. The weights are packed into
 * scratch (cria_train_matmul_scratch(k, the sum of the o rounded up to 32) floats). */
void cria_train_matmul_multi(const float *x, int64_t xo, int64_t xs, int32_t i0, int32_t i1, int32_t k, int32_t count,
                             const int64_t *desc, float *scratch);

/* dx[i][c] (= or, with accumulate, +=) sum_j sum_r g_j[i][r] * w_j[r][c] for rows i in [i0, i1), c < k,
 * the weights in order (as cria_train_matmul_dx once per weight, accumulating after the first);
 * desc[4j..4j+4) = {g address, gs, w address, o}. */
void cria_train_matmul_dx_multi(int32_t i0, int32_t i1, int32_t k, int32_t count, const int64_t *desc, float *dx, int64_t dxo,
                                int64_t dxs, int32_t accumulate, float *scratch);

/* dw_j[r][c] += sum_i g_j[i][r] * x[i][c] (i < n in order, c < k) for the rows [r0, r1) of the weights
 * stacked in order (rows of weight j are base_j + r, base_j the rows of the weights before it);
 * desc[4j..4j+4) = {g address, gs, dw address, o}, dw rows k floats apart. */
void cria_train_matmul_dw_multi(const float *x, int64_t xo, int64_t xs, int32_t n, int32_t k, int32_t count, const int64_t *desc,
                                int32_t r0, int32_t r1, float *scratch);

/* Rows [r0, r1) of a block of logits (row r at logits + lo + r * ls, vocab values): the loss of row r
 * (log-sum-exp minus the target's logit, 0 for a negative target targets[r]) into loss[r], and with
 * grad the gradient scale * (softmax - onehot) written over the logits (zeros for a skipped row). */
void cria_train_softmax_xent(float *logits, int64_t lo, int64_t ls, int32_t r0, int32_t r1, int32_t vocab, const int32_t *targets,
                             float scale, int32_t grad, double *loss);


/* Floats of per-thread scratch for cross-entropy's packed output weight (vocab rows of dim). */
int64_t cria_train_xent_scratch(int32_t dim, int32_t vocab);

/* Packs the output weight w [vocab][dim] both ways into scratch (cria_train_xent_scratch floats, 64-byte aligned). */
void cria_train_xent_pack(const float *w, int32_t vocab, int32_t dim, float *scratch);

/* Cross-entropy of rows [r0, r1) (x's rows xs floats apart, dim values): logits = x . w^T into the
 * block (row r at logits + lo + r * ls), loss[r] as cria_train_softmax_xent, and when dx is not
 * null the gradient scale * (softmax - onehot) over the logits and dx[r] = gradient . w (written).
 * packed: w packed by cria_train_xent_pack. */
void cria_train_xent_rows(const float *x, int64_t xs, int32_t r0, int32_t r1, int32_t dim, const float *w, int32_t vocab,
                          const float *packed, float *logits, int64_t lo, int64_t ls, const int32_t *targets, float scale,
                          float *dx, int64_t dxs, double *loss);

/* Whether element index survives dropout p under seed: TrainOps.keep, bit for bit. */
int32_t cria_train_keep(int64_t seed, int64_t index, float p);

/* Floats of per-thread scratch the attention kernels need for windows of len rows and heads of hd values. */
int64_t cria_train_attention_scratch(int32_t len, int32_t hd);

/* Causal grouped-query attention (TrainOps.attention) of items [item0, item1), an item being one
 * window b and KV head g (item = b * kv_heads + g) with the heads that share it: out and lse rows
 * of those heads. q, out: rows of heads * hd; k, v: rows of kv_heads * hd; lse: rows of heads. */
void cria_train_attention(const float *q, const float *k, const float *v, float *out, float *lse, int32_t len, int32_t heads,
                          int32_t kv_heads, int32_t hd, int32_t item0, int32_t item1, float drop, int64_t seed, float *scratch);

/* Its backward over the same items: dq of the item's heads, dk and dv of its KV head (written). */
void cria_train_attention_backward(const float *dout, const float *q, const float *k, const float *v, const float *out,
                                   const float *lse, float *dq, float *dk, float *dv, int32_t len, int32_t heads,
                                   int32_t kv_heads, int32_t hd, int32_t item0, int32_t item1, float drop, int64_t seed,
                                   float *scratch);

/* out = silu(g) * u over elements [from, to) (out may be g or u). */
void cria_train_swiglu(const float *g, const float *u, float *out, int64_t from, int64_t to);

/* dg = dout * u * silu'(g), du = dout * silu(g) over elements [from, to) (dg, du may be dout, g or u). */
void cria_train_swiglu_backward(const float *dout, const float *g, const float *u, float *dg, float *du, int64_t from, int64_t to);

/* ---- row-wise ops (train_rows.c) ---- */

/* out[r] = x[r] * rstd[r] * w, rstd[r] = 1 / sqrt(mean(x[r]^2) + eps), rows r in [r0, r1) of dim values. */
void cria_train_rmsnorm(const float *x, const float *w, float *out, float *rstd, int32_t dim, float eps, int32_t r0, int32_t r1);

/* rmsnorm's backward for rows [r0, r1): dx[r] += rstd (w g) - x rstd^3 / dim * sum(w g x). */
void cria_train_rmsnorm_backward_dx(const float *g, const float *x, const float *w, const float *rstd, float *dx, int32_t dim,
                                    int32_t r0, int32_t r1);

/* Rows of one block of rmsnorm's fused backward. */
#define CRIA_RMS_BLOCK 256

/* rmsnorm's backward in one pass over row blocks [b0, b1) (CRIA_RMS_BLOCK rows each, the last one ends at n):
 * dx as cria_train_rmsnorm_backward_dx, and partial[b][c] = the block's sum, rows in order, of g rstd x. */
void cria_train_rmsnorm_backward(const float *g, const float *x, const float *w, const float *rstd, float *dx, float *partial,
                                 int32_t n, int32_t dim, int32_t b0, int32_t b1);

/* dw[c] += sum over the blocks in order of partial[b][c]. */
void cria_train_rmsnorm_backward_dw_sum(const float *partial, int32_t blocks, int32_t dim, float *dw);

/* Rope over rows [r0, r1) of x (heads * hd values a row, position r % len): pairs (2j, 2j + 1), or
 * (j, j + dims / 2) with neox, j < dims / 2, rotated by the angle of (position, j) (tables of len rows of
 * dims / 2), sign -1 for the inverse rotation. */
void cria_train_rope(float *x, int32_t r0, int32_t r1, int32_t len, int32_t heads, int32_t hd, int32_t dims, int32_t neox,
                     const float *cos_t, const float *sin_t, float sign);

/* AdamW over elements [from, to) (TrainOps.adamw): decay = 1 - lr wd, step_lr = lr / (1 - beta1^step),
 * bias2 = sqrt(1 - beta2^step). */
void cria_train_adamw(float *p, const float *g, float *m, float *v, int64_t from, int64_t to, float grad_scale, float beta1,
                      float beta2, float eps, float decay, float step_lr, float bias2);

/* Dropout in place over elements [from, to): x[k] = keep(seed, k, p) ? x[k] / (1 - p) : 0 (TrainOps.dropout). */
void cria_train_dropout(float *x, int64_t from, int64_t to, float p, int64_t seed);

#endif
