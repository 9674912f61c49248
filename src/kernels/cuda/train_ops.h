// The CUDA kernels of training: the backward of every forward op in ops.h, the masked cross-entropy over
// vocabulary chunks, and the optimizer. All pointers are device memory, all values fp32 unless stated.
// Parameter gradients are ADDED (+=), activation gradients written (=), as in src/kernels/cpu/*_backward.h.
// Every reduction runs in a fixed order (no atomics), so a step is bit-reproducible and resume is exact.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/ops.h"

namespace pcm::cuda {

// ---- train_reduce.cu -----------------------------------------------------------------------------
// out[i] += sum over s < splits of partial[s * n + i]: the second pass of the split reductions here.
void add_split_partials(float* out, const float* partial, int64_t n, int splits, cudaStream_t s);
// The same for any number of splits: above 64, groups of 32 splits are summed first into tmp
// (sum_split_partials_tmp_floats(n, splits) floats), which keeps every pass wide.
int64_t sum_split_partials_tmp_floats(int64_t n, int64_t splits);
void sum_split_partials(float* out, const float* partial, int64_t n, int64_t splits, float* tmp, cudaStream_t s);
// Floats column_sum_add needs as scratch for C columns.
int64_t column_sum_scratch_floats(int64_t C);
// out[c] += sum over rows t of in[t * stride + c] (fixed order: row blocks, then their partial sums).
void column_sum_add(float* out, const float* in, int64_t stride, int64_t T, int64_t C, float* scratch,
                    cudaStream_t s);
// *out += sum(in[0..n)) in float64, one block, fixed order.
void sum_to_double(double* out, const float* in, int64_t n, cudaStream_t s);
// Sum of squares of x[i]·f1·f2 (each product rounded to fp32, as after scale(f1) and scale(f2)) over
// [0, n) in float64 into *out (=); scratch: sum_squares_scratch_doubles() doubles.
int64_t sum_squares_scratch_doubles();
void sum_squares(double* out, const float* x, int64_t n, double* scratch, cudaStream_t s, float f1 = 1.0f,
                 float f2 = 1.0f);
void scale(float* x, float factor, int64_t n, cudaStream_t s);
// A 64-bit digest of the bits of a[0, n): equal bits give equal digests, different ones differ but with
// probability ~2^-64 (synchronizes the stream).
uint64_t bits_digest(const float* a, int64_t n, cudaStream_t s);
// out[rows, cols] (contiguous bf16) = in (row stride ld), rounded to nearest even.
void f32_to_bf16_2d(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld, cudaStream_t s);
// torch.optim.AdamW (see train/optimizer.h for the formula) over all tensors of a flat buffer in one launch,
// with the gradient read as g·g_scale1·g_scale2 (the scale() calls not yet applied, rounded as they would
// be). Runs of consecutive elements: run r ends at run_end[r] (increasing, the last = n) and is multiplied
// by `decay` when run_decay[r] != 0 (tensors with weight decay), else by 1.
struct AdamWArgs {
  float b1, b2, step_size, inv_sqrt_bc2, eps, decay, g_scale1 = 1.0f, g_scale2 = 1.0f;
};
void adamw(float* w, const float* g, float* m, float* v, int64_t n, const int64_t* run_end, const uint8_t* run_decay,
           int runs, const AdamWArgs& a, cudaStream_t s);

// ---- norm_backward.cu ----------------------------------------------------------------------------
// Scratch floats of the two norm backwards below for T rows of C channels (per-block weight-gradient
// partials). Rows (groups) of up to 8192 channels.
int64_t norm_backward_scratch_floats(int64_t T, int64_t C);
// out = x * r * weight, r = rsqrt(mean(x²) + eps) per row of C. dx (= or += when accumulate); dx_bf16
// (null = not wanted): the new dx rounded to bf16 as well (the next projection backward's operand);
// dweight += sum_t dout * x * r; xn (null = not wanted): the forward's output x * r * weight recomputed on
// the way, fp32 or bf16 (the projection's weight-gradient operand).
void rmsnorm_backward(float* dx, bool accumulate, uint16_t* dx_bf16, float* dweight, const float* dout,
                      const float* x, const float* weight, int64_t T, int64_t C, float eps, float* scratch,
                      cudaStream_t s, void* xn = nullptr, bool xn_bf16 = false);
// The grouped gated RMSNorm (ops.h gated_rmsnorm). dy [T, C] (=); dz row t at dz + t * dz_stride (=), in
// fp32 (dz) and/or bf16 (dz_bf16), either may be null; yn [T, C]: the forward's output recomputed on the
// way, fp32 or bf16 (null = not wanted); y [T, C] fp32, or bf16 with y_bf16 (the bf16 training's SSD output);
// z fp32, or bf16 with z_bf16 (the bf16 training's in_proj output).
void gated_rmsnorm_backward(float* dy, float* dz, uint16_t* dz_bf16, int64_t dz_stride, float* dweight, void* yn,
                            bool yn_bf16, const float* dout, const void* y, const void* z, int64_t z_stride,
                            const float* weight, int64_t T, int64_t C, int64_t group_size, float eps, float* scratch,
                            cudaStream_t s, bool y_bf16 = false, bool z_bf16 = false);
// dtable[tok, :] += sum of dout rows with that token. CSR by token, built on the host: uniq[u] is a token,
// its rows are pos[off[u] .. off[u+1]) in increasing order.
void embedding_backward(float* dtable, const float* dout, const int32_t* uniq, const int32_t* off,
                        const int32_t* pos, int64_t n_uniq, int64_t d, cudaStream_t s);
// dst[rows[i], :] += src[i, :] for distinct rows.
void scatter_add_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t d, cudaStream_t s);

