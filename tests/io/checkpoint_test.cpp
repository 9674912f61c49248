// Checkpoint directories: sharded files, the mamba_ssm layout, config variants, and bad checkpoints.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/checkpoint.h"
#include "model/model.h"
#include "test_util.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::vector<float> logits_of(const std::string& dir, const std::vector<int32_t>& ids) {
  Mamba2Model m = Mamba2Model::load(dir);
  std::vector<float> out(ids.size() * static_cast<size_t>(m.vocab_size()));
  SequenceState s = m.new_state();
  m.prefill(ids, s, out.data(), true);
  return out;
}

const std::vector<int32_t> kIds = {3, 100, 7, 250, 1, 42, 9, 9, 200};

// Rewrites a fixture's tensors into `out_dir`, renaming and splitting as asked.
void rewrite(const std::string& src, const std::string& out_dir, int shards,
             const std::map<std::string, std::string>& rename = {}) {
  SafetensorsFile f(src + "/model.safetensors");
  std::vector<std::vector<TensorToWrite>> parts(static_cast<size_t>(shards));
  json weight_map = json::object();
  int i = 0;
  for (const auto& [name, t] : f.tensors()) {
    std::string out_name = rename.count(name) ? rename.at(name) : name;
    int shard = i++ % shards;
    parts[static_cast<size_t>(shard)].push_back({out_name, t.dtype, t.shape, t.data});
    weight_map[out_name] = fmt::format("model-{:05d}-of-{:05d}.safetensors", shard + 1, shards);
  }
  if (shards == 1) {
    write_safetensors(out_dir + "/model.safetensors", parts[0]);
  } else {
    for (int s = 0; s < shards; ++s)
      write_safetensors(out_dir + fmt::format("/model-{:05d}-of-{:05d}.safetensors", s + 1, shards),
                        parts[static_cast<size_t>(s)]);
    std::ofstream(out_dir + "/model.safetensors.index.json") << json({{"weight_map", weight_map}}).dump();
  }
}

TEST(Checkpoint, ShardedEqualsSingleFile) {
  TempDir dir;
  std::string src = test::testdata("models/tiny-g2");
  rewrite(src, dir.path(), 3);
  fs::copy_file(src + "/config.json", dir.file("config.json"));
  EXPECT_EQ(logits_of(dir.path(), kIds), logits_of(src, kIds));
}

TEST(Checkpoint, MambaSsmLayoutEqualsHf) {
  TempDir dir;
  std::string src = test::testdata("models/tiny-g2");
  rewrite(src, dir.path(), 1, {{"backbone.embeddings.weight", "backbone.embedding.weight"}});
  json hf = read_json_file(src + "/config.json");
  json ms = {{"d_model", hf["hidden_size"]},
             {"n_layer", hf["num_hidden_layers"]},
             {"d_intermediate", 0},
             {"vocab_size", hf["vocab_size"]},
             {"ssm_cfg",
              {{"layer", "Mamba2"}, {"d_state", hf["state_size"]}, {"d_conv", 4}, {"expand", 2},
               {"headdim", hf["head_dim"]}, {"ngroups", hf["n_groups"]}, {"chunk_size", hf["chunk_size"]}}},
             {"rms_norm", true},
             {"residual_in_fp32", true},
             {"pad_vocab_size_multiple", 8},
             {"tie_embeddings", false}};
  std::ofstream(dir.file("config.json")) << ms.dump();
  Mamba2Config c = load_mamba2_config(dir.path());
  EXPECT_EQ(c.format, CheckpointFormat::MambaSsm);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(logits_of(dir.path(), kIds), logits_of(src, kIds));
}

TEST(Config, MambaSsmPadsTheVocabulary) {
  json j = {{"d_model", 64}, {"n_layer", 2}, {"vocab_size", 50277}, {"ssm_cfg", {{"layer", "Mamba2"}}},
            {"pad_vocab_size_multiple", 16}};
  Mamba2Config c = parse_mamba2_config(j, "config.json");
  EXPECT_EQ(c.vocab_size, 50288);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.n_groups, 1);
  EXPECT_EQ(c.num_heads, 2);
}

TEST(Config, TimeStepLimitSpellings) {
  std::string base = R"({"hidden_size": 64, "num_heads": 8, "head_dim": 16, "n_groups": 2, "vocab_size": 10)";
  auto parse = [&](const std::string& extra) { return parse_mamba2_config(parse_json(base + extra + "}", "c"), "c"); };
  EXPECT_TRUE(std::isinf(parse(R"(, "time_step_limit": [0.0, Infinity])").dt_max));
  EXPECT_TRUE(std::isinf(parse(R"(, "time_step_limit": [0.0, {"__float__": "Infinity"}])").dt_max));
  EXPECT_TRUE(std::isinf(parse("").dt_max));
  EXPECT_DOUBLE_EQ(parse(R"(, "time_step_limit": [0.001, 0.1])").dt_max, 0.1);
}

