// Mamba2Model: the CPU forward pass over any mix of sequences. Prefill (many tokens of one sequence,
// chunked SSD), batched decode (one token each of many sequences, recurrence) and variable-length
// batches are the same call with different segments.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/state.h"
#include "kernels/cpu/matmul.h"
#include "model/weights.h"

namespace pcm {

// Rows [begin, begin + length) of a forward's tokens belong to one sequence, in order.
struct Segment {
  int64_t begin = 0;
  int64_t length = 0;
  SequenceState* state = nullptr;
};

class Mamba2Model {
 public:
  Mamba2Model(Mamba2Config config, Mamba2Weights weights);
  // config.json + safetensors (single file or sharded), HF or mamba_ssm layout; or a llama.cpp
  // mamba2 .gguf file (F32/F16/BF16/Q8_0 tensors).
  static Mamba2Model load(const std::string& model_dir);

  // `--weights q8_0`: quantise the large matrices to Q8_0 blocks (decode reads half the bytes of bf16).
  void quantize_q8_0();

  const Mamba2Config& config() const { return config_; }
  const Mamba2Weights& weights() const { return weights_; }
  SequenceState new_state() const { return SequenceState(config_); }
  int64_t vocab_size() const { return config_.vocab_size; }

  // Tokens per forward() call; prefill() splits longer prompts into pieces of this many (a multiple
  // of chunk_size, so chunk boundaries fall where a single pass would put them).
  int64_t max_batch_tokens() const { return max_batch_tokens_; }
  void set_max_batch_tokens(int64_t n);

  // Exact: fp32 activations in every projection (matches fp32 references to rounding). Otherwise
  // (the default for bf16 weights on CPUs with AVX512_BF16) projections over more than a few rows —
  // prefill and large batches — round activations to bf16, as bf16 inference in PyTorch does.
  void set_exact(bool exact) { exact_ = exact; }
  bool exact() const { return exact_; }

  // The core: every segment continues from and updates its state. Writes the logits of the rows in
  // `logit_rows` to `logits` [logit_rows.size(), V]. tokens.size() <= max_batch_tokens().
  void forward(std::span<const int32_t> tokens, std::span<const Segment> segments,
               std::span<const int64_t> logit_rows, float* logits);

  // Feeds a prompt to one sequence. logits: [T, V] when all_positions, else [V] for the last token
  // (may be null when no logits are wanted).
  void prefill(std::span<const int32_t> tokens, SequenceState& state, float* logits, bool all_positions);

  // Final hidden states (after norm_f, before lm_head) of every token, [T, d]; continues `state` like
  // prefill. For embeddings.
  void final_hidden(std::span<const int32_t> tokens, SequenceState& state, float* hidden);

  // One token for each of B sequences; logits [B, V].
  void decode(std::span<const int32_t> tokens, std::span<SequenceState* const> states, float* logits);

 private:
  // Per-row buffers of one forward. in_proj runs as two GEMMs so that z (needed only by the gated norm)
  // never sits next to xBC: `xbcdt` holds in_proj's xBC|dt rows, then y (SSD output); `a` holds xn
  // (in_proj input), then xbc (conv output, SSD input), then yn (out_proj input); `b` holds z, then out
  // (out_proj output). Workspace per row at 1.3B: 19.1k floats before this split, 15.0k after.
  struct Workspace {
    int64_t rows = 0;
    std::vector<float> resid, xbcdt, dt, a, b, ssd_scratch;
  };
  void reserve(int64_t rows);
  void check_tokens(std::span<const int32_t> tokens) const;
  void mixer(int64_t layer, int64_t T, std::span<const Segment> segments);
  cpu::MatmulPrecision precision() const {
    return exact_ ? cpu::MatmulPrecision::Exact : cpu::MatmulPrecision::Bf16Activations;
  }

  Mamba2Config config_;
  Mamba2Weights weights_;
  int64_t max_batch_tokens_ = 0;
  bool exact_ = false;
  Workspace ws_;
  std::vector<Segment> decode_segments_;
  std::vector<int64_t> decode_rows_;
};

}  // namespace pcm
