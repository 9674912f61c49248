// InferenceEngine: what the continuous-batching Scheduler needs from a model backend. The scheduler
// plans (admission, prefill chunking, stop checks, the prompt-state cache); an engine owns the sequence
// states (a fixed pool of slots, each with its own seeded sampler) and runs one step of the plan.
//
// Two implementations: CpuEngine (Mamba2Model::forward over host SequenceStates, samples on the host)
// and the CUDA engine (CudaMamba2Model: packed prefill, decode replayed from CUDA graphs, sampling on the
// device; see engine/cuda_engine.h). Either way a slot's k-th sampled token depends only on its seed, k
// and the logits, so a request with a fixed seed gives the same output on the same device.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "model/config.h"
#include "model/state.h"

namespace pcm {

// One engine step: a token into each decoding slot (its next token is sampled) and prefill chunks.
struct EngineStep {
  struct Decode {
    int32_t slot = -1;
    int32_t token = -1;
  };
  struct Chunk {
    int32_t slot = -1;
    std::span<const int32_t> tokens;
    bool last = false;  // the chunk ends its prompt: the logits after its last token are wanted
  };
  std::vector<Decode> decode;
  std::vector<Chunk> chunks;
};

struct EngineOutput {
  std::vector<int32_t> decode_ids;           // sampled next token of each decode row
  std::vector<const float*> decode_logits;   // the [V] row each was sampled from; null when they stay on a device
  std::vector<const float*> prompt_logits;   // host logits [V] after each `last` chunk, in chunk order
};

class InferenceEngine {
 public:
  virtual ~InferenceEngine() = default;

  virtual const Mamba2Config& config() const = 0;
  int64_t vocab_size() const { return config().vocab_size; }
  virtual std::string device() const = 0;  // "cpu" or "cuda", for logs
  // Rows one step may hold (decode rows + prefill tokens).
  virtual int64_t max_batch_tokens() const = 0;
  virtual void set_max_batch_tokens(int64_t n) = 0;
  virtual size_t state_bytes() const = 0;  // one slot's state as the engine stores it

  // ---- slots ----
  // Replaces the pool with `n` free slots (none may be allocated).
  virtual void set_slot_count(int64_t n) = 0;
  virtual int64_t slot_count() const = 0;
  virtual int64_t free_slot_count() const = 0;
  // A slot with an empty state whose sampler draws with `params` from the start of its seed's stream.
  virtual int32_t allocate_slot(const SamplingParams& params) = 0;
  virtual void free_slot(int32_t slot) = 0;
  virtual void reset_slot(int32_t slot) = 0;                 // empty state; the sampler keeps its stream
  virtual void copy_state(int32_t from, int32_t to) = 0;     // state only (n > 1 choices share a prompt)
  virtual void load_state(int32_t slot, const SequenceState& state) = 0;  // host -> slot (state cache)
  virtual void store_state(int32_t slot, SequenceState& state) = 0;       // slot -> host
  virtual SequenceState new_host_state() const = 0;
  // The slot's state itself when it lives on the host (the cache then copies it directly), else null.
  virtual SequenceState* host_state(int32_t /*slot*/) { return nullptr; }

  // ---- compute ----
  virtual void run(const EngineStep& step, EngineOutput& out) = 0;
  // Samples one token per slot from host logits rows (a prompt's last logits, or cached ones).
  virtual void sample(std::span<const int32_t> slots, std::span<const float* const> logits, int32_t* ids) = 0;
  // Final hidden states [T, d] continuing `state` (embeddings). Engines without it throw pcm::Error.
  virtual void final_hidden(std::span<const int32_t> tokens, SequenceState& state, float* hidden) = 0;
};

}  // namespace pcm