TEST(Config, InconsistentHeadsAreRejected) {
  try {
    parse_mamba2_config(parse_json(R"({"hidden_size": 64, "num_heads": 7, "head_dim": 16})", "x/config.json"),
                        "x/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_heads (7) x head_dim (16)"), std::string::npos) << e.what();
  }
}

// A field of another type than the parser reads (a string where a number goes): the file and the field (the field
// reader named only the key before).
TEST(Config, FieldOfTheWrongTypeNamesTheFile) {
  try {
    parse_mamba2_config(parse_json(R"({"hidden_size": "wide", "num_heads": 8, "head_dim": 16})", "x/config.json"),
                        "x/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x/config.json: bad value: hidden_size: expected an integer, got \"wide\""),
              std::string::npos) << e.what();
  }
}

// is_hf_config_key (the train config's [model] table takes these keys) and parse_hf keep the same list: every key
// config.json gets from to_hf_json is one, and every one of them is read (an object where a value goes is an error
// naming the key).
TEST(Config, HfConfigKeysAreTheKeysTheParserReads) {
  Mamba2Config c;
  c.bos_token_id = 1, c.eos_token_id = 2, c.pad_token_id = 0;
  const json hf = c.to_hf_json();
  for (const auto& [key, value] : hf.items()) {
    if (key == "architectures" || key == "model_type" || key == "hidden_act" || key == "rms_norm") continue;
    EXPECT_TRUE(is_hf_config_key(key)) << key;
    json bad = json::object();
    bad[key] = json::object({{"x", 1}});
    try {
      parse_mamba2_config(bad, "c");
      ADD_FAILURE() << key << " is not read";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(is_hf_config_key("d_model"));
}

// eos_token_id was read with nlohmann's get<>(), so a string said only "type must be number" (audit item 7).
TEST(Config, EosTokenIdOfTheWrongTypeNamesTheField) {
  for (const char* value : {R"("2")", R"(["2"])"}) {
    try {
      parse_mamba2_config(parse_json(fmt::format(R"({{"eos_token_id": {}}})", value), "x/config.json"),
                          "x/config.json");
      FAIL() << value;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("x/config.json: bad value: eos_token_id"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse_mamba2_config(parse_json(R"({"eos_token_id": [7, 8]})", "c"), "c").eos_token_id, 7);
  EXPECT_EQ(parse_mamba2_config(parse_json(R"({"eos_token_id": []})", "c"), "c").eos_token_id, -1);
}

class BadCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = test::testdata("models/tiny-g2");
    fs::copy_file(src_ + "/config.json", dir_.file("config.json"));
  }
  void expect_load_error(const std::string& fragment) {
    try {
      Mamba2Model::load(dir_.path());
      FAIL() << "expected: " << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
  std::string src_;
  TempDir dir_;
};

TEST_F(BadCheckpoint, MissingTensor) {
  SafetensorsFile f(src_ + "/model.safetensors");
  std::vector<TensorToWrite> keep;
  for (const auto& [name, t] : f.tensors())
    if (name != "backbone.layers.1.mixer.D") keep.push_back({name, t.dtype, t.shape, t.data});
  write_safetensors(dir_.file("model.safetensors"), keep);
  expect_load_error("missing tensor 'backbone.layers.1.mixer.D'");
}

TEST_F(BadCheckpoint, WrongShapeForConfig) {
  SafetensorsFile f(src_ + "/model.safetensors");
  std::vector<TensorToWrite> all;
  for (const auto& [name, t] : f.tensors()) {
    std::vector<int64_t> shape = t.shape;
    if (name == "backbone.layers.0.mixer.out_proj.weight") std::swap(shape[0], shape[1]);
    all.push_back({name, t.dtype, shape, t.data});
  }
  write_safetensors(dir_.file("model.safetensors"), all);
  expect_load_error("tensor 'backbone.layers.0.mixer.out_proj.weight' has shape [128, 64] but the config");
}

TEST_F(BadCheckpoint, MalformedConfig) {
  fs::copy_file(src_ + "/model.safetensors", dir_.file("model.safetensors"));
  std::ofstream(dir_.file("config.json"), std::ios::trunc) << "{\"hidden_size\": 64,";
  expect_load_error("config.json: malformed JSON");
}

TEST_F(BadCheckpoint, IndexNamesMissingShard) {
  std::ofstream(dir_.file("model.safetensors.index.json"))
      << R"({"weight_map": {"backbone.norm_f.weight": "model-00001-of-00002.safetensors"}})";
  expect_load_error("shard 'model-00001-of-00002.safetensors' listed in the index does not exist");
}

TEST_F(BadCheckpoint, NoWeightsAtAll) { expect_load_error("no model.safetensors or model.safetensors.index.json"); }

TEST_F(BadCheckpoint, TruncatedWeightsFile) {
  std::string bytes = read_text_file(src_ + "/model.safetensors");
  std::ofstream(dir_.file("model.safetensors"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_load_error("truncated file?");
}

}  // namespace
}  // namespace pcm
