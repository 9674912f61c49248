#include "train/train_checkpoint.h"

#include <filesystem>

#include "io/safetensors.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {
namespace fs = std::filesystem;

void save_train_checkpoint(const std::string& dir, const Mamba2Config& config, const ParamSet& params,
                           const AdamWState& opt, const TrainerPosition& pos, const std::string& save_dtype,
                           const std::string& tokenizer_dir) {
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp);
  DType dt = save_dtype == "bf16" ? DType::BF16 : save_dtype == "f16" ? DType::F16 : DType::F32;
  params.save_hf(tmp, config, dt);
  std::vector<TensorToWrite> tensors;
  for (size_t i = 0; i < params.size(); ++i) {
    tensors.push_back({"m." + opt.m[i].name, DType::F32, opt.m[i].shape, opt.m[i].data.data()});
    tensors.push_back({"v." + opt.v[i].name, DType::F32, opt.v[i].shape, opt.v[i].data.data()});
  }
  write_safetensors(tmp + "/optimizer.safetensors", tensors, {{"adamw_step", std::to_string(opt.step)}});
  json st = {{"phase", pos.phase},
             {"step_in_phase", pos.step_in_phase},
             {"global_step", pos.global_step},
             {"row_cursor", pos.row_cursor},
             {"bad_in_row", pos.bad_in_row},
             {"skipped_total", pos.skipped_total},
             {"tokens_seen", pos.tokens_seen},
             {"seed", pos.seed},
             {"adamw_step", opt.step},
             {"model_dtype", save_dtype},
             {"config_digest", pos.config_digest}};
  write_file_atomic(tmp + "/trainer_state.json", st.dump(2) + "\n");
  if (!tokenizer_dir.empty())
    for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                             "chat_template.jinja", "generation_config.json"})
      if (fs::exists(tokenizer_dir + "/" + name)) fs::copy_file(tokenizer_dir + "/" + name, tmp + "/" + name);
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir);
}

void load_train_checkpoint(const std::string& dir, Mamba2Config* config, ParamSet* params, AdamWState* opt,
                           TrainerPosition* pos) {
  if (!fs::exists(dir + "/trainer_state.json"))
    fail("{}: not a training checkpoint (no trainer_state.json)", dir);
  json st = read_json_file(dir + "/trainer_state.json");
  naming_json_errors(dir + "/trainer_state.json", [&] {
    pos->phase = st.at("phase");
    pos->step_in_phase = st.at("step_in_phase");
    pos->global_step = st.at("global_step");
    pos->row_cursor = st.at("row_cursor");
    pos->bad_in_row = st.at("bad_in_row");
    pos->skipped_total = st.at("skipped_total");
    pos->tokens_seen = st.at("tokens_seen");
    pos->seed = st.at("seed");
    pos->config_digest = st.at("config_digest");
    opt->step = st.at("adamw_step");
  });
  *params = ParamSet::from_model_dir(dir, config);
  SafetensorsFile f(dir + "/optimizer.safetensors");
  opt->m = params->zeros_like();
  opt->v = params->zeros_like();
  for (size_t i = 0; i < params->size(); ++i) {
    for (auto [prefix, set] : {std::pair{"m.", &opt->m}, std::pair{"v.", &opt->v}}) {
      const TensorInfo& t = f.get(prefix + (*params)[i].name);
      std::vector<float> data = tensor_to_f32(t);
      if (static_cast<int64_t>(data.size()) != (*params)[i].numel())
        fail("{}: {} has {} elements, expected {}", f.path(), t.name, data.size(), (*params)[i].numel());
      (*set)[i].data = std::move(data);
    }
  }
}

std::string latest_checkpoint(const std::string& output_dir) {
  std::string p = output_dir + "/latest";
  if (!fs::exists(p)) return "";
  std::string name = read_text_file(p);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return name.empty() ? "" : output_dir + "/" + name;
}

void set_latest_checkpoint(const std::string& output_dir, const std::string& name) {
  write_file_atomic(output_dir + "/latest", name + "\n");
}

}  // namespace pcm
