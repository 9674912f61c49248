// The whole CUDA model against the transformers references of every fixture (fp32 weights: logits,
// states and greedy ids; bf16 weights: logits within bf16 tolerance), against the CPU engine on a
// Codestral-shaped 2-layer model, and its own invariants: packed prefill == one prompt at a time,
// prefill -> decode -> prefill continues exactly, state copies round-trip, CUDA graphs == no graphs.
#include <gtest/gtest.h>

#ifdef PCM_HAVE_CUDA
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "cuda_test_util.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/model_cuda.h"

namespace pcm {
namespace {

using test::rel_error;
using test::testdata;

std::vector<int32_t> ids_of(const TensorInfo& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

CudaModelOptions fp32_options() {
  CudaModelOptions o;
  o.fp32_weights = true;
  o.max_slots = 4;
  o.max_batch_tokens = 256;
  o.max_decode_batch = 8;
  return o;
}

class CudaFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaFixture, Fp32WeightsMatchReference) {
  PCM_REQUIRE_GPU();
  const std::string dir = testdata("models/" + GetParam());
  auto model = CudaMamba2Model::load(dir, fp32_options());
  SafetensorsFile ref(dir + "/reference.safetensors");
  auto ids = ids_of(ref.get("input_ids"));
  auto all_logits = tensor_to_f32(ref.get("logits"));
  const int64_t V = model->config().vocab_size, T = static_cast<int64_t>(ids.size());
  // Prefill all but the last token, then decode it: covers both paths and their hand-over.
  const int32_t slot = model->allocate_slot();
  std::vector<float> logits(static_cast<size_t>(V));
  CudaPrefillRequest req{slot, std::span(ids).first(static_cast<size_t>(T - 1))};
  model->prefill(std::span(&req, 1), logits.data());
  EXPECT_LE(rel_error(logits.data(), all_logits.data() + (T - 2) * V, static_cast<size_t>(V)), 1e-4);
  model->decode_logits(std::span(&slot, 1), std::span(ids).last(1), logits.data());
  EXPECT_LE(rel_error(logits.data(), all_logits.data() + (T - 1) * V, static_cast<size_t>(V)), 1e-4);
  SequenceState state;
  model->store_state(slot, state);
  EXPECT_EQ(state.tokens_seen, T);
  for (int64_t l = 0; l < model->config().num_layers; ++l) {
    auto ssm = tensor_to_f32(ref.get("ssm_state." + std::to_string(l)));
    auto conv = tensor_to_f32(ref.get("conv_state." + std::to_string(l)));
    EXPECT_LE(rel_error(state.ssm_layer(l), ssm.data(), ssm.size()), 1e-4) << "layer " << l;
    EXPECT_LE(rel_error(state.conv_layer(l), conv.data(), conv.size()), 1e-4) << "layer " << l;
  }
  // Greedy continuation with device sampling (through the CUDA graph).
  auto greedy = ids_of(ref.get("greedy_ids"));
  const int32_t slot2 = model->allocate_slot();
  CudaPrefillRequest req2{slot2, ids};
  SamplingParams g;
  g.temperature = 0.0f;
  int32_t next = -1;
  model->prefill_sample(std::span(&req2, 1), std::span(&g, 1), &next);
  std::vector<int32_t> out = {next};
  while (out.size() < greedy.size()) {
    model->decode(std::span(&slot2, 1), std::span(&next, 1), std::span(&g, 1), &next);
    out.push_back(next);
  }
  EXPECT_EQ(out, greedy);
}

TEST_P(CudaFixture, Bf16WeightsWithinTolerance) {
  PCM_REQUIRE_GPU();
  const std::string dir = testdata("models/" + GetParam());
  CudaModelOptions o = fp32_options();
  o.fp32_weights = false;
  for (bool bf16_state : {false, true}) {
    o.bf16_state = bf16_state;
    auto model = CudaMamba2Model::load(dir, o);
    SafetensorsFile ref(dir + "/reference.safetensors");
    auto ids = ids_of(ref.get("input_ids"));
    auto all_logits = tensor_to_f32(ref.get("logits"));
    const int64_t V = model->config().vocab_size, T = static_cast<int64_t>(ids.size());
    const int32_t slot = model->allocate_slot();
    std::vector<float> logits(static_cast<size_t>(V));
    CudaPrefillRequest req{slot, ids};
    model->prefill(std::span(&req, 1), logits.data());
    EXPECT_LE(rel_error(logits.data(), all_logits.data() + (T - 1) * V, static_cast<size_t>(V)), 2e-2)
        << (bf16_state ? "bf16 state" : "fp32 state");
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaFixture,
                         ::testing::Values("tiny-g2", "small-g4", "tiny-tied", "tiny-mistral-bf16"));

// Packed prefill of three prompts (one longer than max_batch_tokens, so it is split) equals feeding them
// one at a time; then a batched decode step with graphs equals one without; then state copies round-trip.
TEST(CudaModel, PackedPrefillDecodeGraphsAndStateCopies) {
  PCM_REQUIRE_GPU();
  const std::string dir = testdata("models/small-g4");
  CudaModelOptions o = fp32_options();
  o.max_batch_tokens = 128;
  auto packed = CudaMamba2Model::load(dir, o);
  o.cuda_graphs = false;
  auto single = CudaMamba2Model::load(dir, o);
  const int64_t V = packed->config().vocab_size;
  std::vector<std::vector<int32_t>> prompts = {{}, {}, {}};
  for (int i = 0; i < 300; ++i) prompts[0].push_back((i * 37 + 5) % static_cast<int32_t>(V));
  for (int i = 0; i < 3; ++i) prompts[1].push_back((i * 11 + 2) % static_cast<int32_t>(V));
  for (int i = 0; i < 70; ++i) prompts[2].push_back((i * 53 + 9) % static_cast<int32_t>(V));
  std::vector<CudaPrefillRequest> reqs;
  std::vector<int32_t> slots_p, slots_s;
  for (auto& p : prompts) {
    slots_p.push_back(packed->allocate_slot());
    slots_s.push_back(single->allocate_slot());
    reqs.push_back({slots_p.back(), p});
  }
  std::vector<float> lp(3 * V), ls(3 * V);
  packed->prefill(reqs, lp.data());
  for (size_t i = 0; i < 3; ++i) {
    CudaPrefillRequest r{slots_s[i], prompts[i]};
    single->prefill(std::span(&r, 1), ls.data() + i * V);
  }
  EXPECT_LE(rel_error(lp, ls), 1e-5);
  // Decode with sampling through graphs (packed model) and without (single model): same ids.
  std::vector<SamplingParams> params(3);
  params[0].temperature = 0.0f;
  params[1].temperature = 0.8f, params[1].top_k = 20, params[1].seed = 7;
  params[2].temperature = 1.0f, params[2].top_p = 0.9f, params[2].min_p = 0.05f, params[2].seed = 9;
  std::vector<int32_t> tok = {1, 2, 3}, ip(3), is(3);
  for (int step = 0; step < 4; ++step) {
    packed->decode(slots_p, tok, params, ip.data());
    single->decode(slots_s, tok, params, is.data());
    EXPECT_EQ(ip, is) << "step " << step;
    tok = ip;
  }
  // Round trip through the host: copy a slot's state into a fresh slot, continue both the same way (slot 0 after
  // 304 tokens, slot 1 after 7: the conv rings at two positions, rotated into time order and back).
  SequenceState st;
  std::vector<int32_t> toks = {5, 5};
  std::vector<float> l2(2 * V);
  int32_t copy = -1;
  for (int32_t from : {slots_p[0], slots_p[1]}) {
    packed->store_state(from, st);
    if (copy < 0) copy = packed->allocate_slot();
    packed->load_state(copy, st);
    std::vector<int32_t> two = {from, copy};
    packed->decode_logits(two, toks, l2.data());
    EXPECT_EQ(std::vector<float>(l2.begin(), l2.begin() + V), std::vector<float>(l2.begin() + V, l2.end()))
        << "from slot " << from << " after " << st.tokens_seen << " tokens";
  }
  // Bad input is an error, not a crash.
  EXPECT_THROW(packed->decode_logits(std::vector<int32_t>{copy, copy}, toks, l2.data()), Error);
  const int32_t bad_tok = static_cast<int32_t>(V);
  EXPECT_THROW(packed->decode_logits(std::span(&copy, 1), std::span(&bad_tok, 1), l2.data()), Error);
  EXPECT_THROW(packed->free_slot(99), Error);
}

// bf16 weights and at most 4 rows: the fused decode launches (decode_fused.cu, programmatic dependent
// launch). Captured in a graph (3 rows padded to 4) and launched directly (3 rows) they give the same ids;
// their logits stay within bf16 tolerance of the fp32-weight model's.
TEST(CudaModel, FusedDecodeGraphsMatchDirectAndFp32) {
  PCM_REQUIRE_GPU();
  const std::string dir = testdata("models/small-g4");
  CudaModelOptions o = fp32_options();
  o.fp32_weights = false;
  auto graphs = CudaMamba2Model::load(dir, o);
  o.cuda_graphs = false;
  auto direct = CudaMamba2Model::load(dir, o);
  o.fp32_weights = true;
  auto exact = CudaMamba2Model::load(dir, o);
  const int64_t V = graphs->config().vocab_size;
  std::vector<int32_t> sg, sd, se;
  std::vector<CudaPrefillRequest> rg, rd, re;
  std::vector<std::vector<int32_t>> prompts(3);
  for (int p = 0; p < 3; ++p) {
    for (int i = 0; i < 20 + 7 * p; ++i) prompts[p].push_back((i * 31 + 7 * p + 1) % static_cast<int32_t>(V));
    sg.push_back(graphs->allocate_slot());
    sd.push_back(direct->allocate_slot());
    se.push_back(exact->allocate_slot());
    rg.push_back({sg.back(), prompts[p]});
    rd.push_back({sd.back(), prompts[p]});
    re.push_back({se.back(), prompts[p]});
  }
  graphs->prefill(rg, nullptr);
  direct->prefill(rd, nullptr);
  exact->prefill(re, nullptr);
  std::vector<SamplingParams> params(3);
  params[1].temperature = 0.8f, params[1].top_k = 20, params[1].seed = 7;
  params[2].temperature = 0.0f;
  std::vector<int32_t> tok = {1, 2, 3}, ig(3), id(3);
  std::vector<float> lg(3 * V), ld(3 * V), le(3 * V);
  for (int step = 0; step < 5; ++step) {
    graphs->decode(sg, tok, params, ig.data());
    direct->decode(sd, tok, params, id.data());
    exact->decode_logits(se, tok, le.data());  // the same tokens through the unfused fp32 path
    EXPECT_EQ(ig, id) << "step " << step;
    tok = ig;
  }
  graphs->decode_logits(sg, tok, lg.data());
  direct->decode_logits(sd, tok, ld.data());
  exact->decode_logits(se, tok, le.data());
  ASSERT_TRUE(test::all_finite(ld));
  EXPECT_EQ(lg, ld);
  EXPECT_LE(rel_error(ld, le), 2e-2);
}

// bf16 weights and more rows than the fused kernels take: in_proj's z columns as a GEMM of their own on the side
// stream (decode_split_in_proj). Graphs and direct launches give the same ids; the logits stay within fp32
// rounding of the one-GEMM path (another cuBLASLt algorithm may sum in another order, and a bf16 rounding of
// the normed rows may flip) and within bf16 tolerance of the fp32-weight model's.
TEST(CudaModel, SplitInProjDecodeMatchesOneGemm) {
  PCM_REQUIRE_GPU();
  if (std::getenv("PCM_DECODE_SPLIT")) GTEST_SKIP() << "PCM_DECODE_SPLIT overrides the options this test sets";
  const std::string dir = testdata("models/small-g4");
  CudaModelOptions o = fp32_options();
  o.fp32_weights = false;
  o.max_slots = 8;
  std::vector<std::unique_ptr<CudaMamba2Model>> models;  // split with graphs, split direct, one GEMM
  for (bool split : {true, true, false}) {
    o.decode_split_in_proj = split;
    o.cuda_graphs = models.size() != 1;
    models.push_back(CudaMamba2Model::load(dir, o));
  }
  o.fp32_weights = true;
  o.decode_split_in_proj = false;
  auto exact = CudaMamba2Model::load(dir, o);
  const int64_t V = exact->config().vocab_size, rows = 6;  // bucket 8 with graphs: two padding rows
  std::vector<std::vector<int32_t>> slots(models.size() + 1);
  std::vector<std::vector<int32_t>> prompts(rows);
  for (int64_t p = 0; p < rows; ++p)
    for (int i = 0; i < 9 + 5 * p; ++i) prompts[p].push_back(static_cast<int32_t>((i * 29 + 11 * p + 3) % V));
  for (size_t m = 0; m <= models.size(); ++m) {
    CudaMamba2Model& model = m < models.size() ? *models[m] : *exact;
    std::vector<CudaPrefillRequest> reqs;
    for (int64_t p = 0; p < rows; ++p) {
      slots[m].push_back(model.allocate_slot());
      reqs.push_back({slots[m].back(), prompts[p]});
    }
    model.prefill(reqs, nullptr);
  }
  std::vector<SamplingParams> params(rows);
  params[1].temperature = 0.8f, params[1].top_k = 20, params[1].seed = 7;
  std::vector<int32_t> tok(rows);
  for (int64_t b = 0; b < rows; ++b) tok[b] = static_cast<int32_t>(b * 3 + 1);
  std::vector<std::vector<int32_t>> ids(2, std::vector<int32_t>(rows));
  std::vector<float> scratch(rows * V);
  for (int step = 0; step < 4; ++step) {
    for (size_t m = 0; m < 2; ++m) models[m]->decode(slots[m], tok, params, ids[m].data());
    EXPECT_EQ(ids[0], ids[1]) << "step " << step;
    models[2]->decode_logits(slots[2], tok, scratch.data());  // the same tokens through the one-GEMM path
    exact->decode_logits(slots[3], tok, scratch.data());
    tok = ids[0];
  }
  std::vector<std::vector<float>> logits(models.size() + 1, std::vector<float>(rows * V));
  for (size_t m = 0; m <= models.size(); ++m)
    (m < models.size() ? *models[m] : *exact).decode_logits(slots[m], tok, logits[m].data());
  ASSERT_TRUE(test::all_finite(logits[0]));
  EXPECT_EQ(logits[0], logits[1]);
  EXPECT_LE(rel_error(logits[0], logits[2]), 1e-3);
  EXPECT_LE(rel_error(logits[0], logits[3]), 2e-2);
}

// How the persistent launch sits in the decode step (CudaModelOptions: cuda_graphs, decode_persistent_graph,
// decode_persistent_head_pdl).
struct PersistentArrangement {
  bool graphs, captured, head_pdl;
  std::string name() const {
    return std::string(graphs ? (captured ? "graphs" : "graphs, the persistent step launched directly") : "direct") +
           (head_pdl ? ", head under PDL" : ", plain head");
  }
};

// One-row decode as one persistent launch (decode_persistent.cu) against the three launches a layer it replaces: the
// same greedy ids and the same logits and states bit for bit. shape: random weights of it, or null for the small-g4
// fixture.
void persistent_decode_case(const Mamba2Config* shape, const PersistentArrangement& how, bool bf16_state,
                            const std::string& what) {
  CudaModelOptions o = fp32_options();
  o.fp32_weights = false;
  o.bf16_state = bf16_state;
  o.cuda_graphs = how.graphs;
  o.decode_persistent_graph = how.captured;
  o.decode_persistent_head_pdl = how.head_pdl;
  std::vector<std::unique_ptr<CudaMamba2Model>> models;  // persistent, three launches a layer
  for (const bool persistent : {true, false}) {
    o.decode_persistent = persistent;
    models.push_back(shape ? CudaMamba2Model::random(*shape, 5, o)
                           : CudaMamba2Model::load(testdata("models/small-g4"), o));
  }
  ASSERT_TRUE(models[0]->options().decode_persistent) << what << ": the kernel does not take this shape";
  const int64_t V = models[0]->config().vocab_size;
  std::vector<int32_t> prompt;
  for (int i = 0; i < 37; ++i) prompt.push_back(static_cast<int32_t>((i * 131 + 17) % V));
  std::vector<int32_t> slot(2), next(2);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  for (size_t m = 0; m < 2; ++m) {
    slot[m] = models[m]->allocate_slot();
    CudaPrefillRequest r{slot[m], prompt};
    models[m]->prefill_sample(std::span(&r, 1), std::span(&greedy, 1), &next[m]);
  }
  for (int step = 0; step < 6; ++step) {
    for (size_t m = 0; m < 2; ++m)
      models[m]->decode(std::span(&slot[m], 1), std::span(&next[m], 1), std::span(&greedy, 1), &next[m]);
    ASSERT_EQ(next[0], next[1]) << what << ", step " << step;
  }
  std::vector<std::vector<float>> logits(2, std::vector<float>(static_cast<size_t>(V)));
  for (size_t m = 0; m < 2; ++m)
    models[m]->decode_logits(std::span(&slot[m], 1), std::span(&next[0], 1), logits[m].data());
  ASSERT_TRUE(test::all_finite(logits[1])) << what;
  EXPECT_EQ(logits[0], logits[1]) << what;
  SequenceState s0, s1;
  models[0]->store_state(slot[0], s0);
  models[1]->store_state(slot[1], s1);
  EXPECT_EQ(s0.ssm, s1.ssm) << what;
  EXPECT_EQ(s0.conv, s1.conv) << what;
}

// With an fp32 and a bf16 state, from the plainest arrangement to the default (the step in the graph, the head under
// PDL after it), each passing case printed: the first failure says which of the kernel itself, the head's programmatic
// edge or the graph node is at fault, and the lines before it which arrangements work.
void expect_persistent_decode_matches(const Mamba2Config* shape) {
  using A = PersistentArrangement;
  for (const A how : {A{false, false, false}, A{false, false, true}, A{true, false, true}, A{true, true, false},
                      A{true, true, true}})
    for (const bool bf16_state : {false, true}) {
      const std::string what = std::string(bf16_state ? "bf16 state, " : "fp32 state, ") + how.name();
      try {  // a CUDA error ends the process's context: say which case raised it, and stop
        persistent_decode_case(shape, how, bf16_state, what);
      } catch (const std::exception& e) {
        FAIL() << what << ": " << e.what();
      }
      if (::testing::Test::HasFatalFailure()) return;
      // "ok" only while nothing has failed (a mismatch of logits or states is not fatal: the cases go on)
      if (!::testing::Test::HasFailure()) std::printf("persistent decode case ok: %s\n", what.c_str());
    }
}

bool persistent_env_set() {
  for (const char* name : {"PCM_DECODE_PERSISTENT", "PCM_DECODE_PERSISTENT_GRAPH", "PCM_DECODE_PERSISTENT_HEAD_PDL"})
    if (std::getenv(name)) return true;
  return false;
}

TEST(CudaModel, PersistentDecodeMatchesThreeLaunchesOnFixture) {
  PCM_REQUIRE_GPU();
  if (persistent_env_set()) GTEST_SKIP() << "PCM_DECODE_PERSISTENT* overrides the options this test sets";
  expect_persistent_decode_matches(nullptr);
}

TEST(CudaModel, PersistentDecodeMatchesThreeLaunchesAtCodestralShape) {
  PCM_REQUIRE_GPU();
  if (persistent_env_set()) GTEST_SKIP() << "PCM_DECODE_PERSISTENT* overrides the options this test sets";
  Mamba2Config c = named_shape("codestral-7b");
  c.num_layers = 3;  // the barriers between layers reuse every workspace
  expect_persistent_decode_matches(&c);
}

// More heads than SMs (256 of P = 8 on 132 or 114): blocks that step several heads in turn.
TEST(CudaModel, PersistentDecodeMatchesThreeLaunchesWithMoreHeadsThanSms) {
  PCM_REQUIRE_GPU();
  if (persistent_env_set()) GTEST_SKIP() << "PCM_DECODE_PERSISTENT* overrides the options this test sets";
  Mamba2Config c = named_shape("codestral-7b");
  c.num_layers = 2, c.hidden_size = 1024, c.num_heads = 256, c.head_dim = 8, c.state_size = 32, c.vocab_size = 4096;
  expect_persistent_decode_matches(&c);
}

// PCM_DECODE_SPLIT / PCM_DECODE_PERSISTENT over their options (no GPU needed): unset keeps the option, 0 / 1 set it,
// anything else names the variable.
TEST(CudaModelInputs, DecodeFlagsFromTheEnvironment) {
  EXPECT_TRUE(decode_flag_from_env("PCM_DECODE_SPLIT", nullptr, true));
  EXPECT_FALSE(decode_flag_from_env("PCM_DECODE_SPLIT", nullptr, false));
  EXPECT_FALSE(decode_flag_from_env("PCM_DECODE_SPLIT", "0", true));
  EXPECT_TRUE(decode_flag_from_env("PCM_DECODE_PERSISTENT", "1", false));
  for (const char* bad : {"", "yes", "2", "1 ", "-1"}) {
    std::string message;
    try {
      decode_flag_from_env("PCM_DECODE_PERSISTENT", bad, true);
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("PCM_DECODE_PERSISTENT must be 0 (off) or 1 (on), not '" + std::string(bad) + "'"),
              std::string::npos)
        << "'" << bad << "'";
  }
}

// Codestral-shaped layers (d 4096, H 128, P 64, N 128, G 8, Q 256), 2 of them: bf16 GPU vs the CPU engine.
TEST(CudaModel, CodestralShapeMatchesCpuEngine) {
  PCM_REQUIRE_GPU();
  Mamba2Config c = named_shape("codestral-7b");
  c.num_layers = 2;
  Mamba2Weights w = random_mamba2_weights(c, DType::BF16, 99);
  CudaModelOptions o;
  o.max_slots = 2;
  o.max_batch_tokens = 512;
  o.max_decode_batch = 2;
  auto gpu = CudaMamba2Model::from_weights(c, w, o);
  Mamba2Model cpu_model(c, std::move(w));
  cpu_model.set_exact(true);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 300; ++i) prompt.push_back((i * 7919 + 13) % 32768);
  const int64_t V = c.vocab_size;
  std::vector<float> lc(V), lg(V);
  SequenceState st = cpu_model.new_state();
  cpu_model.prefill(prompt, st, lc.data(), false);
  const int32_t slot = gpu->allocate_slot();
  CudaPrefillRequest r{slot, prompt};
  gpu->prefill(std::span(&r, 1), lg.data());
  EXPECT_LE(rel_error(lg, lc), 2e-2);
  SequenceState gs;
  gpu->store_state(slot, gs);
  EXPECT_LE(rel_error(gs.ssm, st.ssm), 2e-2);
  const int32_t tok = 42;
  std::vector<SequenceState*> ptrs = {&st};
  cpu_model.decode(std::span(&tok, 1), ptrs, lc.data());
  gpu->decode_logits(std::span(&slot, 1), std::span(&tok, 1), lg.data());
  EXPECT_LE(rel_error(lg, lc), 2e-2);
}

// The CLI: `pcm generate --device cuda` prints the same greedy ids as the CPU engine.
TEST(CudaCli, GenerateMatchesCpu) {
  PCM_REQUIRE_GPU();
  const std::string base = "generate --model " + testdata("models/small-g4") + " --prompt-ids 5,17,3,99,4 -n 12 "
                           "--ignore-eos --temperature 0";
  auto cpu = test::run_pcm(base + " --exact");
  auto gpu = test::run_pcm(base + " --device cuda --fp32-weights");
  ASSERT_EQ(cpu.exit_code, 0) << cpu.all();
  ASSERT_EQ(gpu.exit_code, 0) << gpu.all();
  EXPECT_EQ(gpu.out, cpu.out);
  auto bad = test::run_pcm(base + " --device cuda --state-dtype f8");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.all().find("--state-dtype"), std::string::npos) << bad.all();
}

}  // namespace
}  // namespace pcm
#else
TEST(CudaModel, BuiltWithoutCuda) { GTEST_SKIP() << "built without CUDA"; }
#endif
