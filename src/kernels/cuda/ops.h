// The CUDA kernels of the Mamba-2 forward pass, as host-callable launchers on a stream. Every pointer is
// device memory. Activations are fp32 except the inputs of the projections, which have the weights'
// dtype (`bf16` true: bf16, else fp32). Shapes and meanings mirror src/kernels/cpu/*.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace pcm::cuda {

// ---- norm.cu -------------------------------------------------------------------------------------
// resid[t, :] = embedding[tokens[t], :] (embedding bf16 or fp32, [V, d]).
void embedding_gather(float* resid, const void* embedding, bool bf16, const int32_t* tokens, int64_t T, int64_t d,
                      cudaStream_t s);
// out[t, :] = in[t, :] / rms(in[t, :]) * weight; out in bf16 (bf16 true) or fp32. Launched with PDL: weight is read
// before the previous kernel in the stream has finished, so that kernel must not write it.
void rmsnorm(void* out, bool bf16, const float* in, const float* weight, int64_t T, int64_t C, float eps,
             cudaStream_t s);
// g = y * silu(z), normalised over each block of group_size channels, times weight (grouped gated RMSNorm).
// y [T, C] fp32, or bf16 with y_bf16 (as ssd_chunked writes it with SsdIn::xbc_bf16); z row t at z + t * z_stride,
// fp32, or bf16 with z_bf16 (a bf16 in_proj output; only with y_bf16). Launched with PDL, weight read early as in
// rmsnorm.
void gated_rmsnorm(void* out, bool bf16, const void* y, const void* z, int64_t z_stride, const float* weight,
                   int64_t T, int64_t C, int64_t group_size, float eps, cudaStream_t s, bool y_bf16 = false,
                   bool z_bf16 = false);
// x[t, i] += bias[i] for a [T, C] matrix with row stride `stride`.
void add_bias(float* x, int64_t stride, const float* bias, int64_t T, int64_t C, cudaStream_t s);
// dt[t, h] = clamp(softplus(raw[t * stride + h] + dt_bias[h]), lo, hi); raw fp32, or bf16 with raw_bf16.
void dt_softplus(float* dt, const void* raw, int64_t stride, const float* dt_bias, int64_t T, int64_t H, float lo,
                 float hi, cudaStream_t s, bool raw_bf16 = false);
// fp32 -> bf16 (n elements), and a deterministic uniform fill of bf16 with the given std (benchmarks).
void f32_to_bf16(uint16_t* out, const float* in, int64_t n, cudaStream_t s);
void bf16_to_f32(float* out, const uint16_t* in, int64_t n, cudaStream_t s);
void fill_uniform_bf16(uint16_t* out, int64_t n, float stddev, uint64_t seed, cudaStream_t s);
// ---- read_probe.cu (benchmarks): read `bytes` (a multiple of 16) once, as fast as the device streams.
void stream_read(float* sink, const void* p, int64_t bytes, cudaStream_t s);
// ---- layer_stream_probe.cu (benchmarks): `layers` x (y_in = W_in[l] · bf16(tanh(y_out[:k_in])), then
// y_out = W_out[l] · bf16(tanh(y_in[:k_out]))), bf16 weights [n_in, k_in] / [n_out, k_out] (device arrays of device
// pointers), as one persistent launch with a grid barrier between the GEMVs (one_launch; `barrier`: one device word)
// or a launch per GEMV; prefetch: each warp's next GEMV's first weights requested before the barrier.
void layer_stream_probe(float* y_in, float* y_out, const void* const* w_in, const void* const* w_out, int layers,
                        int64_t n_in, int64_t k_in, int64_t n_out, int64_t k_out, bool prefetch, bool one_launch,
                        unsigned* barrier, cudaStream_t s);

