// Helpers shared by the subcommands: thread count, id lists, model loading.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/sampler.h"

namespace pcm::cli {

// Parses "5,17,3" (spaces allowed); errors name the bad item.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag);
std::string join_ids(const std::vector<int32_t>& ids);

// --threads N (0 = every core); apply_threads() sets OpenMP and returns the count in use.
void add_threads_option(CLI::App* app, int* threads);
int apply_threads(int threads);

// --temperature --top-k --top-p --min-p --seed
void add_sampling_options(CLI::App* app, SamplingParams* params);

// Where a model directory is when --model is not given (the shipped model), or "" when there is none.
std::string default_model_dir();

}  // namespace pcm::cli
