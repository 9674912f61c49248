#include "cli/common.h"

#include <omp.h>

#include "model/quantize.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "util/error.h"
#include "util/file.h"

namespace pcm::cli {

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty() || end < text.size()) {
      int64_t v = 0;
      auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
      PCM_CHECK(ec == std::errc() && p == item.data() + item.size() && v >= 0 && v <= INT32_MAX,
                "{}: '{}' is not a token id (a non-negative integer)", flag, item);
      ids.push_back(static_cast<int32_t>(v));
    }
    pos = end + 1;
  }
  return ids;
}

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  return out;
}

namespace {

// `ok(value)` decides; the message names the bound. Non-numbers are left to the option's own conversion error.
CLI::Validator number_check(std::function<bool(double)> ok, std::string bound) {
  return CLI::Validator(
      [ok = std::move(ok), bound](std::string& input) -> std::string {
        double v = 0.0;
        try {
          size_t used = 0;
          v = std::stod(input, &used);
          if (used != input.size()) return "";
        } catch (const std::exception&) {
          return "";
        }
        return ok(v) ? "" : fmt::format("must be {}, got {}", bound, input);
      },
      bound);
}

}  // namespace

CLI::Validator non_negative() { return number_check([](double v) { return v >= 0.0; }, "at least 0"); }
CLI::Validator positive() { return number_check([](double v) { return v > 0.0; }, "greater than 0"); }
CLI::Validator in_range(double lo, double hi) {
  return number_check([lo, hi](double v) { return v >= lo && v <= hi; }, fmt::format("between {} and {}", lo, hi));
}

void add_threads_option(CLI::App* app, int* threads) {
  // Tens of thousands of OpenMP threads failed to start or crashed in libgomp.
  app->add_option("--threads,-t", *threads, "CPU threads (0 = all cores)")->check(in_range(0, kMaxThreads));
}

int apply_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
  return omp_get_max_threads();
}

void add_layers_option(CLI::App* app, int64_t* layers, const std::string& help) {
  app->add_option("--layers", *layers, help + " (1.." + std::to_string(kMaxLayers) + ")")->check(in_range(1, kMaxLayers));
}

double bench_sequence_bytes(const Mamba2Config& c) {
  return static_cast<double>(c.state_bytes(false) + c.vocab_size * 4);
}

void add_sampling_options(CLI::App* app, SamplingParams* p) {
  app->add_option("--temperature", p->temperature, "sampling temperature (0 = greedy)");
  app->add_option("--top-k", p->top_k, "keep the k most likely tokens (0 = off)");
  app->add_option("--top-p", p->top_p, "nucleus sampling mass (1 = off)");
  app->add_option("--min-p", p->min_p, "drop tokens below min_p x the top probability (0 = off)");
  app->add_option("--seed", p->seed, "random seed");
}

void add_weights_option(CLI::App* app, std::string* weights) {
  app->add_option("--weights", *weights, "file (the checkpoint's dtype) or q8_0 (quantise at load, GGUF Q8_0 blocks)")
      ->check(CLI::IsMember({"file", "q8_0"}));
}

Mamba2Model load_model(const std::string& path, const std::string& weights) {
  Mamba2Model model = Mamba2Model::load(path);
  if (parse_weights_option(weights) == DType::Q8_0) model.quantize_q8_0();
  return model;
}

std::string default_model_dir() {
  // 1. PCM_MODEL names the model outright: a wrong value is an error, never silently skipped.
  if (const char* env = std::getenv("PCM_MODEL"); env && *env) {
    PCM_CHECK(std::filesystem::exists(env), "PCM_MODEL={}: no such model directory or .gguf file", env);
    return env;
  }
  // 2. Next to the binary (a packed folder: pcm + models/pcm-mini) or one level up (build/pcm in a checkout),
  // 3. then the source tree this binary was built from.
  std::vector<std::string> tried;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    tried.push_back((exe.parent_path() / "models/pcm-mini").string());
    tried.push_back((exe.parent_path().parent_path() / "models/pcm-mini").string());
  }
#ifdef PCM_SOURCE_DIR
  tried.push_back(std::string(PCM_SOURCE_DIR) + "/models/pcm-mini");
#endif
  std::string places;
  for (size_t i = 0; i < tried.size(); ++i) {
    const std::string& dir = tried[i];
    if (std::find(tried.begin(), tried.begin() + i, dir) != tried.begin() + i) continue;  // listed already
    if (std::filesystem::is_regular_file(dir + "/config.json", ec)) return dir;
    places += (places.empty() ? "" : ", ") + dir;
  }
  fail("no --model given and no shipped model found (set PCM_MODEL=DIR, or put models/pcm-mini next to pcm; "
       "looked in: {})", places);
}

}  // namespace pcm::cli
