// Whole model on random weights: chunked prefill == token-by-token decode for lengths around Q; batched decode; a
// state of another layout refused.
#include <gtest/gtest.h>

#include <string>

#include "model/model.h"
#include "test_util.h"
#include "util/error.h"

namespace pcm {
namespace {

Mamba2Config small_config() {
  Mamba2Config c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.expand = 2;
  c.head_dim = 16;
  c.num_heads = 4;
  c.n_groups = 2;
  c.state_size = 8;
  c.conv_kernel = 4;
  c.chunk_size = 16;
  c.use_bias = true;
  c.dt_max = 0.08;
  c.validate("test");
  return c;
}

class ModelChunkedVsRecurrent : public ::testing::TestWithParam<int64_t> {};

TEST_P(ModelChunkedVsRecurrent, PrefillEqualsDecodeLoop) {
  Mamba2Config c = small_config();
  const int64_t Q = c.chunk_size, V = c.vocab_size;
  const int64_t lengths[] = {1, Q - 1, Q, Q + 1, 3 * Q + 5};
  const int64_t T = lengths[GetParam()];
  Mamba2Model model(c, random_mamba2_weights(c, DType::F32, 7));
  model.set_max_batch_tokens(2 * Q);  // 3Q+5 is also split into pieces
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>((i * 37 + 11) % V);

  std::vector<float> prefill_logits(static_cast<size_t>(T * V)), step_logits(static_cast<size_t>(T * V));
  SequenceState a = model.new_state(), b = model.new_state();
  model.prefill(ids, a, prefill_logits.data(), true);
  SequenceState* states[1] = {&b};
  for (int64_t t = 0; t < T; ++t)
    model.decode(std::span(&ids[static_cast<size_t>(t)], 1), states, step_logits.data() + t * V);
  EXPECT_LE(test::rel_error(prefill_logits, step_logits), 1e-5) << "T=" << T;
  EXPECT_LE(test::rel_error(a.ssm, b.ssm), 1e-5);
  EXPECT_LE(test::rel_error(a.conv, b.conv), 1e-6);
  EXPECT_EQ(a.tokens_seen, T);
}

INSTANTIATE_TEST_SUITE_P(Lengths, ModelChunkedVsRecurrent, ::testing::Range<int64_t>(0, 5));

TEST(ModelBatch, BatchedDecodeEqualsSeparateSequences) {
  Mamba2Config c = small_config();
  Mamba2Model model(c, random_mamba2_weights(c, DType::BF16, 3));
  const int64_t V = c.vocab_size;
  std::vector<SequenceState> solo, batch;
  for (int i = 0; i < 3; ++i) {
    std::vector<int32_t> prompt = {static_cast<int32_t>(i + 1), 5, static_cast<int32_t>(9 * i % V)};
    solo.push_back(model.new_state());
    model.prefill(prompt, solo.back(), nullptr, false);
  }
  batch = solo;
  std::vector<int32_t> next = {4, 50, 96};
  std::vector<float> batch_logits(static_cast<size_t>(3 * V)), solo_logits(static_cast<size_t>(V));
  std::vector<SequenceState*> ptrs = {&batch[0], &batch[1], &batch[2]};
  model.decode(next, ptrs, batch_logits.data());
  for (int i = 0; i < 3; ++i) {
    SequenceState* one[1] = {&solo[static_cast<size_t>(i)]};
    model.decode(std::span(&next[static_cast<size_t>(i)], 1), one, solo_logits.data());
    EXPECT_LE(test::rel_error(batch_logits.data() + i * V, solo_logits.data(), static_cast<size_t>(V)), 1e-6);
  }
}

TEST(ModelErrors, TokenOutsideVocabularyAndEmptyPrompt) {
  Mamba2Config c = small_config();
  Mamba2Model model(c, random_mamba2_weights(c, DType::F32, 1));
  SequenceState s = model.new_state();
  std::vector<int32_t> bad = {1, 97};
  try {
    model.prefill(bad, s, nullptr, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 97 at position 1 is outside the vocabulary (size 97)"),
              std::string::npos)
        << e.what();
  }
  std::vector<int32_t> empty;
  EXPECT_THROW(model.prefill(empty, s, nullptr, false), Error);
}

// A state is used only by a model of its own layout (SequenceState::fits). The CPU engine used to check only the layer
// count and the SSM layer size, so a state with another conv window (same SSM) got through and the conv read past it.
TEST(ModelState, AnotherConvWindowIsRefused) {
  const Mamba2Config c = small_config();
  Mamba2Config other = c;
  other.conv_kernel = 3;
  other.validate("test");
  EXPECT_TRUE(SequenceState(c).fits(c));
  EXPECT_FALSE(SequenceState(other).fits(c));
  EXPECT_FALSE(SequenceState().fits(c));
  SequenceState cut(c);
  cut.conv.pop_back();
  EXPECT_FALSE(cut.fits(c));

  Mamba2Model model(c, random_mamba2_weights(c, DType::F32, 5));
  SequenceState state(other);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  const std::vector<int32_t> ids = {1, 2, 3};
  try {
    model.prefill(ids, state, logits.data(), false);
    FAIL() << "a state with another conv window was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("made for another model"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pcm