// ---- conv1d_backward.cu --------------------------------------------------------------------------
// out[t, c] = silu(bias[c] + sum_k w[c, k] * in[t - K + 1 + k, c]) with inputs before row t's document
// start (row_doc_begin[t]) taken as zero. din: row t at din + t * din_stride (=), in fp32 (din) and/or bf16
// (din_bf16, same stride), either may be null; dw [C, K] +=; db +=; in fp32, or bf16 with in_bf16 (the bf16
// training's in_proj output). scratch: conv1d_backward_scratch_floats(C, K).
int64_t conv1d_backward_scratch_floats(int64_t C, int64_t K);
void conv1d_silu_backward(float* din, uint16_t* din_bf16, int64_t din_stride, float* dw, float* db, const float* dout,
                          const void* in, int64_t in_stride, const float* w, const float* bias,
                          const int32_t* row_doc_begin, int64_t T, int64_t C, int64_t K, float* scratch,
                          cudaStream_t s, bool in_bf16 = false);
// dt = clamp(softplus(raw + dt_bias), lo, hi): draw row t at draw + t * stride (=), zero where clamped; also
// rounded to bf16 into draw_bf16 (row stride draw_bf16_stride) unless null; draw may be ddt itself (stride
// H); ddt_bias += column sums of draw (scratch: column_sum_scratch_floats(H)); raw fp32, or bf16 with raw_bf16.
void dt_softplus_backward(float* draw, int64_t draw_stride, uint16_t* draw_bf16, int64_t draw_bf16_stride,
                          float* ddt_bias, const float* ddt, const void* raw, int64_t raw_stride,
                          const float* dt_bias, int64_t T, int64_t H, float lo, float hi, float* scratch,
                          cudaStream_t s, bool raw_bf16 = false);
// A[h] = -exp(A_log[h]); after the SSD backward: dA_log[h] += dA[h] * A[h].
void neg_exp(float* A, const float* A_log, int64_t H, cudaStream_t s);
// out[i] += a[i] * b[i].
void add_product(float* out, const float* a, const float* b, int64_t n, cudaStream_t s);

// ---- ssd_backward.cu -----------------------------------------------------------------------------
// Documents of a packed batch for the SSD backward: document i covers rows [begin[i], begin[i] + len[i])
// and owns chunk states [chunk0[i], chunk0[i] + ceil(len[i] / Q)).
struct SsdDocs {
  int32_t count = 0;
  int64_t chunks = 0;  // sum over documents of ceil(len / Q)
  const int32_t* begin;
  const int32_t* len;
  const int32_t* chunk0;
};
struct SsdTrainIn {
  const float* xbc;  // x | B | C, row t at xbc + t * stride (layout of ops.h SsdIn)
  int64_t stride;
  const float* dt;  // [T, H]
  const float* A;   // [H]
  const float* D;   // [H]
  // Optional: the forward's chunk cumsum, C·Bᵀ and entering states (SsdIn::keep_*), taken by the tc path of
  // ssd_chunked_backward without state0 instead of recomputed (ssd_chunked_backward_takes_saved).
  const float* saved_cs = nullptr;
  const float* saved_states = nullptr;
  const float* saved_cb = nullptr;  // may be null with the others set: C·Bᵀ recomputed
};
struct SsdTrainGrads {
  float* dxbc;      // dx, dB, dC written (=) into the x | B | C columns, row stride `stride`
  int64_t stride;
  float* ddt;       // [T, H] (=)
  float* dA;        // [H] (=)
  float* dD;        // [H] (+=)
};
// Scratch floats for `chunks` chunk states (sum over documents of ceil(len / Q)) and `docs` documents.
int64_t ssd_backward_scratch_floats(int64_t T, int64_t chunks, int64_t docs, int64_t Q, int32_t H, int32_t G,
                                    int32_t P, int32_t N);
