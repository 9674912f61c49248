// The engine's commands as a user runs them: inspect, generate, score, bench, and their errors.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <vector>

#include "io/safetensors.h"
#include "test_util.h"
#include "util/memory_stats.h"

namespace pcm {
namespace {

using test::run_pcm;
using test::testdata;

std::string ids_csv(const TensorInfo& t) {
  std::string out;
  const int32_t* p = reinterpret_cast<const int32_t*>(t.data);
  for (int64_t i = 0; i < t.numel(); ++i) out += fmt::format("{}{}", i ? "," : "", p[i]);
  return out;
}

TEST(EngineCli, InspectPrintsArchitectureAndStateSize) {
  auto r = run_pcm("inspect --model " + testdata("models/small-g4"));
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("heads x head_dim 8 x 32"), std::string::npos) << r.all();
  EXPECT_NE(r.out.find("groups           4"), std::string::npos);
  EXPECT_NE(r.out.find("untied"), std::string::npos);
  EXPECT_NE(r.out.find("parameters       401328"), std::string::npos);
  EXPECT_NE(r.out.find("state / sequence 80.00 KiB in fp32"), std::string::npos);
  auto j = run_pcm("inspect --json --model " + testdata("models/tiny-mistral-bf16"));
  ASSERT_EQ(j.exit_code, 0) << j.all();
  EXPECT_NE(j.out.find("\"BF16\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"tie_word_embeddings\": true"), std::string::npos);
  // 2 layers: conv 192 channels x 4 taps, SSM 8 heads x 16 x 16; with a bf16 SSM state the conv windows stay fp32.
  EXPECT_NE(j.out.find("\"state_bytes_per_sequence_f32\": 22528"), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"state_bytes_per_sequence_bf16\": 14336"), std::string::npos) << j.out;
}

TEST(EngineCli, GenerateGreedyPrintsReferenceIds) {
  std::string dir = testdata("models/small-g4");
  SafetensorsFile ref(dir + "/reference.safetensors");
  auto r = run_pcm("generate --model " + dir + " --prompt-ids " + ids_csv(ref.get("input_ids")) +
                   " --max-new-tokens 16 --temperature 0 --ignore-eos");
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), ids_csv(ref.get("greedy_ids")));
}

TEST(EngineCli, GenerateSampledIsReproducibleWithSeed) {
  std::string args = "generate --model " + testdata("models/tiny-g2") +
                     " --prompt-ids 5,17,3 -n 12 --temperature 0.8 --top-k 40 --top-p 0.9 --min-p 0.01 --seed 7 --ignore-eos";
  auto a = run_pcm(args), b = run_pcm(args);
  ASSERT_EQ(a.exit_code, 0) << a.all();
  EXPECT_EQ(a.out.substr(0, a.out.find('\n')), b.out.substr(0, b.out.find('\n')));
}