// ---- conv1d.cu -----------------------------------------------------------------------------------
// Packed sequences for prefill: sequence i owns rows [seq_start[i], seq_start[i+1]) and state slot
// seq_slot[i]; row_seq[t] = i for each row.
// Conv windows: conv_state + slot * slot_stride, [K, C] each, a ring: row p mod K holds channel c's input at the
// sequence's position p for its last K positions (zeros before position 0). A decode step then reads K - 1 taps and
// writes one of each channel's K, where a window kept in time order is read and written whole (bench/cuda_notes.md,
// decode v20). Positions are passed mod K: the tokens the slot has seen before the call.
struct PackedSeqs {
  int32_t count = 0;            // sequences
  const int32_t* seq_start;     // [count + 1]
  const int32_t* seq_slot;      // [count]
  const int32_t* row_seq;       // [T]
  const int32_t* seq_pos = nullptr;  // [count] positions mod K of each sequence's first row (null: all 0)
};
// out[t, c] = silu(bias[c] + sum_k w[c, k] * in[t - K + 1 + k, c]), earlier inputs from the window;
// then the windows hold each sequence's last K inputs. in: row t at in + t * in_stride. out: [T, C].
// bf16 sides of the conv for bf16 models: `out` (optional) takes columns [0, cols) in bf16 ([T, cols]; the SSD's x, B,
// C) and the fp32 output only columns [fp32_from, C); in_bf16: the input is bf16 (a bf16 in_proj output).
struct ConvBf16 {
  void* out = nullptr;
  int64_t cols = 0, fp32_from = 0;
  bool in_bf16 = false;
};
void conv1d_silu_prefill(float* out, const void* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                         const float* w, const float* bias, int64_t T, int64_t C, int64_t K, const PackedSeqs& seqs,
                         cudaStream_t s, const ConvBf16& bf16 = {});
// One token per row b for slot slots[b] at position pos[b] mod K (rows with slot < 0 are padding: out 0, no state
// change). Launched with PDL: slots, pos, the taps and the windows are read before the kernel before has finished, so
// only `in` may be that kernel's output.
void conv1d_silu_decode(float* out, const float* in, int64_t in_stride, float* conv_state, int64_t slot_stride,
                        const float* w, const float* bias, const int32_t* slots, const int32_t* pos, int64_t Bn,
                        int64_t C, int64_t K, cudaStream_t s);

// ---- ssd.cu --------------------------------------------------------------------------------------
struct SsdDims {
  int32_t H, P, G, N;
};
// x row t head h at xbc + t * stride + h * P; B at xbc + t * stride + H * P + g * N; C after the G*N of B.
struct SsdIn {
  const float* xbc;
  int64_t stride;
  const float* dt;  // [T, H] after softplus/clamp
  const float* A;   // [H]
  const float* D;   // [H]
  // Optional, prefill of bf16 models (ssd_bf16_supported shapes, tf32 set): x, B and C in bf16 as well, laid out as
  // in xbc (row t at xbc_bf16 + t * bf16_stride), as the conv writes them. xbc is then not read at all: C·Bᵀ, the
  // chunk states and outputs run on bf16 mma (ssd_cb_tc.cu, ssd_states_bf16.cu, ssd_output_bf16.cu) and ssd_chunked
  // writes y in bf16 ([T, H P] bf16 at y; fp32 with y_fp32).
  const void* xbc_bf16 = nullptr;
  int64_t bf16_stride = 0;
  bool y_fp32 = false;  // with xbc_bf16: y stays fp32
  // Optional, training: ssd_chunked writes its chunk cumsum ([chunks, H, Q]), C·Bᵀ ([chunks, G, Q, Q], 64-tiles with
  // j-tile <= i-tile) and the state entering each chunk ([chunks, H, P, N], fp32, 16-byte aligned) here instead of
  // into its scratch, so that the backward takes them (SsdTrainIn::saved_*) instead of recomputing them.
  float* keep_cs = nullptr;
  float* keep_cb = nullptr;
  float* keep_states = nullptr;
};
// Chunks of Q rows cut from each packed sequence's start: chunk c covers rows [chunk_start[c],
// chunk_start[c] + chunk_len[c]) of sequence chunk_seq[c]; sequence i owns chunks [seq_chunk[i], seq_chunk[i+1]).
struct ChunkTable {
  int32_t count = 0;
  int32_t Q = 0;
  const int32_t* chunk_start;
  const int32_t* chunk_len;
  const int32_t* seq_chunk;  // [seqs + 1]
};
// Whether ssd_chunked takes SsdIn::xbc_bf16 for these heads and chunk size (tf32 set, 16-byte aligned rows).
bool ssd_bf16_supported(const SsdDims& d, int64_t Q);
// Scratch floats for `chunks` chunks: cumulative dt*A, C·Bᵀ per group, per-chunk states.
int64_t ssd_chunked_scratch_floats(int64_t chunks, int64_t Q, const SsdDims& d);
// Chunked SSD over packed sequences, each continuing from and updating its state slot
// (state + slot * slot_stride, [H, P, N], fp32 or bf16). y: [T, H * P]. tf32: the matrix products on the
// tensor cores (relative error ~1e-3); otherwise exact fp32.
void ssd_chunked(float* y, const SsdIn& in, void* state, bool state_bf16, int64_t slot_stride, const SsdDims& d,
                 const ChunkTable& chunks, const int32_t* seq_slot, int32_t seqs, float* scratch, bool tf32,
                 cudaStream_t s);
