// CudaMamba2Model: the Mamba-2 forward pass on one NVIDIA GPU. Weights live on the device in bf16 (or fp32
// on request, for exactness tests), activations and accumulation in fp32, the SSM state of every sequence
// in a pool of slots allocated once (fp32 by default, bf16 on request). Prefill packs several prompts into
// one launch sequence (chunked SSD, each prompt continuing from its own slot); decode runs one token for
// each of B slots, replayed from a CUDA graph captured per batch-size bucket, and samples on the device.
// Only built with CUDA (PCM_HAVE_CUDA); the header itself has no CUDA types.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "engine/sampler.h"
#include "model/config.h"
#include "model/state.h"
#include "model/weights.h"

namespace pcm {

struct CudaModelOptions {
  bool fp32_weights = false;       // keep weights (and projection inputs) in fp32: exact, twice the bytes
  bool bf16_state = false;         // SSM state in bf16 (halves state traffic); conv windows stay fp32
  int64_t max_slots = 8;           // sequences that can hold a state at once
  int64_t max_batch_tokens = 4096; // rows per prefill launch sequence (rounded up to a multiple of chunk_size)
  int64_t max_prefill_seqs = 64;   // prompts packed into one prefill launch sequence
  int64_t max_decode_batch = 128;  // rows per decode step
  bool cuda_graphs = true;         // replay the decode step from CUDA graphs
  // Decode above the fused rows, no in_proj bias: in_proj's z columns as a second GEMM on a side
  // stream of lower priority, beside the conv and the SSD step that only need the xBC and dt columns
  // (bench/cuda_notes.md, decode v14). PCM_DECODE_SPLIT=0/1 overrides it.
  bool decode_split_in_proj = true;
  // Decode at one row as one persistent launch for all layers (src/kernels/cuda/decode_persistent.cu) where the
  // shape and device take it, instead of three launches a layer. PCM_DECODE_PERSISTENT=0/1 overrides it.
  bool decode_persistent = false;
  // How that launch sits in the step: captured in the decode graph (else launched directly at one row, the graphs
  // kept for the other buckets), and the head after it as a programmatic dependent launch (else a plain one). Both
  // on by default; PCM_DECODE_PERSISTENT_GRAPH=0 / PCM_DECODE_PERSISTENT_HEAD_PDL=0 turn them off, to part a fault
  // of the graph node or of the PDL edge from the kernel's own (bench/cuda_notes.md, decode v27).
  bool decode_persistent_graph = true;
  bool decode_persistent_head_pdl = true;
  int device = 0;
};

// An environment switch (PCM_DECODE_SPLIT, PCM_DECODE_PERSISTENT*: benchmarks run the same binary both ways) over its
// option: `value` unset keeps `option`; "0" or "1", anything else an error naming the variable `name`.
bool decode_flag_from_env(const char* name, const char* value, bool option);

struct CudaPrefillRequest {
  int32_t slot = -1;
  std::span<const int32_t> tokens;
};

class CudaMamba2Model {
 public:
  // config.json + safetensors (HF or mamba_ssm layout, any float dtype), converted on upload.
  static std::unique_ptr<CudaMamba2Model> load(const std::string& model_dir, const CudaModelOptions& options);
  static std::unique_ptr<CudaMamba2Model> from_weights(const Mamba2Config& config, const Mamba2Weights& weights,
                                                       const CudaModelOptions& options);
  // Random weights of the config's shape drawn on the device in bf16 (benchmarks: no host copy of a 7B model).
  static std::unique_ptr<CudaMamba2Model> random(const Mamba2Config& config, uint64_t seed,
                                                 const CudaModelOptions& options);
  ~CudaMamba2Model();
  CudaMamba2Model(const CudaMamba2Model&) = delete;
  CudaMamba2Model& operator=(const CudaMamba2Model&) = delete;

  const Mamba2Config& config() const;
  const CudaModelOptions& options() const;
  size_t weight_bytes() const;          // the large matrices on the device
  size_t state_bytes_per_slot() const;  // SSM state + conv window of one sequence, as stored
  size_t decode_weight_bytes() const;   // bytes of weights one decode step must read

  // ---- slot pool ----
  // Replaces the pool (every slot freed): `slots` sequences, state dtype bf16 or fp32.
  void resize_pool(int64_t slots, bool bf16_state);
  int32_t allocate_slot();  // a zeroed state (an empty sequence); throws when every slot is taken
  void free_slot(int32_t slot);
  int64_t free_slot_count() const;
  void reset_slot(int32_t slot);
  int64_t tokens_seen(int32_t slot) const;
  void load_state(int32_t slot, const SequenceState& state);  // host -> slot
  void store_state(int32_t slot, SequenceState& state) const; // slot -> host
  // Device-to-device copy of a slot's state (n > 1 choices of one prompt); `to` keeps its own random stream.
  void copy_slot(int32_t from, int32_t to);

  // ---- forward ----
  // Feeds every request's tokens into its slot (prompts packed together; long ones split). Writes the
  // logits of each request's last token to last_logits [requests, V] when it is not null.
  void prefill(std::span<const CudaPrefillRequest> requests, float* last_logits);
  // Prefill, then sample each request's next token with its parameters.
  void prefill_sample(std::span<const CudaPrefillRequest> requests, std::span<const SamplingParams> params,
                      int32_t* ids);
  // Samples one token per slot from host logits [slots, V] on the device, each slot's random stream
  // advancing as in decode (the first token of a sequence, from its prompt's logits).
  void sample_logits(std::span<const int32_t> slots, std::span<const float* const> logits,
                     std::span<const SamplingParams> params, int32_t* ids);
  // One token per slot; samples the next token of each on the device (CUDA graph per batch bucket).
  void decode(std::span<const int32_t> slots, std::span<const int32_t> tokens, std::span<const SamplingParams> params,
              int32_t* ids);
  // One token per slot, logits [B, V] to the host (no graph; tests and scoring).
  void decode_logits(std::span<const int32_t> slots, std::span<const int32_t> tokens, float* logits);

  size_t device_bytes_in_use() const;  // whole device, from cudaMemGetInfo
  void synchronize();

  struct Impl;

 private:
  explicit CudaMamba2Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pcm
