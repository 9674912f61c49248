// Helpers shared by the subcommands: thread count, id lists, model loading.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "model/model.h"

namespace pcm::cli {

// Parses "5,17,3" (spaces allowed); errors name the bad item.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag);
std::string join_ids(const std::vector<int32_t>& ids);

// Number checks with one-line messages ("--n: must be at least 1, got 0"); CLI11's own print a 300-digit bound.
CLI::Validator non_negative();
CLI::Validator positive();
CLI::Validator in_range(double lo, double hi);

// --threads N (0 = every core, at most kMaxThreads); apply_threads() sets OpenMP and returns the count in use.
constexpr int kMaxThreads = 4096;
void add_threads_option(CLI::App* app, int* threads);
int apply_threads(int threads);

// --layers N for a random-weight --shape, 1..kMaxLayers (0 or a negative count ran all of the shape's layers silently,
// 1e9 allocated until memory ran out); left out, the shape's own count.
constexpr int kMaxLayers = 4096;
void add_layers_option(CLI::App* app, int64_t* layers, const std::string& help);

// A bench's decoded sequence as its memory checks count it (CPU RAM, GPU memory): an fp32 state and a logits row.
constexpr const char* kBenchSequences = "sequences (a state and a logits row each)";
double bench_sequence_bytes(const Mamba2Config& c);

// --temperature --top-k --top-p --min-p --seed
void add_sampling_options(CLI::App* app, SamplingParams* params);

// --weights file|q8_0: keep the checkpoint's dtype, or quantise the large matrices to Q8_0 at load.
void add_weights_option(CLI::App* app, std::string* weights);
// Loads a model directory or .gguf file and applies --weights.
Mamba2Model load_model(const std::string& path, const std::string& weights);

// The model used when --model is not given: $PCM_MODEL, else models/pcm-mini next to the binary or one level
// up (build/pcm), else in the source tree pcm was built from. Throws naming the places looked at.
std::string default_model_dir();

}  // namespace pcm::cli