// dt before its activation: with `raw` set, the decode step computes
// clamp(softplus(raw[b * stride + h] + bias[h]), lo, hi) itself (one launch fewer) instead of reading SsdIn::dt.
struct RawDt {
  const float* raw = nullptr;
  int64_t stride = 0;
  const float* bias = nullptr;
  float lo = 0.0f, hi = 0.0f;
};
// The gate of the grouped gated RMSNorm after the step: with `z` set, the step writes g = y · silu(z)
// in place of y (z of row b at z + b * z_stride, d_inner channels) and each head's Σ g² over its P
// channels into ssq[b * H + h], so the norm needs no reduction pass of its own (decode_out_proj).
struct DecodeGate {
  const float* z = nullptr;
  int64_t z_stride = 0;
  float* ssq = nullptr;
};
// One recurrence step for each row b on slot slots[b] (slot < 0: padding, y = 0, ssq = 0).
void ssd_decode(float* y, const SsdIn& in, void* state, bool state_bf16, int64_t slot_stride, const SsdDims& d,
                const int32_t* slots, int64_t Bn, cudaStream_t s, const RawDt& raw_dt = {},
                const DecodeGate& gate = {});

// ---- gemv.cu -------------------------------------------------------------------------------------
// Y[T, n] = X[T, k] · W[n, k]ᵀ (+ beta · Y) for bf16 X, W and T <= kGemvMaxRows (decode at small batch).
constexpr int64_t kGemvMaxRows = 4;
bool gemv_bf16_supported(int64_t T, int64_t k);
void gemv_bf16(float* Y, const void* X, const void* W, int64_t T, int64_t n, int64_t k, float beta, cudaStream_t s);

// ---- decode_fused.cu ------------------------------------------------------------------------------
// Decode for T <= kGemvMaxRows rows with bf16 weights: the projections with their neighbouring row-wise
// kernels folded in (RMSNorm, conv step, dt, gated RMSNorm, residual add), launched with programmatic
// dependent launch. Same results as the unfused kernels up to fp32 summation order.
bool decode_fused_supported(int64_t T, int64_t d, int64_t d_inner, int64_t group, int64_t z_stride, int64_t K);
// Raises the kernels' shared-memory limit for inputs of up to max_k columns; call once before any
// decode_* launch (not during graph capture).
void decode_fused_prepare(int64_t max_k);
// Per-block timestamps of the fused decode kernels and of the SSD decode step into `buf` (layout in
// decode_trace.cuh), or off with null. For benches: set between steps, never while kernels run.
void decode_trace(unsigned long long* buf);
void ssd_decode_trace(unsigned long long* buf);
// Where in_proj's output goes: z -> z (row stride z_stride), xBC -> conv step + SiLU -> xbc [T, conv_dim]
// (windows updated; slot < 0: zeros, no change), dt -> dt [T, heads] (softplus(v + dt_bias) clamped).
struct DecodeInProjOut {
  float* z;
  int64_t z_stride;
  float* xbc;
  float* dt;
  const float* bias;  // in_proj bias [d_inner + conv_dim + heads] or null
  int64_t d_inner, conv_dim, heads;
  float* conv_state;
  int64_t conv_slot_stride;
  const float *conv_w, *conv_b;
  int32_t K;
  const int32_t* slots;
  const int32_t* pos;  // [T] positions mod K (conv1d_silu_decode's), in [0, K) for padding rows too (they read slot 0)
  const float* dt_bias;
  float dt_lo, dt_hi;
};
// in_proj(rmsnorm(resid[T, d]) · norm_w) into `o`. row_queue: one zeroed 64-bit word (device memory, the caller's,
// used by one launch at a time and zero again after it): weight rows handed out to the warps at run time instead of
// a fixed share each (same results); null: the fixed shares. Rows of 16 KiB and more always take fixed shares.
void decode_in_proj(const DecodeInProjOut& o, const float* resid, const float* norm_w, float eps, const void* W,
                    int64_t T, int64_t d, cudaStream_t s, unsigned long long* row_queue = nullptr);
