// llama.cpp GGUF files of the fixture models (converted with llama.cpp's own converter) give the
// fixtures' reference logits; Q8_0 (from a GGUF or quantised at load) stays within 2% of exact; bad
// GGUF headers are clear errors.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "engine/generator.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test_util.h"
#include "util/error.h"

namespace pcm {
namespace {

using test::rel_error;
using test::testdata;

std::vector<int32_t> ids_of(const TensorInfo& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

std::vector<float> prefill_logits(Mamba2Model& model, const std::vector<int32_t>& ids) {
  std::vector<float> logits(ids.size() * static_cast<size_t>(model.vocab_size()));
  SequenceState state = model.new_state();
  model.prefill(ids, state, logits.data(), true);
  return logits;
}

struct GgufCase {
  std::string gguf, fixture;
};

class GgufFixture : public ::testing::TestWithParam<GgufCase> {};

TEST_P(GgufFixture, LogitsAndGreedyIdsMatchReference) {
  const auto& p = GetParam();
  Mamba2Model model = Mamba2Model::load(testdata("gguf/" + p.gguf));
  model.set_exact(true);
  SafetensorsFile ref(testdata("models/" + p.fixture + "/reference.safetensors"));
  auto ids = ids_of(ref.get("input_ids"));
  EXPECT_LE(rel_error(prefill_logits(model, ids), tensor_to_f32(ref.get("logits"))), 1e-4);
  auto expect = ids_of(ref.get("greedy_ids"));
  GenerateOptions g;
  g.max_new_tokens = static_cast<int64_t>(expect.size());
  g.sampling.temperature = 0.0f;
  SequenceState state = model.new_state();
  EXPECT_EQ(generate(model, state, ids, g).tokens, expect);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GgufFixture,
                         ::testing::Values(GgufCase{"tiny-g2-f32.gguf", "tiny-g2"},
                                           GgufCase{"small-g4-f32.gguf", "small-g4"},
                                           GgufCase{"tiny-mistral-bf16.gguf", "tiny-mistral-bf16"}),
                         [](const auto& info) {
                           std::string n = info.param.fixture;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

// Audit item 19: where a .gguf is not read (--device cuda, pcm train), the error said "no config.json in the model
// directory" of a file.
TEST(GgufModel, DirectoryConfigLoaderNamesTheGgufFile) {
  const std::string path = testdata("gguf/tiny-g2-f32.gguf");
  const std::string message = test::error_of([&] { load_mamba2_config(path); });
  EXPECT_NE(message.find(path + ": a .gguf file; this needs a model directory"), std::string::npos) << message;
}

TEST(GgufModel, ConfigFromMetadata) {
  GgufFile f(testdata("gguf/small-g4-f32.gguf"));
  Mamba2Model model = Mamba2Model::load(testdata("gguf/small-g4-f32.gguf"));
  Mamba2Model hf = Mamba2Model::load(testdata("models/small-g4"));
  const auto &a = model.config(), &b = hf.config();
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.n_groups, b.n_groups);
  EXPECT_EQ(a.state_size, b.state_size);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.tie_embeddings, b.tie_embeddings);
}

// Q8_0 weights: within 2% (relative L2) of the exact logits, whether quantised by llama.cpp's
// converter or by us at load — and the two quantisations agree.
TEST(Q8_0, LogitsWithinTwoPercentOfExact) {
  SafetensorsFile ref(testdata("models/small-g4/reference.safetensors"));
  auto ids = ids_of(ref.get("input_ids"));
  auto exact = tensor_to_f32(ref.get("logits"));

  Mamba2Model ours = Mamba2Model::load(testdata("models/small-g4"));
  ours.quantize_q8_0();
  EXPECT_EQ(ours.weights().matrix_dtype(), DType::Q8_0);
  auto a = prefill_logits(ours, ids);
  EXPECT_LE(rel_error(a, exact), 0.02);

  Mamba2Model theirs = Mamba2Model::load(testdata("gguf/small-g4-q8_0.gguf"));
  auto b = prefill_logits(theirs, ids);
  EXPECT_LE(rel_error(b, exact), 0.02);
  EXPECT_LE(rel_error(a, b), 1e-5);
}

// Decode computes the prefill's function: exactly (fp32 activations, --exact) to rounding, and with the fast
// numerics (int16 activations per 32-block in the Q8_0 decode kernel) within what that rounding adds.
TEST(Q8_0, DecodeMatchesPrefill) {
  Mamba2Model model = Mamba2Model::load(testdata("models/small-g4"));
  model.quantize_q8_0();
  SafetensorsFile ref(testdata("models/small-g4/reference.safetensors"));
  auto ids = ids_of(ref.get("input_ids"));
  const size_t V = static_cast<size_t>(model.vocab_size());
  for (bool exact : {true, false}) {
    model.set_exact(exact);
    auto whole = prefill_logits(model, ids);
    SequenceState s = model.new_state();
    std::vector<float> step(V);
    for (size_t t = 0; t < ids.size(); ++t) {
      SequenceState* ptr = &s;
      model.decode(std::span(&ids[t], 1), std::span(&ptr, 1), step.data());
      EXPECT_LE(rel_error(step.data(), whole.data() + t * V, V), exact ? 1e-4 : 1e-3)
          << (exact ? "exact" : "fast") << " position " << t;
    }
  }
}

// --- malformed files -------------------------------------------------------------------------

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void expect_error(const std::string& bytes, const std::string& needle) {
  test::TempDir dir;
  std::string path = dir.file("bad.gguf");
  std::ofstream(path, std::ios::binary) << bytes;
  try {
    GgufFile f(path);
    Mamba2Model::load(path);
    FAIL() << "no error for " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.gguf"), std::string::npos) << e.what();
  }
}

TEST(GgufErrors, BadMagicVersionAndTruncation) {
  std::string good = read_bytes(testdata("gguf/tiny-g2-f32.gguf"));
  std::string bad = good;
  bad[0] = 'X';
  expect_error(bad, "not a GGUF file");
  bad = good;
  bad[4] = 9;
  expect_error(bad, "version 9");
  expect_error(good.substr(0, 100), "truncated GGUF header");
  expect_error(good.substr(0, good.size() - 1000), "truncated file");
  expect_error(good.substr(0, 6), "truncated GGUF header");
}

TEST(GgufErrors, UnsupportedTensorTypeNamesTensor) {
  std::string good = read_bytes(testdata("gguf/tiny-g2-f32.gguf"));
  // Find token_embd.weight's info: name, n_dims (2), ne[2], then the ggml type (F32 = 0): make it Q4_0.
  const std::string name = "token_embd.weight";
  size_t at = good.find(name);
  ASSERT_NE(at, std::string::npos);
  size_t type_at = at + name.size() + 4 + 2 * 8;
  std::string bad = good;
  bad[type_at] = 2;
  expect_error(bad, "'token_embd.weight' has ggml type 2 (Q4_0)");
}

TEST(GgufErrors, WrongArchitectureAndMissingTensor) {
  std::string good = read_bytes(testdata("gguf/tiny-g2-f32.gguf"));
  std::string bad = good;
  size_t at = bad.find("mamba2", bad.find("general.architecture"));
  bad[at + 5] = '1';  // "mamba1" (length unchanged)
  expect_error(bad, "general.architecture is 'mamba1'");
  bad = good;
  at = bad.find("output_norm.weight");
  bad[at] = 'X';
  expect_error(bad, "'output_norm.weight' is missing");
}

}  // namespace
}  // namespace pcm