// Backward of y = SSD(x, dt, A, B, C) + D x per document from zero state, given dy [T, H * P]: the
// recurrence run per (document, head), chunk states saved on a first pass and each chunk's states
// recomputed before walking it backwards. Q: chunk length of that bookkeeping (not the model's).
void ssd_backward(const SsdTrainGrads& g, const float* dy, const SsdTrainIn& in, const SsdDocs& docs, int32_t H,
                  int32_t G, int32_t P, int32_t N, int64_t T, int32_t Q, float* scratch, cudaStream_t s);

// ---- ssd_chunked_backward.cu ---------------------------------------------------------------------
// The same gradients as ssd_backward in the chunked (matrix) form of the forward (ssd.cu), over the
// forward's chunk table (chunks never cross a sequence start): parallel over chunks x heads except a short
// pass over each sequence's chunks. state0: [seqs, H, P, N] initial states (null = zeros); dstate0: their
// gradient (=), null = not wanted. tf32: the products on the TF32 tensor cores (as the forward's flag).
// tc (with tf32, head_dim 64, N a multiple of 16 up to 128, Q a multiple of 16): U, dCB, dX, dB and dC
// from one mma.sync block per (chunk, head) (ssd_backward_{u,dcb,dx,bc}_tc.cu) rather than the 64x64
// tiles; other shapes ignore it. The scratch depends on the path: size it with the same tf32 and tc. bf16 (with tc):
// dX's products on bf16 mma instead (operands rounded to bf16 as the bf16 forward's, fp32 accumulation).
int64_t ssd_chunked_backward_scratch_floats(int64_t T, int64_t chunks, int32_t Q, const SsdDims& d, bool tf32,
                                            bool tc);
// Whether ssd_chunked_backward with these flags takes SsdTrainIn::saved_cs / saved_states (the tc path; the dC
// product then reads the entering states as TF32 operands unrounded, i.e. truncated, rather than rounded).
bool ssd_chunked_backward_takes_saved(const SsdDims& d, int32_t Q, bool tf32, bool tc);
void ssd_chunked_backward(const SsdTrainGrads& g, const float* dy, const SsdTrainIn& in, const float* state0,
                          float* dstate0, const SsdDims& d, const ChunkTable& ct, int32_t seqs, int64_t T,
                          float* scratch, bool tf32, cudaStream_t s, bool tc = false, bool bf16 = false);

// ---- xent.cu -------------------------------------------------------------------------------------
// Cross-entropy over vocabulary chunks: logits [n, vc] of vocab rows [v0, v0 + vc) (leading dim ld).
// Pass 1 per chunk updates the running max/sum and the target logit (init first with xent_init).
void xent_init(float* run_max, float* run_sum, float* tgt_logit, int64_t n, cudaStream_t s);
void xent_chunk_stats(float* run_max, float* run_sum, float* tgt_logit, const float* logits, int64_t ld,
                      const int32_t* targets, int64_t n, int64_t v0, int64_t vc, cudaStream_t s);
// lse[i] = max + log(sum); loss[i] = lse - target logit.
void xent_finish(float* lse, float* loss, const float* run_max, const float* run_sum, const float* tgt_logit,
                 int64_t n, cudaStream_t s);
// Pass 2: logits -> softmax - onehot, in place, or (out_bf16 not null) rounded to bf16 into out_bf16
// [n, vc] (contiguous), the head products' operand, leaving the logits as they are.
void xent_chunk_grad(float* logits, int64_t ld, const float* lse, const int32_t* targets, int64_t n, int64_t v0,
                     int64_t vc, cudaStream_t s, uint16_t* out_bf16 = nullptr);

}  // namespace pcm::cuda
