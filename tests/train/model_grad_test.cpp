// The whole model's loss and every gradient against PyTorch autograd (testdata/models/*/reference),
// the training forward against the inference model, packing, and the recompute option.
#include <gtest/gtest.h>

#include <cmath>

#include "io/safetensors.h"
#include "model/model.h"
#include "model/state.h"
#include "train/model_grad.h"
#include "train/train_test_util.h"
#include "util/error.h"

namespace pcm {
namespace {

class FixtureGrads : public ::testing::TestWithParam<const char*> {};

TEST_P(FixtureGrads, LossAndEveryGradientMatchPyTorch) {
  const std::string dir = test::testdata(std::string("models/") + GetParam());
  const Mamba2Config config = load_mamba2_config(dir);
  const ParamSet params = ParamSet::from_model_dir(dir);
  SafetensorsFile ref(dir + "/reference.safetensors");
  const PackedBatch batch = test::fixture_batch(ref);
  ParamSet grads = params.zeros_like();
  GradOptions opt;
  opt.vocab_chunk = 100;  // several vocabulary blocks, one partial
  const LossResult r = loss_and_grad(config, params, batch, &grads, opt);
  const float ref_loss = tensor_to_f32(ref.get("loss"))[0];
  const double loss = r.loss_sum / static_cast<double>(r.tokens);
  EXPECT_NEAR(loss, ref_loss, 1e-5 * std::abs(ref_loss));
  int checked = 0;
  for (const ParamTensor& g : grads.tensors()) {
    std::vector<float> mine = g.data;
    for (float& v : mine) v /= static_cast<float>(r.tokens);  // the reference is d(mean loss)
    const std::vector<float> want = tensor_to_f32(ref.get("grad." + g.name));
    EXPECT_LT(test::rel_error(mine, want), 1e-4) << g.name;
    ++checked;
  }
  // Every reference gradient corresponds to a parameter.
  int refs = 0;
  for (const auto& [name, info] : ref.tensors()) refs += name.rfind("grad.", 0) == 0;
  EXPECT_EQ(checked, refs);
}

TEST_P(FixtureGrads, TrainingForwardEqualsInferenceModel) {
  const std::string dir = test::testdata(std::string("models/") + GetParam());
  const Mamba2Config config = load_mamba2_config(dir);
  SafetensorsFile ref(dir + "/reference.safetensors");
  const PackedBatch batch = test::fixture_batch(ref);
  const int64_t T = batch.seq_len, V = config.vocab_size;
  Mamba2Model model = Mamba2Model::load(dir);
  model.set_exact(true);
  SequenceState state(config);
  std::vector<float> logits(static_cast<size_t>(T * V));
  model.prefill(batch.tokens, state, logits.data(), true);
  double loss_sum = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    if (batch.targets[t] < 0) continue;
    const float* l = logits.data() + t * V;
    double m = l[0], z = 0.0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(l[v]));
    for (int64_t v = 0; v < V; ++v) z += std::exp(l[v] - m);
    loss_sum += m + std::log(z) - l[batch.targets[t]];
  }
  const LossResult r = loss_and_grad(config, ParamSet::from_model_dir(dir), batch, nullptr);
  EXPECT_NEAR(r.loss_sum, loss_sum, 1e-6 * loss_sum);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureGrads, ::testing::Values("tiny-g2", "tiny-tied", "small-g4"));