TEST(EngineCli, ScoreWritesReferenceLogits) {
  std::string dir = testdata("models/tiny-tied");
  SafetensorsFile ref(dir + "/reference.safetensors");
  test::TempDir tmp;
  auto r = run_pcm("score --model " + dir + " --prompt-ids " + ids_csv(ref.get("input_ids")) + " --out " +
                   tmp.file("logits.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.all();
  SafetensorsFile out(tmp.file("logits.safetensors"));
  EXPECT_EQ(out.get("logits").shape, ref.get("logits").shape);
  EXPECT_LE(test::rel_error(tensor_to_f32(out.get("logits")), tensor_to_f32(ref.get("logits"))), 1e-4);
}

TEST(EngineCli, BenchRunsOnARealShape) {
  auto r = run_pcm("bench --shape mamba2-130m --layers 1 --prompt-tokens 64 --decode-tokens 4 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("| prefill T=64 |"), std::string::npos) << r.all();
  EXPECT_NE(r.out.find("| decode B=1 |"), std::string::npos);
  EXPECT_NE(r.out.find("2 threads"), std::string::npos);
}

// A decode run of more than 2 s shows progress on stderr (step, tokens/s, ETA), the last line at the final step;
// the table on stdout is the same as without it.
TEST(EngineCli, LongBenchDecodeShowsProgress) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_pcm("bench --model " + testdata("models/tiny-g2") + " --prompt-tokens 8 --decode-tokens 90000 --threads 1");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("| decode B=1 | 90000 |"), std::string::npos) << r.all();
  if (secs < 3.0) GTEST_SKIP() << "decode took " << secs << " s here: too fast for a progress line";
  EXPECT_NE(r.err.find("decode step "), std::string::npos) << r.all();
  EXPECT_NE(r.err.find("tok/s | ETA "), std::string::npos) << r.all();
  EXPECT_NE(r.err.find("decode step 90000/90000"), std::string::npos) << r.all();
}

// Audit item 14: --layers 0 and --layers -3 ran all 24 layers of the shape without a word.
TEST(EngineCli, LayersOutOfRangeAreRefused) {
  for (const std::string command : {"bench --shape mamba2-130m --prompt-tokens 4 --decode-tokens 1 --reps 1 --threads 1",
                                    "grad-bench --shape mamba2-130m --seq 8 --iters 1 --threads 1"}) {
    for (const std::string layers : {"0", "-3", "1000000000"}) {
      auto r = run_pcm(command + " --layers " + layers);
      EXPECT_EQ(r.exit_code, 1) << command << " --layers " << layers;
      EXPECT_NE(r.err.find("--layers: must be between 1 and 4096, got " + layers), std::string::npos) << r.all();
      EXPECT_EQ(r.out.find("layers"), std::string::npos) << "nothing ran: " << r.out;
    }
  }
}

TEST(EngineCli, BadInputsAreClearErrors) {
  std::string dir = testdata("models/tiny-g2");
  auto r = run_pcm("generate --model " + dir + " --prompt-ids 5,x,3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: --prompt-ids: 'x' is not a token id"), std::string::npos) << r.all();
  r = run_pcm("generate --model " + dir + " --prompt-ids 5,256");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("token id 256 at position 1 is outside the vocabulary (size 256)"), std::string::npos) << r.all();
  r = run_pcm("generate --model " + dir + " --prompt-ids ''");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("empty prompt"), std::string::npos) << r.all();
  r = run_pcm("inspect --model /nonexistent/dir");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/dir: no config.json"), std::string::npos) << r.all();
  r = run_pcm("generate --model " + dir + " --prompt-ids 1 --top-p 0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("top_p must be in (0, 1]"), std::string::npos) << r.all();
}

