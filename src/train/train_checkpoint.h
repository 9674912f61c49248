// Training checkpoints: a directory in HF layout (config.json + model.safetensors, loadable by
// `pcm generate`) plus optimizer.safetensors (AdamW moments) and trainer_state.json (phase, step,
// data cursor, counters). Written to "<dir>.tmp" and renamed, then <output>/latest is replaced
// atomically, so a kill at any moment leaves the previous complete checkpoint in place.
#pragma once
#include <cstdint>
#include <string>

#include "model/config.h"
#include "train/optimizer.h"
#include "train/params.h"

namespace pcm {

struct TrainerPosition {
  int64_t phase = 0;            // index into the config's phases
  int64_t step_in_phase = 0;    // optimizer steps done in this phase (skipped steps included)
  int64_t global_step = 0;      // over all phases
  int64_t row_cursor = 0;       // next data row of the phase's stream
  int64_t bad_in_row = 0;       // consecutive NaN/Inf steps
  int64_t skipped_total = 0;
  double tokens_seen = 0;       // loss tokens over the run
  uint64_t seed = 0;
  std::string config_digest;    // of the curriculum, to refuse resuming a different one
};

// Writes <dir> atomically (via <dir>.tmp). save_dtype: "f32" keeps resume bit-exact. The tokenizer and
// chat-template files found in `tokenizer_dir` (if any) are copied in, so `pcm generate --prompt` works.
void save_train_checkpoint(const std::string& dir, const Mamba2Config& config, const ParamSet& params,
                           const AdamWState& opt, const TrainerPosition& pos, const std::string& save_dtype,
                           const std::string& tokenizer_dir = "");
// Loads a checkpoint written above; params must be fp32 for an exact resume (bf16 ones are widened).
void load_train_checkpoint(const std::string& dir, Mamba2Config* config, ParamSet* params, AdamWState* opt,
                           TrainerPosition* pos);
// <output_dir>/latest names the newest complete checkpoint; "" when there is none.
std::string latest_checkpoint(const std::string& output_dir);
void set_latest_checkpoint(const std::string& output_dir, const std::string& name);

}  // namespace pcm
