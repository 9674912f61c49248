#include "train/train_config.h"

#include <filesystem>
#include <limits>
#include <set>
#include <sstream>

#include "util/error.h"
#include "util/file.h"
#include "util/json.h"
#include "util/toml.h"

namespace pcm {
namespace {

namespace fs = std::filesystem;

// Typed field access that names "origin: field" in every error and rejects unknown keys (typos).
struct Fields {
  const json& obj;
  std::string origin, prefix;
  std::set<std::string> used;

  std::string where(const std::string& key) const { return origin + ": " + prefix + key; }
  const json* get(const std::string& key) {
    used.insert(key);
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  double num(const std::string& key, double fallback) {
    const json* v = get(key);
    if (!v) return fallback;
    if (!v->is_number()) fail("{}: expected a number, got {}", where(key), v->dump());
    return v->get<double>();
  }
  int64_t integer(const std::string& key, int64_t fallback, int64_t min_value,
                  int64_t max_value = std::numeric_limits<int64_t>::max()) {
    const json* v = get(key);
    if (!v) return fallback;
    if (!v->is_number_integer()) fail("{}: expected an integer, got {}", where(key), v->dump());
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max_value))
      fail("{}: must be <= {}, got {}", where(key), max_value, v->dump());
    int64_t x = v->get<int64_t>();
    if (x < min_value) fail("{}: must be >= {}, got {}", where(key), min_value, x);
    if (x > max_value) fail("{}: must be <= {}, got {}", where(key), max_value, x);
    return x;
  }
  bool boolean(const std::string& key, bool fallback) {
    const json* v = get(key);
    if (!v) return fallback;
    if (!v->is_boolean()) fail("{}: expected true or false, got {}", where(key), v->dump());
    return v->get<bool>();
  }
  std::string str(const std::string& key, const std::string& fallback) {
    const json* v = get(key);
    if (!v) return fallback;
    if (!v->is_string()) fail("{}: expected a string, got {}", where(key), v->dump());
    return v->get<std::string>();
  }
  void finish() const {
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (!used.count(it.key())) fail("{}: unknown field", where(it.key()));
  }
};

// Sizes past these are typos or hostile files: they would allocate gigabytes (or never finish a step)
// before any error. The paper's recipe: seq_len 20480, 8 rows a step, weights 1.
constexpr int64_t kMaxSeqLen = int64_t{1} << 20;
constexpr int64_t kMaxBatchTokens = int64_t{1} << 28;
constexpr double kMaxDatasetWeight = 1000;

std::string resolve(const std::string& p, const std::string& base) {
  if (p.empty() || fs::path(p).is_absolute() || base.empty()) return p;
  return (fs::path(base) / p).lexically_normal().string();
}

PhaseConfig parse_phase(const json& j, const std::string& origin, const std::string& prefix,
                        const std::string& base, size_t index) {
  if (!j.is_object()) fail("{}: {}: expected a table", origin, prefix);
  Fields f{j, origin, prefix + ".", {}};
  PhaseConfig p;
  p.name = f.str("name", "phase" + std::to_string(index + 1));
  // The name becomes part of a checkpoint directory name.
  if (p.name.empty() || p.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                            std::string::npos)
    fail("{}: use letters, digits, '_', '.', '-' only, got '{}'", f.where("name"), p.name);
  const json* ds = f.get("datasets");
  if (!ds || !ds->is_array() || ds->empty()) fail("{}: needs a non-empty array of datasets", f.where("datasets"));
  for (size_t i = 0; i < ds->size(); ++i) {
    const json& d = (*ds)[i];
    std::string dprefix = f.prefix + "datasets[" + std::to_string(i) + "].";
    DatasetSpec spec;
    if (d.is_string()) {
      spec.path = resolve(d.get<std::string>(), base);
    } else if (d.is_object()) {
      Fields df{d, origin, dprefix, {}};
      spec.path = resolve(df.str("path", ""), base);
      if (spec.path.empty()) fail("{}: missing", df.where("path"));
      spec.weight = df.num("weight", 1.0);
      if (!(spec.weight > 0 && spec.weight <= kMaxDatasetWeight))
        fail("{}: must be > 0 and <= {}, got {}", df.where("weight"), kMaxDatasetWeight, spec.weight);
      df.finish();
    } else {
      fail("{}: expected a path or {{path, weight}}", origin + ": " + dprefix.substr(0, dprefix.size() - 1));
    }
    p.datasets.push_back(spec);
  }
  p.epochs = f.num("epochs", 0);
  p.steps = f.integer("steps", 0, 0);
  if (p.steps == 0 && !(p.epochs > 0)) fail("{}: give epochs > 0 or steps > 0", origin + ": " + prefix);
  if (p.epochs < 0) fail("{}: must be >= 0", f.where("epochs"));
  p.seq_len = f.integer("seq_len", p.seq_len, 2, kMaxSeqLen);
  p.batch_tokens = f.integer("batch_tokens", p.seq_len, 1, kMaxBatchTokens);
  if (p.batch_tokens % p.seq_len != 0)
    fail("{}: {} is not a multiple of seq_len {}", f.where("batch_tokens"), p.batch_tokens, p.seq_len);
  p.micro_batch_rows = f.integer("micro_batch_rows", 1, 1);
  if (p.rows_per_step() % p.micro_batch_rows != 0)
    fail("{}: {} does not divide the {} rows of a step", f.where("micro_batch_rows"), p.micro_batch_rows,
         p.rows_per_step());
  p.lr = f.num("lr", p.lr);
  if (!(p.lr >= 0)) fail("{}: must be >= 0", f.where("lr"));
  p.min_lr = f.num("min_lr", 0.0);
  if (!(p.min_lr >= 0) || p.min_lr > p.lr) fail("{}: must be in [0, lr]", f.where("min_lr"));
  p.warmup_steps = f.integer("warmup_steps", 0, 0);
  std::string decay = f.str("decay", "cosine");
  if (decay == "cosine") p.decay = DecayKind::Cosine;
  else if (decay == "linear") p.decay = DecayKind::Linear;
  else if (decay == "constant") p.decay = DecayKind::Constant;
  else fail("{}: expected cosine, linear or constant, got '{}'", f.where("decay"), decay);
  p.weight_decay = f.num("weight_decay", 0.0);
  if (!(p.weight_decay >= 0)) fail("{}: must be >= 0", f.where("weight_decay"));
  p.beta1 = f.num("beta1", 0.9);
  p.beta2 = f.num("beta2", 0.999);
  if (!(p.beta1 >= 0 && p.beta1 < 1)) fail("{}: must be in [0, 1)", f.where("beta1"));
  if (!(p.beta2 >= 0 && p.beta2 < 1)) fail("{}: must be in [0, 1)", f.where("beta2"));
  p.eps = f.num("eps", 1e-8);
  if (!(p.eps > 0)) fail("{}: must be > 0", f.where("eps"));
  p.grad_clip = f.num("grad_clip", 1.0);
  if (!(p.grad_clip >= 0)) fail("{}: must be >= 0", f.where("grad_clip"));
  std::string ov = f.str("overlong", "truncate");
  if (ov == "truncate") p.overlong = OverlongRule::Truncate;
  else if (ov == "drop") p.overlong = OverlongRule::Drop;
  else fail("{}: expected truncate or drop, got '{}'", f.where("overlong"), ov);
  f.finish();
  return p;
}

json toml_to_json(const std::string& text, const std::string& path) {
  std::ostringstream out;
  out << toml::json_formatter{parse_toml(text, path)};
  return parse_json(out.str(), path);
}

}  // namespace