// Option values out of range and unknown options exit 1 like every other error (CLI11 exited 105-114), with a
// one-line bound; --threads 65536 crashed in libgomp, a huge --max-new-tokens died in vector::reserve.
TEST(EngineCli, OptionValuesOutOfRangeAreOneLineErrors) {
  const std::string gen = "generate --model " + testdata("models/tiny-g2") + " --prompt-ids 1,2 ";
  const std::pair<std::string, std::string> cases[] = {
      {"--threads 65536", "--threads: must be between 0 and 4096, got 65536"},
      {"--threads -1", "--threads: must be between 0 and 4096, got -1"},
      {"--max-new-tokens 99999999999999999999", "--max-new-tokens: must be between 0 and 2147483647"},
      {"--max-new-tokens -1", "--max-new-tokens: must be between 0 and 2147483647, got -1"},
      {"--no-such-flag", "--no-such-flag"}};
  for (const auto& [args, message] : cases) {
    auto r = run_pcm(gen + args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.all();
    EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.all();
  }
  auto r = run_pcm("bench --shape mamba2-130m --reps 0");
  EXPECT_EQ(r.exit_code, 1) << r.all();
  EXPECT_NE(r.err.find("--reps: must be greater than 0, got 0"), std::string::npos) << r.all();
  // Sizes of bench, bench --train and grad-bench: refused with the options named, before any weights are made.
  const std::pair<std::string, std::string> size_cases[] = {
      {"bench --shape mamba2-130m --layers 1 --batch 0", "token counts and batch must be > 0"},
      {"bench --shape mamba2-130m --layers 1 --prompt-tokens -5", "token counts and batch must be > 0"},
      {"bench --shape mamba2-130m --layers 1 --decode-tokens 0", "token counts and batch must be > 0"},
      {"bench --shape mamba2-130m --layers 1 --train --seq-len 0", "--seq-len, --batch and --steps must be > 0"},
      {"bench --shape mamba2-130m --layers 1 --train --steps 0", "--seq-len, --batch and --steps must be > 0"},
      {"grad-bench --shape mamba2-130m --layers 1 --seq 0", "--seq must be > 1, --rows and --iters > 0"},
      {"grad-bench --shape mamba2-130m --layers 1 --iters 0", "--seq must be > 1, --rows and --iters > 0"}};
  for (const auto& [args, message] : size_cases) {
    r = run_pcm(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.all();
    EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.all();
  }
  EXPECT_EQ(run_pcm("generate --help").exit_code, 0);
  // pcm serve's bounds, checked before any model is read.
  const std::string serve = "serve --model " + testdata("models/tiny-g2") + " ";
  const std::pair<std::string, std::string> serve_cases[] = {
      {"--http-threads 1", "--http-threads: must be between 2 and 4096, got 1"},
      {"--port 70000", "--port: must be between 0 and 65535, got 70000"},
      {"--request-deadline -1", "--request-deadline: must be between 0 and 86400, got -1"},
      // each running or queued request holds an HTTP thread: slots + queue past the thread cap are refused
      {"--max-slots 100000", "100000 slots + 64 queued + 16 = 100080 HTTP threads"},
      {"--max-queue 100000", "0 slots + 100000 queued + 16 = 100016 HTTP threads"},
      // slots derived from memory (capped at 1024) are checked too
      {"--max-memory 1 --max-queue 3500", "1024 slots + 3500 queued + 16 = 4540 HTTP threads"}};
  for (const auto& [args, message] : serve_cases) {
    r = run_pcm(serve + args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.all();
    EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.all();
  }
  // Sizes past this machine's memory (with overcommit they were taken, then paged until the machine stalled, or
  // ended in a bare std::bad_alloc): one line naming the option, before anything is allocated.
  const std::string tiny = testdata("models/tiny-g2");
  test::TempDir eval_out;
  std::vector<std::pair<std::string, std::string>> memory_cases = {
      {"bench --shape mamba2-130m --layers 1 --threads 1 --prompt-tokens 100000000000000",
       "--prompt-tokens 100000000000000: 100000000000000 prompt ids of 4.00 B need "},
      {"bench --model " + tiny + " --batch 100000000000", "--batch 100000000000: 100000000000 sequences"},
      // 4096 codestral layers: 4.6e11 parameters, terabytes on any machine
      {"bench --train --shape codestral-7b --layers 4096", "--shape codestral-7b: "},
      {"grad-bench --shape codestral-7b --layers 4096", "parameters (fp32 weights and gradients) of 8.00 B need"},
      {"serve --model " + tiny + " --http-threads 64 --max-slots 100000000000", "--max-slots 100000000000: 100000000000 states of 22.00 KiB"},
      {"serve --model " + tiny + " --max-memory 1000000000", "--max-memory 1000000000 GB: more than this machine's"}};
  // eval's slots are capped at 1024: 1024 codestral states (266 GiB) are refused only where the RAM is smaller; on a
  // larger machine that run is allowed, so the case is not made there
  if (physical_memory_bytes() < (size_t{266} << 30))
    memory_cases.emplace_back("eval --bench gsm8k --limit 1 --random-shape codestral-7b --tokenizer " + tiny +
                                  " --max-slots 1024 --out " + eval_out.file("run"),
                              "--max-slots 1024: 1024 states of 266.00 MiB need 266.00 GiB");
  for (const auto& [args, message] : memory_cases) {
    r = run_pcm(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.all();
    EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.all();
    EXPECT_NE(r.err.find("of memory"), std::string::npos) << args << "\n" << r.all();
  }
}

}  // namespace
}  // namespace pcm
