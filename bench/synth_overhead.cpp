// Pipeline overhead per item with no model time: every stage of `pcm synth run` against the scripted
// OpenAI-compatible server on loopback (answers are instant, so what is measured is HTTP + JSON +
// parsing + JSONL appends + bookkeeping). Usage: synth_overhead [samples=200] [concurrency=8]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "../tests/synth/scripted_pipeline.h"
#include "io/jsonl.h"
#include "synth/pipeline.h"

using namespace pcm;

int main(int argc, char** argv) {
  int64_t samples = argc > 1 ? std::atoll(argv[1]) : 200;
  int concurrency = argc > 2 ? std::atoi(argv[2]) : 8;
  std::string data = std::string(PCM_TESTDATA) + "/..";
  auto script = std::make_unique<test::ScriptedPipeline>();
  for (const auto& row : read_jsonl(std::string(PCM_TESTDATA) + "/synth/seeds.jsonl")) script->seeds.push_back(row["question"]);
  auto math = read_jsonl(data + "/data/benchmarks/math500.jsonl");
  script->duplicate_problem = math[0]["problem"];
  for (size_t i = 1; i < math.size(); ++i) script->distinct.push_back(math[i]["problem"]);
  script->contaminated_problem = "Suppose that " + read_jsonl(data + "/data/benchmarks/aime24.jsonl")[3]["problem"].get<std::string>();
  test::ScriptedServer server([&](const httplib::Request& q, httplib::Response& r) { script->handle(q, r); });

  char tmpl[] = "/tmp/pcm-synth-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::ofstream(dir + "/synth.toml") << test::scripted_config(server.base_url(), std::string(PCM_TESTDATA) + "/synth/seeds.jsonl",
                                                             data + "/data/benchmarks/aime24.jsonl", concurrency, samples);
  synth::RunContext ctx(synth::load_synth_config(dir + "/synth.toml"), dir + "/out");
  ctx.progress = false;
  auto matcher = synth::default_answer_matcher();
  std::printf("scripted server, %lld concept lists, concurrency %d\n", static_cast<long long>(samples), concurrency);
  std::printf("%-9s %8s %9s %10s %12s\n", "stage", "items", "requests", "wall ms", "us/request");
  double total_ms = 0;
  int64_t total_requests = 0;
  for (const auto& stage : synth::stage_names()) {
    int before = script->requests.load();
    auto t0 = std::chrono::steady_clock::now();
    synth::run_stage(ctx, stage, *matcher);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    int requests = script->requests.load() - before;
    const char* file = stage == "concepts" ? synth::files::kConcepts : stage == "embed" ? synth::files::kEmbeddings
                     : stage == "sample" ? synth::files::kSamples : stage == "generate" ? synth::files::kProblems
                     : stage == "judge" ? synth::files::kJudgements : stage == "filter" ? synth::files::kFiltered
                     : stage == "solve" ? synth::files::kSolutions : synth::files::kTrain;
    size_t items = read_jsonl(ctx.path(file)).size();
    std::printf("%-9s %8zu %9d %10.1f %12.1f\n", stage.c_str(), items, requests, ms, requests ? 1000.0 * ms / requests : 0.0);
    total_ms += ms;
    total_requests += requests;
  }
  std::printf("total: %lld requests in %.1f ms = %.1f us/request wall at concurrency %d (%.0f requests/s)\n",
              static_cast<long long>(total_requests), total_ms, 1000.0 * total_ms / total_requests, concurrency,
              1000.0 * total_requests / total_ms);
  std::string cmd = "rm -rf " + dir;
  return std::system(cmd.c_str()) == 0 ? 0 : 1;
}
