// The training curriculum: where the model comes from and an ordered list of phases, read from TOML
// (toml++) or JSON. Every error names the file and the field (e.g. "phases[1].lr").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace pcm {

struct DatasetSpec {
  std::string path;     // JSONL: {"messages"}, {"prompt","completion"}, {"text"} or {"input_ids"}
  double weight = 1.0;  // documents per epoch = round(weight * rows in the file); >1 repeats, <1 subsamples
};

enum class DecayKind { Cosine, Linear, Constant };
enum class OverlongRule { Truncate, Drop };

struct PhaseConfig {
  std::string name;
  std::vector<DatasetSpec> datasets;
  double epochs = 0;   // used when steps == 0
  int64_t steps = 0;   // optimizer steps; overrides epochs when > 0
  int64_t seq_len = 2048;
  int64_t batch_tokens = 16384;   // tokens per optimizer step (rows = batch_tokens / seq_len)
  int64_t micro_batch_rows = 1;   // rows per loss_and_grad call (gradient accumulation over the rest)
  double lr = 5e-6, min_lr = 0.0;
  int64_t warmup_steps = 0;
  DecayKind decay = DecayKind::Cosine;
  double weight_decay = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double grad_clip = 1.0;  // global L2 norm; 0 = no clipping
  OverlongRule overlong = OverlongRule::Truncate;

  int64_t rows_per_step() const { return batch_tokens / seq_len; }
};

struct TrainConfig {
  std::string source;  // the config file (or origin), named by errors found after parsing
  // Exactly one model source: init_from (a checkpoint dir) or shape (named) / model (explicit fields).
  std::string init_from;
  std::string shape;
  bool has_explicit_model = false;
  Mamba2Config model;
  std::string tokenizer;  // dir with tokenizer.json (+ chat template); default: init_from
  std::string output_dir = "runs/train";
  uint64_t seed = 1234;
  int64_t save_every = 0;       // steps between checkpoints (0 = only at phase ends)
  int64_t keep_checkpoints = 2; // step checkpoints kept (phase-end ones are always kept)
  int64_t max_bad_steps = 5;    // NaN/Inf steps in a row before the run stops
  std::string device = "cpu";   // cpu | cuda (pcm train --device overrides)
  std::string precision = "fp32";  // cuda projections: fp32 (exact) | bf16 (bf16 operands, fp32 accumulation)
  bool recompute = false;       // GradOptions::recompute_per_layer
  int64_t vocab_chunk = 8192;
  std::string save_dtype = "f32";  // model.safetensors dtype: f32 (exact resume), bf16, f16
  std::vector<PhaseConfig> phases;
};

// Parses a .toml or .json file (by extension; else tries TOML). Relative dataset/model paths are
// resolved against the config file's directory.
TrainConfig load_train_config(const std::string& path);
// From already-parsed JSON (TOML is converted to JSON first); `origin` prefixes error messages.
TrainConfig parse_train_config(const nlohmann::json& j, const std::string& origin, const std::string& base_dir);

// What a run reads besides the model, checked before any training (a misspelled phase-2 dataset was found
// only after phase 1 had trained): every phase's dataset files, and the tokenizer directory when it is set
// apart from init_from. Errors name the config file and field.
void check_train_inputs(const TrainConfig& c);

const char* decay_name(DecayKind k);

}  // namespace pcm
