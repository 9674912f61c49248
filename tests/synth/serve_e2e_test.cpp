// The pipeline against a real `pcm serve` with a fixture model (random weights, so its answers are
// nonsense): every stage must complete and account for every item with a reason. Then a user edit
// (hand-written concepts) continues the run through real /v1/embeddings and generation.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "io/jsonl.h"
#include "scripted_pipeline.h"
#include "synth/run_context.h"
#include "serve_process.h"
#include "test_util.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm::synth {
namespace {


int64_t count_of(const nlohmann::json& stats, const char* stage, const char* key) {
  return stats["stages"][stage][key].get<int64_t>();
}

TEST(SynthAgainstPcmServe, CompletesAndAccountsForEveryItem) {
  test::TempDir dir;
  test::ServeProcess serve(dir.file("serve.log"));
  ASSERT_GT(serve.port(), 0) << serve.log();
  std::string url = "http://127.0.0.1:" + std::to_string(serve.port()) + "/v1";
  std::ofstream(dir.file("synth.toml"))
      << "[defaults]\nbase_url = \"" << url << "\"\nmodel = \"tiny-mistral-bf16\"\napi = \"completions\"\n"
      << "max_tokens = 8\nseed = 5\nconcurrency = 4\nmax_retries = 2\nbackoff_initial_s = 0.05\n"
      << "[roles.teacher]\nmax_tokens = 8\n[roles.embedder]\nbatch_size = 8\n"
      << "[concepts]\ninputs = [\"" << test::testdata("synth/seeds.jsonl") << "\"]\nlimit = 4\nparse_retries = 1\n"
      << "[sample]\ncount = 5\n[solve]\nn = 2\nformat_retries = 0\n"
      << "[filter]\nbenchmarks = [\"" << test::testdata("../data/benchmarks/aime24.jsonl") << "\"]\n";
  std::string out = dir.file("out");
  auto r = test::run_pcm("synth run --config " + dir.file("synth.toml") + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.all() << serve.log();
  nlohmann::json stats = read_json_file(out + "/" + files::kStats);
  // A random model never writes a concept list: every seed is dropped with a reason, the rest is empty.
  EXPECT_EQ(count_of(stats, "concepts", "rows"), 4);
  EXPECT_EQ(count_of(stats, "concepts", "dropped"), 4);
  EXPECT_GT(stats["tokens"]["extractor"]["completion_tokens"].get<int64_t>(), 0);
  EXPECT_EQ(read_jsonl(out + "/" + files::kTrain).size(), 0u);
  EXPECT_EQ(read_json_file(out + "/" + files::kDataCard)["rows"], 0);

  // The user writes concepts by hand and continues from embed: real embeddings, real generation.
  {
    std::ofstream f(out + "/" + files::kConcepts, std::ios::app);
    for (int seed = 0; seed < 4; ++seed)
      f << nlohmann::json{{"id", stable_id("manual", std::to_string(seed))}, {"status", "ok"},
                          {"concepts", test::ScriptedPipeline::seed_concepts(seed)}}.dump() << "\n";
  }
  std::filesystem::remove(out + "/" + files::kSamples);
  r = test::run_pcm("synth run --from embed --config " + dir.file("synth.toml") + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.all() << serve.log();
  stats = read_json_file(out + "/" + files::kStats);
  auto embeddings = read_jsonl(out + "/" + files::kEmbeddings);
  EXPECT_EQ(embeddings.size(), 12u);  // the 12 distinct concepts of seeds 0-3
  for (const auto& e : embeddings) {
    double norm = 0;
    for (double x : e["embedding"]) norm += x * x;
    EXPECT_NEAR(norm, 1.0, 1e-3);  // pcm serve returns normalised mean-pooled states
  }
  EXPECT_EQ(count_of(stats, "sample", "rows"), 5);
  EXPECT_EQ(count_of(stats, "generate", "rows"), 5);
  // Nonsense output has no tags: dropped with a reason, nothing reaches the judges.
  EXPECT_EQ(count_of(stats, "generate", "dropped") + count_of(stats, "generate", "ok"), 5);
  EXPECT_GT(stats["tokens"]["generator"]["completion_tokens"].get<int64_t>(), 0);
  EXPECT_TRUE(file_exists(out + "/" + files::kDataCard));
}

}  // namespace
}  // namespace pcm::synth