// resid[T, d] += out_proj(gated_rmsnorm(y, z)) (+ out_bias), from the gated step's outputs (DecodeGate):
// g = y · silu(z) [T, d_inner] and ssq [T, heads] (Σ g² per head; heads / groups heads make a group).
void decode_out_proj(float* resid, const float* out_bias, const float* g, const float* ssq, int64_t heads,
                     const float* gate_w, int64_t group, float eps, const void* W, int64_t T, int64_t d,
                     int64_t d_inner, cudaStream_t s);
// logits[T, V] = lm_head(rmsnorm(resid[T, d]) · norm_w). row_queue: as decode_in_proj's (its own). pdl: launched as
// a programmatic dependent of the kernel before it (its weights asked for while that one ends), else a plain launch.
void decode_head(float* logits, const float* resid, const float* norm_w, float eps, const void* W, int64_t T,
                 int64_t V, int64_t d, cudaStream_t s, unsigned long long* row_queue = nullptr, bool pdl = true);

// ---- decode_persistent.cu --------------------------------------------------------------------------
// One layer's weights on the device (bf16 projections for the decode kernels; fp32 vectors). Null biases: none.
struct DeviceLayer {
  const void* in_proj = nullptr;   // [d_in_proj, d]
  const void* out_proj = nullptr;  // [d, d_inner]
  const float *norm = nullptr, *in_bias = nullptr, *conv_w = nullptr, *conv_b = nullptr, *dt_bias = nullptr,
              *A = nullptr, *D = nullptr, *gate_norm = nullptr, *out_bias = nullptr;
};
// A decode step of one row through every layer in one cooperative launch (the residual in, the residual out; the
// head stays decode_head's): each layer's in_proj, SSD step and out_proj as decode_in_proj, ssd_decode (gated) and
// decode_out_proj run them, with the same bits, a grid barrier at each dependency instead of a launch boundary.
struct PersistentDecode {
  const DeviceLayer* layers;  // device array [L]
  int32_t L;
  float* resid;                           // [d]
  float *zx, *xbc, *dt, *y, *ssq;         // workspaces: [d_in_proj], [conv_dim], [H], [d_inner], [H]
  void* ssm;                              // the pool: [slots, L, H, P, N], fp32 or bf16 (state_bf16)
  bool state_bf16;
  float* conv;                            // the pool's windows [slots, L, K, conv_dim]
  const int32_t *slot, *pos;              // the row's slot (< 0: padding, no state change) and position mod K
  int64_t d, d_inner, conv_dim;           // d_in_proj = d_inner + conv_dim + H
  int32_t K;
  SsdDims dims;
  int64_t group;                          // gated norm group size (d_inner / n_groups)
  float eps, dt_lo, dt_hi;
};
// Whether the kernel takes this shape on the current device (the fused decode's shapes, a state row in whole 16-byte
// packs, fewer than 1024 heads, its shared memory and a cooperative launch of one block per SM), raising its
// shared-memory limit on the way: once before any launch (not during graph capture).
bool decode_persistent_prepare(int64_t d, int64_t d_inner, int64_t group, int64_t K, const SsdDims& dims,
                               bool state_bf16);
// The step; `barrier`: one device word the launch zeroes first (in the stream, so graphs capture it).
void decode_persistent(const PersistentDecode& a, unsigned* barrier, cudaStream_t s);

// ---- sampling.cu ---------------------------------------------------------------------------------
struct DeviceSampling {
  float temperature;  // 0 = greedy
  float top_p;        // 1 = off
  float min_p;        // 0 = off
  int32_t top_k;      // 0 = off
  uint64_t seed;
  uint64_t step;      // draws so far for this sequence (the counter of the random stream)
};
// ids[b] from logits[b, :V] with params[b], in the order temperature, top-k, top-p, min-p, draw.
void sample(int32_t* ids, const float* logits, int64_t V, const DeviceSampling* params, int64_t Bn, cudaStream_t s);

}  // namespace pcm::cuda