const char* decay_name(DecayKind k) {
  switch (k) {
    case DecayKind::Cosine: return "cosine";
    case DecayKind::Linear: return "linear";
    default: return "constant";
  }
}

TrainConfig parse_train_config(const json& j, const std::string& origin, const std::string& base) {
  if (!j.is_object()) fail("{}: expected a table at the top level", origin);
  Fields f{j, origin, "", {}};
  TrainConfig c;
  c.source = origin;
  c.init_from = resolve(f.str("init_from", ""), base);
  c.shape = f.str("shape", "");
  if (const json* m = f.get("model")) {
    if (!m->is_object()) fail("{}: expected a table of Mamba2Config fields", f.where("model"));
    for (auto it = m->begin(); it != m->end(); ++it)
      if (!is_hf_config_key(it.key())) fail("{}: model.{}: unknown field", origin, it.key());
    c.has_explicit_model = true;
    json hf = *m;
    if (!c.shape.empty()) {  // explicit fields override a named shape
      json base_hf = named_shape(c.shape).to_hf_json();
      for (auto it = m->begin(); it != m->end(); ++it) base_hf[it.key()] = it.value();
      hf = base_hf;
    }
    try {
      c.model = parse_mamba2_config(hf, origin + ": model");
      c.model.validate(origin + ": model");
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg.find(origin) == std::string::npos) fail("{}: model.{}", origin, msg);
      throw;
    }
  } else if (!c.shape.empty()) {
    try {
      c.model = named_shape(c.shape);
    } catch (const Error& e) {
      fail("{}: {}", f.where("shape"), e.what());
    }
  }
  int sources = !c.init_from.empty() + (!c.shape.empty() || c.has_explicit_model);
  if (sources != 1) fail("{}: give exactly one model source: init_from, or shape and/or [model]", origin);
  c.tokenizer = resolve(f.str("tokenizer", ""), base);
  if (c.tokenizer.empty()) c.tokenizer = c.init_from;
  c.output_dir = resolve(f.str("output_dir", c.output_dir), base);
  c.seed = static_cast<uint64_t>(f.integer("seed", 1234, 0));
  c.save_every = f.integer("save_every", 0, 0);
  c.keep_checkpoints = f.integer("keep_checkpoints", 2, 1);
  c.max_bad_steps = f.integer("max_bad_steps", 5, 1);
  c.device = f.str("device", "cpu");
  if (c.device != "cpu" && c.device != "cuda") fail("{}: expected cpu or cuda, got '{}'", f.where("device"), c.device);
  c.precision = f.str("precision", "fp32");
  if (c.precision != "fp32" && c.precision != "bf16")
    fail("{}: expected fp32 or bf16, got '{}'", f.where("precision"), c.precision);
  c.recompute = f.boolean("recompute", false);
  c.vocab_chunk = f.integer("vocab_chunk", 8192, 1);
  c.save_dtype = f.str("save_dtype", "f32");
  if (c.save_dtype != "f32" && c.save_dtype != "bf16" && c.save_dtype != "f16")
    fail("{}: expected f32, bf16 or f16, got '{}'", f.where("save_dtype"), c.save_dtype);
  const json* phases = f.get("phases");
  if (!phases || !phases->is_array() || phases->empty())
    fail("{}: needs a non-empty array of phases ([[phases]] in TOML)", f.where("phases"));
  for (size_t i = 0; i < phases->size(); ++i)
    c.phases.push_back(parse_phase((*phases)[i], origin, "phases[" + std::to_string(i) + "]", base, i));
  f.finish();
  return c;
}

void check_train_inputs(const TrainConfig& c) {
  if (!c.tokenizer.empty() && c.tokenizer != c.init_from && !fs::is_regular_file(c.tokenizer + "/tokenizer.json"))
    fail("{}: tokenizer: {} {}", c.source, c.tokenizer,
         fs::is_directory(c.tokenizer) ? "has no tokenizer.json" : "is not a directory with a tokenizer.json");
  for (size_t i = 0; i < c.phases.size(); ++i) {
    for (size_t k = 0; k < c.phases[i].datasets.size(); ++k) {
      const std::string& path = c.phases[i].datasets[k].path;
      if (!fs::is_regular_file(path))
        fail("{}: phases[{}].datasets[{}]: {} {}", c.source, i, k, path,
             fs::exists(path) ? "is not a file" : "does not exist");
    }
  }
}

TrainConfig load_train_config(const std::string& path) {
  std::string text = read_text_file(path);
  std::string base = fs::path(path).parent_path().string();
  json j = fs::path(path).extension() == ".json" ? parse_json(text, path) : toml_to_json(text, path);
  return parse_train_config(j, path, base);
}

}  // namespace pcm
