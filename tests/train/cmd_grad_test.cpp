// pcm grad against the fixtures' PyTorch reference gradients.
#include <gtest/gtest.h>

#include <cstring>

#include <fmt/format.h>

#include "io/safetensors.h"
#include "test_util.h"

namespace pcm {
namespace {

// `model`: a checkpoint directory or a .gguf of fixture `name`, checked against that fixture's PyTorch gradients.
void expect_gradients_match_pytorch(const std::string& model, const std::string& name) {
  const std::string dir = test::testdata("models/" + name);
  SafetensorsFile ref(dir + "/reference.safetensors");
  const TensorInfo& ids = ref.get("input_ids");
  const auto* id = reinterpret_cast<const int32_t*>(ids.data);
  const auto* mask = reinterpret_cast<const int32_t*>(ref.get("loss_mask").data);
  std::string list;
  for (int64_t t = 0; t < ids.numel(); ++t) list += fmt::format("{}{}", t ? "," : "", id[t]);
  int64_t k = 0;
  while (!mask[k]) ++k;  // the fixture's mask is 0 for a prefix, then 1
  test::TempDir tmp;
  const std::string out = tmp.file("g.safetensors");
  auto r = test::run_pcm("grad --model " + model + " --prompt-ids " + list + " --loss-from " + std::to_string(k) +
                         " --out " + out + " --vocab-chunk 64 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.all();
  SafetensorsFile got(out);
  EXPECT_NEAR(tensor_to_f32(got.get("loss"))[0], tensor_to_f32(ref.get("loss"))[0], 1e-5) << name;
  const TensorInfo& gm = got.get("loss_mask");
  ASSERT_EQ(gm.nbytes, ref.get("loss_mask").nbytes);
  EXPECT_EQ(0, std::memcmp(gm.data, mask, gm.nbytes)) << name;
  int n = 0;
  for (const auto& [tname, info] : ref.tensors()) {
    if (tname.rfind("grad.", 0) != 0) continue;
    EXPECT_LT(test::rel_error(tensor_to_f32(got.get(tname.substr(5))), tensor_to_f32(info)), 1e-4) << tname;
    ++n;
  }
  EXPECT_GT(n, 10);
}

TEST(CmdGrad, WritesLossAndGradientsMatchingPyTorch) {
  for (const char* name : {"tiny-g2", "tiny-tied"}) expect_gradients_match_pytorch(test::testdata(std::string("models/") + name), name);
}

// Audit item 19: grad --model FILE.gguf said "no config.json in the model directory" (score takes a .gguf).
TEST(CmdGrad, TakesAGgufFile) { expect_gradients_match_pytorch(test::testdata("gguf/tiny-g2-f32.gguf"), "tiny-g2"); }

TEST(CmdGrad, BadArgumentsFailClearly) {
  const std::string dir = test::testdata("models/tiny-g2");
  test::TempDir tmp;
  auto r = test::run_pcm("grad --model " + dir + " --prompt-ids 5,9,3 --loss-from 2 --out " + tmp.file("g"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--loss-from"), std::string::npos) << r.err;
  r = test::run_pcm("grad --model " + dir + " --prompt-ids 5,9999 --out " + tmp.file("g"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("9999"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pcm
