// pcm inspect --model DIR: the architecture, parameter count, weight bytes and the fixed state size.
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "io/checkpoint.h"
#include "model/config.h"
#include "model/gguf_model.h"
#include "model/weights.h"
#include "util/json.h"
#include "util/memory_stats.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model;
  bool as_json = false;
};

void run(const Options& o) {
  Mamba2Config c;
  std::map<std::string, size_t> dtype_bytes;
  size_t total_bytes = 0;
  std::string format;
  if (is_gguf_path(o.model)) {
    auto file = std::make_shared<const GgufFile>(o.model);
    c = mamba2_config_from_gguf(*file);
    bind_mamba2_gguf_weights(c, file);  // validates every tensor against the metadata
    for (const auto& [name, t] : file->tensors()) dtype_bytes[dtype_name(t.dtype)] += t.nbytes;
    format = "llama.cpp GGUF (mamba2)";
  } else {
    c = load_mamba2_config(o.model);
    auto files = std::make_shared<const CheckpointFiles>(o.model);
    bind_mamba2_weights(c, files);  // validates every tensor against the config
    for (const auto& name : files->names()) dtype_bytes[dtype_name(files->get(name).dtype)] += files->get(name).nbytes;
    format = c.format == CheckpointFormat::MambaSsm ? "mamba_ssm MambaLMHeadModel" : "HF Mamba2ForCausalLM";
  }
  for (const auto& [name, bytes] : dtype_bytes) total_bytes += bytes;
  // As the CUDA slots hold it: --state-dtype bf16 stores the SSM state in bf16, the conv windows stay fp32.
  const size_t state_f32 = c.state_bytes(false), state_bf16 = c.state_bytes(true);
  const int64_t params = c.parameter_count();
  if (o.as_json) {
    json j = c.to_hf_json();
    j["format"] = format;
    j["parameters"] = params;
    j["weight_bytes"] = total_bytes;
    j["weight_dtypes"] = dtype_bytes;
    j["state_bytes_per_sequence_f32"] = state_f32;
    j["state_bytes_per_sequence_bf16"] = state_bf16;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::string dtypes;
  for (const auto& [name, bytes] : dtype_bytes) dtypes += fmt::format("{}{} ({})", dtypes.empty() ? "" : ", ", name, human_bytes(static_cast<double>(bytes)));
  std::printf("%s", fmt::format(
      "model            {}\n"
      "format           {}\n"
      "layers           {}\n"
      "d_model          {}\n"
      "d_inner          {} (expand {})\n"
      "heads x head_dim {} x {}\n"
      "groups           {}\n"
      "state size N     {}\n"
      "conv kernel      {}\n"
      "chunk size       {}\n"
      "vocab            {}\n"
      "lm head          {}\n"
      "biases           in/out_proj {}, conv {}\n"
      "time_step_limit  [{}, {}]\n"
      "parameters       {} ({:.1f} M)\n"
      "weights          {} in {}\n"
      "state / sequence {} in fp32 ({} with a bf16 SSM state): conv {} + ssm {} values, independent of length\n",
      o.model, format,
      c.num_layers, c.hidden_size, c.d_inner(), c.expand, c.num_heads, c.head_dim, c.n_groups, c.state_size,
      c.conv_kernel, c.chunk_size, c.vocab_size, c.tie_embeddings ? "tied to the embedding" : "untied",
      c.use_bias ? "yes" : "no", c.use_conv_bias ? "yes" : "no", c.dt_min, c.dt_max, params,
      static_cast<double>(params) / 1e6, human_bytes(static_cast<double>(total_bytes)), dtypes,
      human_bytes(static_cast<double>(state_f32)), human_bytes(static_cast<double>(state_bf16)), c.conv_state_elems(),
      c.ssm_state_elems()).c_str());
}

PCM_REGISTER_COMMAND({"inspect", "Print a checkpoint's architecture, sizes and per-sequence state size",
                      [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model, "model directory or .gguf file")->required();
                        sub->add_flag("--json", o->as_json, "print JSON");
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