// Two documents packed in one row (with a doc_start between them) give the loss and gradients of the
// two documents run alone, summed.
TEST(ModelGrad, PackedRowEqualsDocumentsAlone) {
  const std::string dir = test::testdata("models/tiny-tied");  // clamp, biases, tied head
  const Mamba2Config config = load_mamba2_config(dir);
  const ParamSet params = ParamSet::from_model_dir(dir);
  SafetensorsFile ref(dir + "/reference.safetensors");
  const PackedBatch whole = test::fixture_batch(ref);
  const int64_t split = 21;  // not a multiple of chunk_size 16
  auto slice = [&](int64_t b, int64_t e) {
    PackedBatch p;
    p.rows = 1;
    p.seq_len = e - b;
    p.tokens.assign(whole.tokens.begin() + b, whole.tokens.begin() + e);
    p.targets.assign(whole.targets.begin() + b, whole.targets.begin() + e);
    p.targets.back() = -1;  // the last position of a document predicts nothing
    p.doc_start.assign(static_cast<size_t>(e - b), 0);
    p.doc_start[0] = 1;
    return p;
  };
  const PackedBatch a = slice(0, split), b = slice(split, whole.seq_len);
  PackedBatch one;  // a one-token document with a target of its own
  one.rows = 1;
  one.seq_len = 1;
  one.tokens = {whole.tokens[5]};
  one.targets = {whole.tokens[6]};
  one.doc_start = {1};
  PackedBatch packed = a;
  for (const PackedBatch* doc : {&b, static_cast<const PackedBatch*>(&one)}) {
    packed.seq_len += doc->seq_len;
    packed.tokens.insert(packed.tokens.end(), doc->tokens.begin(), doc->tokens.end());
    packed.targets.insert(packed.targets.end(), doc->targets.begin(), doc->targets.end());
    packed.doc_start.insert(packed.doc_start.end(), doc->doc_start.begin(), doc->doc_start.end());
  }

  ParamSet g_sep = params.zeros_like(), g_packed = params.zeros_like();
  const LossResult ra = loss_and_grad(config, params, a, &g_sep);
  const LossResult rb = loss_and_grad(config, params, b, &g_sep);
  const LossResult r1 = loss_and_grad(config, params, one, &g_sep);
  const LossResult rp = loss_and_grad(config, params, packed, &g_packed);
  EXPECT_EQ(rp.tokens, ra.tokens + rb.tokens + r1.tokens);
  EXPECT_NEAR(rp.loss_sum, ra.loss_sum + rb.loss_sum + r1.loss_sum, 1e-5 * rp.loss_sum);
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_LT(test::rel_error(g_packed[i].data, g_sep[i].data), 1e-5) << params[i].name;

  // Two rows of a batch are independent too (the row boundary is a document start).
  PackedBatch rows = packed;
  rows.rows = 2;
  rows.seq_len = packed.seq_len;
  rows.tokens.insert(rows.tokens.end(), packed.tokens.begin(), packed.tokens.end());
  rows.targets.insert(rows.targets.end(), packed.targets.begin(), packed.targets.end());
  rows.doc_start.insert(rows.doc_start.end(), packed.doc_start.begin(), packed.doc_start.end());
  rows.doc_start[static_cast<size_t>(packed.seq_len)] = 0;  // the row start alone must reset the state
  ParamSet g_rows = params.zeros_like();
  const LossResult rr = loss_and_grad(config, params, rows, &g_rows);
  EXPECT_NEAR(rr.loss_sum, 2 * rp.loss_sum, 1e-5 * rr.loss_sum);
  for (size_t i = 0; i < params.size(); ++i) {
    std::vector<float> twice = g_packed[i].data;
    for (float& v : twice) v *= 2;
    EXPECT_LT(test::rel_error(g_rows[i].data, twice), 1e-5) << params[i].name;
  }
}

TEST(ModelGrad, RecomputeGivesIdenticalGradients) {
  const std::string dir = test::testdata("models/small-g4");
  const Mamba2Config config = load_mamba2_config(dir);
  const ParamSet params = ParamSet::from_model_dir(dir);
  SafetensorsFile ref(dir + "/reference.safetensors");
  const PackedBatch batch = test::fixture_batch(ref);
  auto ws = make_grad_workspace();
  ParamSet g1 = params.zeros_like(), g2 = params.zeros_like();
  GradOptions stored{false, 128, ws.get()}, recomputed{true, 128, ws.get()};
  const LossResult r1 = loss_and_grad(config, params, batch, &g1, stored);
  const LossResult r2 = loss_and_grad(config, params, batch, &g2, recomputed);
  EXPECT_EQ(r1.loss_sum, r2.loss_sum);
  for (size_t i = 0; i < params.size(); ++i) EXPECT_EQ(g1[i].data, g2[i].data) << params[i].name;
  // Gradients accumulate (+=) across calls.
  loss_and_grad(config, params, batch, &g2, recomputed);
  for (size_t i = 0; i < params.size(); ++i) {
    std::vector<float> twice = g1[i].data;
    for (float& v : twice) v *= 2;
    EXPECT_LT(test::rel_error(g2[i].data, twice), 1e-6) << params[i].name;
  }
}

TEST(ModelGrad, BadBatchesAreNamedErrors) {
  const std::string dir = test::testdata("models/tiny-g2");
  const Mamba2Config config = load_mamba2_config(dir);
  const ParamSet params = ParamSet::from_model_dir(dir);
  PackedBatch b;
  b.rows = 1;
  b.seq_len = 3;
  b.tokens = {1, 2, 3};
  b.targets = {2, 3};
  b.doc_start = {1, 0, 0};
  EXPECT_THROW(loss_and_grad(config, params, b, nullptr), Error);
  b.targets = {2, 3, 999};
  EXPECT_THROW(loss_and_grad(config, params, b, nullptr), Error);
  b.targets = {2, 3, -1};
  b.tokens[1] = -4;
  EXPECT_THROW(loss_and_grad(config, params, b, nullptr), Error);
}

}  // namespace
}  // namespace pcm
