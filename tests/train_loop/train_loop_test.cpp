// The driver end to end: a tiny random model overfits real GSM8K rows; a stopped run resumed from its
// checkpoint reproduces the uninterrupted run's losses bitwise; non-finite steps are skipped and stop
// the run after max_bad_steps; checkpoints load as models.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <omp.h>

#include "model/model.h"
#include "train/train_checkpoint.h"
#include "train/trainer.h"
#include "train_fixture.h"
#include "util/error.h"

namespace pcm {
namespace {

// `top`: top-level keys; `phases`: [[phases]] tables (TOML wants top-level keys before any table).
// One thread: these shapes are tiny, and on a shared, oversubscribed machine OpenMP barriers between
// two threads cost ~100x the work itself (measured: 65 s vs 0.6 s for the overfit test).
class OneThread : public ::testing::Environment {
 public:
  void SetUp() override { omp_set_num_threads(1); }
};
const auto* const kOneThread = ::testing::AddGlobalTestEnvironment(new OneThread);

TrainConfig config_for(const test::TempDir& dir, const std::string& top, const std::string& phases,
                       int64_t* vocab_out = nullptr) {
  int64_t vocab = test::write_compact_gsm8k(dir.file("gsm8k.jsonl"), 8, 96);
  if (vocab_out) *vocab_out = vocab;
  std::string toml = "output_dir = \"out\"\nseed = 3\n" + top + test::tiny_model_toml(vocab) + phases;
  write_file_atomic(dir.file("c.toml"), toml);
  return load_train_config(dir.file("c.toml"));
}

TEST(TrainLoop, TinyModelOverfitsEightGsm8kRows) {
  test::TempDir dir;
  TrainConfig cfg = config_for(dir, "",
                               "[[phases]]\nname = \"overfit\"\ndatasets = [\"gsm8k.jsonl\"]\nsteps = 60\n"
                               "seq_len = 96\nbatch_tokens = 768\nmicro_batch_rows = 4\nlr = 2e-2\nmin_lr = 1e-3\n"
                               "warmup_steps = 3\ngrad_clip = 1.0\n");
  TrainRunOptions o;
  o.quiet = true;
  TrainRunResult r = run_training(cfg, o);
  ASSERT_TRUE(r.finished);
  ASSERT_EQ(r.steps.size(), 60u);
  double first = r.steps.front().loss, last = r.steps.back().loss;
  EXPECT_GT(first, 4.0);
  EXPECT_LT(last, 0.3) << "first " << first;
  // The phase-end checkpoint is a loadable HF model directory.
  Mamba2Model m = Mamba2Model::load(r.final_checkpoint);
  EXPECT_EQ(m.config().hidden_size, 32);
}

const char* kTop = "save_every = 3\nkeep_checkpoints = 5\n";
const char* kTwoPhases =
    "[[phases]]\nname = \"one\"\ndatasets = [\"gsm8k.jsonl\"]\nsteps = 7\nseq_len = 96\nbatch_tokens = 192\n"
    "lr = 1e-2\nwarmup_steps = 2\nweight_decay = 0.1\n"
    "[[phases]]\nname = \"two\"\ndatasets = [{path = \"gsm8k.jsonl\", weight = 0.5}]\nepochs = 2\nseq_len = 96\n"
    "batch_tokens = 192\nlr = 5e-3\ndecay = \"linear\"\n";

TEST(TrainLoop, ResumeAfterStopMatchesUninterruptedBitwise) {
  test::TempDir a, b;
  TrainConfig ca = config_for(a, kTop, kTwoPhases), cb = config_for(b, kTop, kTwoPhases);
  TrainRunOptions o;
  o.quiet = true;
  TrainRunResult full = run_training(ca, o);
  ASSERT_TRUE(full.finished);
  ASSERT_EQ(full.steps.size(), 7u + 4u);  // phase two: 2 epochs x 4 rows / 2 rows per step
  for (int64_t stop : {5, 7, 9}) {  // mid-phase (after a checkpoint at 3 or 6), at the phase end, in phase 2
    std::filesystem::remove_all(b.file("out"));
    o.stop_after_step = stop;
    o.resume = "";
    TrainRunResult part = run_training(cb, o);
    ASSERT_FALSE(part.finished);
    o.stop_after_step = 0;
    o.resume = b.file("out");
    TrainRunResult rest = run_training(cb, o);
    ASSERT_TRUE(rest.finished);
    ASSERT_FALSE(rest.steps.empty());
    for (const StepRecord& s : rest.steps) {
      const StepRecord& ref = full.steps[s.global_step - 1];
      EXPECT_EQ(std::memcmp(&s.loss, &ref.loss, sizeof(double)), 0) << "stop " << stop << " step " << s.global_step;
      EXPECT_EQ(s.lr, ref.lr);
      EXPECT_EQ(std::memcmp(&s.grad_norm, &ref.grad_norm, sizeof(double)), 0);
    }
  }
  // A different curriculum refuses to resume.
  TrainConfig changed = cb;
  changed.phases[0].lr = 2e-2;
  o.resume = b.file("out");
  EXPECT_THROW(run_training(changed, o), Error);
  // A fresh run into a used output dir refuses instead of overwriting it.
  o.resume = "";
  EXPECT_THROW(run_training(cb, o), Error);
}

TEST(TrainLoop, NonFiniteStepsAreSkippedThenStop) {
  test::TempDir dir;
  // An absurd learning rate blows the weights up: the next losses are not finite.
  TrainConfig cfg = config_for(dir, "max_bad_steps = 3\n",
                               "[[phases]]\ndatasets = [\"gsm8k.jsonl\"]\nsteps = 20\n"
                               "seq_len = 96\nbatch_tokens = 192\nlr = 1e30\ngrad_clip = 0.0\n");
  TrainRunOptions o;
  o.quiet = true;
  try {
    run_training(cfg, o);
    FAIL() << "expected the run to stop";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 steps in a row"), std::string::npos) << e.what();
  }
  std::vector<json> rows = read_jsonl(dir.file("out/metrics.jsonl"));
  int skipped = 0;
  for (const json& r : rows) skipped += r.contains("skipped");
  EXPECT_EQ(skipped, 3);
  EXPECT_FALSE(rows.back()["loss"].is_number() && std::isfinite(rows.back()["loss"].get<double>()));
}

TEST(TrainLoop, MissingInputsFailBeforeAnyTraining) {
  // A misspelled phase-2 dataset was reported only after phase 1 had trained and saved its checkpoints; a set
  // tokenizer without tokenizer.json went unnoticed (input_ids rows) or was blamed on a missing setting.
  test::TempDir dir;
  TrainRunOptions o;
  o.quiet = true;
  const std::string phase1 = "[[phases]]\ndatasets = [\"gsm8k.jsonl\"]\nsteps = 2\nseq_len = 96\nbatch_tokens = 192\n";
  TrainConfig typo = config_for(dir, "", phase1 + "[[phases]]\ndatasets = [\"gsm8k_typo.jsonl\"]\nsteps = 2\nseq_len = 96\n");
  try {
    run_training(typo, o);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("c.toml: phases[1].datasets[0]: " + dir.file("gsm8k_typo.jsonl") + " does not exist"),
              std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("out")));
  TrainConfig no_tokenizer = config_for(dir, "tokenizer = \"/nonexistent\"\n", phase1);
  try {
    run_training(no_tokenizer, o);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("c.toml: tokenizer: /nonexistent is not a directory with a tokenizer.json"),
              std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("out")));
}

// A model whose fp32 weights and AdamW moments pass this machine's memory (1.7e12 parameters: 18 TiB) is refused
// naming the config, before any of it is allocated (it ran 20 s into a bare std::bad_alloc).
TEST(TrainLoop, ModelPastMemoryIsRefusedBeforeAllocating) {
  test::TempDir dir;
  TrainRunOptions o;
  o.quiet = true;
  TrainConfig big = config_for(dir, "", "[[phases]]\ndatasets = [\"gsm8k.jsonl\"]\nsteps = 2\nseq_len = 96\n");
  big.model.hidden_size = 65536, big.model.num_heads = 8192, big.model.head_dim = 16, big.model.num_layers = 64;
  try {
    run_training(big, o);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("c.toml: model: 168"), std::string::npos) << what;
    EXPECT_NE(what.find("parameters (fp32 weights and AdamW's two moments) of 12.00 B need"), std::string::npos) << what;
    EXPECT_NE(what.find("more than this machine's"), std::string::npos) << what;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("out")));
}

}  // namespace
}  // namespace pcm
