// Every fixture model against the transformers references: logits, greedy ids, states after the prompt.
#include <gtest/gtest.h>

#include "engine/generator.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test_util.h"

namespace pcm {
namespace {

using test::rel_error;
using test::testdata;

std::vector<int32_t> ids_of(const TensorInfo& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

// Exact mode: fp32 activations everywhere, so the bf16 fixture matches to rounding as well.
Mamba2Model load_exact(const std::string& dir) {
  Mamba2Model m = Mamba2Model::load(dir);
  m.set_exact(true);
  return m;
}

class FixtureModel : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureModel, LogitsMatchReference) {
  std::string dir = testdata("models/" + GetParam());
  Mamba2Model model = load_exact(dir);
  SafetensorsFile ref(dir + "/reference.safetensors");
  auto ids = ids_of(ref.get("input_ids"));
  auto expect = tensor_to_f32(ref.get("logits"));
  std::vector<float> logits(ids.size() * static_cast<size_t>(model.vocab_size()));
  SequenceState state = model.new_state();
  model.prefill(ids, state, logits.data(), true);
  EXPECT_LE(rel_error(logits, expect), 1e-4);
}

TEST_P(FixtureModel, StatesAfterPromptMatchReference) {
  std::string dir = testdata("models/" + GetParam());
  Mamba2Model model = load_exact(dir);
  SafetensorsFile ref(dir + "/reference.safetensors");
  auto ids = ids_of(ref.get("input_ids"));
  SequenceState state = model.new_state();
  model.prefill(ids, state, nullptr, false);
  for (int64_t l = 0; l < model.config().num_layers; ++l) {
    auto ssm = tensor_to_f32(ref.get("ssm_state." + std::to_string(l)));
    auto conv = tensor_to_f32(ref.get("conv_state." + std::to_string(l)));
    ASSERT_EQ(ssm.size(), static_cast<size_t>(state.ssm_layer_elems));
    ASSERT_EQ(conv.size(), static_cast<size_t>(state.conv_layer_elems));
    EXPECT_LE(rel_error(state.ssm_layer(l), ssm.data(), ssm.size()), 1e-4) << "layer " << l;
    EXPECT_LE(rel_error(state.conv_layer(l), conv.data(), conv.size()), 1e-4) << "layer " << l;
  }
}

TEST_P(FixtureModel, GreedyIdsMatchReference) {
  std::string dir = testdata("models/" + GetParam());
  Mamba2Model model = load_exact(dir);
  SafetensorsFile ref(dir + "/reference.safetensors");
  auto ids = ids_of(ref.get("input_ids"));
  auto expect = ids_of(ref.get("greedy_ids"));
  GenerateOptions g;
  g.max_new_tokens = static_cast<int64_t>(expect.size());
  g.sampling.temperature = 0.0f;
  SequenceState state = model.new_state();
  GenerateResult r = generate(model, state, ids, g);
  EXPECT_EQ(r.tokens, expect);
}

TEST_P(FixtureModel, PrefillInPiecesEqualsOnePass) {
  std::string dir = testdata("models/" + GetParam());
  Mamba2Model model = load_exact(dir);
  SafetensorsFile ref(dir + "/reference.safetensors");
  auto ids = ids_of(ref.get("input_ids"));
  const size_t V = static_cast<size_t>(model.vocab_size());
  std::vector<float> whole(ids.size() * V), pieces(ids.size() * V);
  SequenceState a = model.new_state(), b = model.new_state();
  model.prefill(ids, a, whole.data(), true);
  const size_t cut = ids.size() / 3 + 1;  // not a multiple of the chunk size
  model.prefill(std::span(ids).first(cut), b, pieces.data(), true);
  model.prefill(std::span(ids).subspan(cut), b, pieces.data() + cut * V, true);
  EXPECT_LE(rel_error(pieces, whole), 1e-5);
  EXPECT_LE(rel_error(b.ssm, a.ssm), 1e-5);
  EXPECT_LE(rel_error(b.conv, a.conv), 1e-6);
}

TEST_P(FixtureModel, DecodeContinuesPrefillExactly) {
  // Prefill T-3 tokens, then decode the last 3 one by one: logits equal a one-pass prefill's.
  std::string dir = testdata("models/" + GetParam());
  Mamba2Model model = load_exact(dir);
  SafetensorsFile ref(dir + "/reference.safetensors");
  auto ids = ids_of(ref.get("input_ids"));
  auto expect = tensor_to_f32(ref.get("logits"));
  const size_t V = static_cast<size_t>(model.vocab_size()), T = ids.size();
  SequenceState state = model.new_state();
  model.prefill(std::span(ids).first(T - 3), state, nullptr, false);
  std::vector<float> logits(V);
  SequenceState* states[1] = {&state};
  for (size_t t = T - 3; t < T; ++t) {
    model.decode(std::span(&ids[t], 1), states, logits.data());
    EXPECT_LE(rel_error(logits.data(), expect.data() + t * V, V), 1e-4) << "position " << t;
  }
}

TEST(FixtureModelFast, Bf16ActivationsStayCloseAndKeepGreedyIds) {
  // The default for bf16 weights on AVX512-BF16 CPUs rounds prefill activations to bf16.
  std::string dir = testdata("models/tiny-mistral-bf16");
  Mamba2Model model = Mamba2Model::load(dir);
  ASSERT_FALSE(model.exact());
  SafetensorsFile ref(dir + "/reference.safetensors");
  auto ids = ids_of(ref.get("input_ids"));
  auto expect = tensor_to_f32(ref.get("logits"));
  std::vector<float> logits(ids.size() * static_cast<size_t>(model.vocab_size()));
  SequenceState state = model.new_state();
  model.prefill(ids, state, logits.data(), true);
  EXPECT_LE(rel_error(logits, expect), 1e-2);
  GenerateOptions g;
  auto greedy = ids_of(ref.get("greedy_ids"));
  g.max_new_tokens = static_cast<int64_t>(greedy.size());
  g.sampling.temperature = 0.0f;
  SequenceState s2 = model.new_state();
  EXPECT_EQ(generate(model, s2, ids, g).tokens, greedy);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureModel,
                         ::testing::Values("tiny-g2", "tiny-tied", "small-g4", "tiny-mistral-bf16"));

}  // namespace
}  // namespace pcm
