// ParamSet: checkpoint order and names, load from fixtures, save_hf round trip through Mamba2Model.
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "model/model.h"
#include "test_util.h"
#include "train/params.h"
#include "util/error.h"

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
