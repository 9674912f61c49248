// ParamSet: checkpoint order and names, load from fixtures, save_hf round trip through Mamba2Model.
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "model/model.h"
#include "test_util.h"
#include "train/params.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {
namespace {

TEST(ParamSet, LoadsEveryFixtureTensorUnderItsName) {
  for (const char* name : {"tiny-g2", "tiny-tied", "small-g4"}) {
    const std::string dir = test::testdata(std::string("models/") + name);
    ParamSet p = ParamSet::from_model_dir(dir);
    SafetensorsFile file(dir + "/model.safetensors");
    EXPECT_EQ(p.size(), file.tensors().size()) << name;
    for (const auto& [tname, info] : file.tensors()) {
      const ParamTensor* t = p.find(tname);
      ASSERT_TRUE(t) << name << ": " << tname;
      std::vector<float> ref = tensor_to_f32(info);
      EXPECT_EQ(t->data, ref) << tname;
    }
    EXPECT_EQ(p.total_numel(), load_mamba2_config(dir).parameter_count()) << name;
    EXPECT_FALSE(p.get("backbone.layers.0.mixer.A_log").weight_decay);
    EXPECT_TRUE(p.get("backbone.layers.0.mixer.in_proj.weight").weight_decay);
  }
}

TEST(ParamSet, SaveHfRoundTripsThroughTheInferenceModel) {
  const std::string dir = test::testdata("models/tiny-g2");
  Mamba2Config config = load_mamba2_config(dir);
  ParamSet p = ParamSet::random(config, 7);
  test::TempDir tmp;
  p.save_hf(tmp.path(), config, DType::F32);
  ParamSet back = ParamSet::from_model_dir(tmp.path());
  ASSERT_EQ(back.size(), p.size());
  for (size_t i = 0; i < p.size(); ++i) EXPECT_EQ(back[i].data, p[i].data) << p[i].name;
  Mamba2Model model = Mamba2Model::load(tmp.path());
  EXPECT_EQ(model.config().num_layers, config.num_layers);
  p.save_hf(tmp.path(), config, DType::BF16);
  EXPECT_NO_THROW(Mamba2Model::load(tmp.path()));
}

TEST(ParamSet, MissingTensorIsANamedError) {
  ParamSet p;
  EXPECT_THROW(p.get("nope"), Error);
}

}  // namespace
}  // namespace pcm

namespace pcm {
namespace {

// A mamba_ssm-layout checkpoint (backbone.embedding.weight, squeezed conv weights, 2 shards) loads
// into the same ParamSet under HF names.
TEST(ParamSet, MambaSsmSpellingAndShardsLoadUnderHfNames) {
  const std::string src = test::testdata("models/tiny-g2");
  SafetensorsFile file(src + "/model.safetensors");
  test::TempDir dir;
  std::vector<TensorToWrite> a, b;
  std::vector<std::vector<int64_t>> shapes;
  shapes.reserve(file.tensors().size());
  nlohmann::json weight_map;
  int i = 0;
  for (const auto& [name, t] : file.tensors()) {
    std::string out = name == "backbone.embeddings.weight" ? "backbone.embedding.weight" : name;
    shapes.push_back(t.shape);
    if (name.find("conv1d.weight") != std::string::npos) shapes.back() = {t.shape[0], t.shape[2]};
    (i++ % 2 ? a : b).push_back({out, t.dtype, shapes.back(), t.data});
    weight_map[out] = i % 2 ? "a.safetensors" : "b.safetensors";
  }
  write_safetensors(dir.file("a.safetensors"), b);
  write_safetensors(dir.file("b.safetensors"), a);
  write_file_atomic(dir.file("model.safetensors.index.json"), nlohmann::json({{"weight_map", weight_map}}).dump());
  write_file_atomic(dir.file("config.json"), read_text_file(src + "/config.json"));
  ParamSet want = ParamSet::from_model_dir(src), got = ParamSet::from_model_dir(dir.path());
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_EQ(got[k].name, want[k].name);
    EXPECT_EQ(got[k].shape, want[k].shape);
    EXPECT_EQ(got[k].data, want[k].data) << want[k].name;
  }
}

TEST(ParamSet, WrongShapeNamesTheTensor) {
  const std::string src = test::testdata("models/tiny-g2");
  test::TempDir dir;
  nlohmann::json cfg = nlohmann::json::parse(read_text_file(src + "/config.json"));
  cfg["state_size"] = 8;  // every B/C-sized tensor now disagrees with the file
  write_file_atomic(dir.file("config.json"), cfg.dump());
  write_file_atomic(dir.file("model.safetensors"), read_text_file(src + "/model.safetensors"));
  try {
    ParamSet::from_model_dir(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("in_proj.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pcm
