// scripts/pcm-mini/recipe.sh without training anything (`--pcm /bin/true`): a missing checkpoint is an
// error that says what is missing (under set -e + pipefail a failed lookup used to end the script with
// exit 1 and no message), --a-from-b links (a) to (b)'s phase-1 checkpoint, and an interrupted save is
// not a finished phase, and evaluations are not reused across options or retraining. The work directory
// has spaces in its name.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

#include "test_util.h"

namespace pcm::test {
namespace {

namespace fs = std::filesystem;

std::string quoted(const std::string& s) { return "'" + s + "'"; }

CommandResult recipe(const std::string& work, const std::string& args) {
  return run_command("bash " + quoted(testdata("../scripts/pcm-mini/recipe.sh")) + " --pcm /bin/true --work " +
                     quoted(work) + " " + args);
}

// Checkpoint directories of variant (b) as the recipe leaves them (names under runs/b).
void make_b_dirs(const std::string& work, std::initializer_list<const char*> names) {
  for (const char* n : names) fs::create_directories(work + "/runs/b/" + n);
}

TEST(PcmMiniRecipe, MissingCheckpointsAreNamedErrors) {
  TempDir tmp;
  const std::string work = tmp.file("work dir");
  auto r = recipe(work, "--stages eval --variants b");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("eval b: no finished checkpoint in " + work + "/runs/b"), std::string::npos) << r.err;
  r = recipe(work, "--ship " + quoted(tmp.file("ship")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no finished run in " + work + "/runs/b to ship"), std::string::npos) << r.err;
  // (b) "trains" (/bin/true) but leaves no phase-1 checkpoint for (a).
  r = recipe(work, "--stages train --variants 'a b' --a-from-b");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--a-from-b: (b) has no phase-1 checkpoint"), std::string::npos) << r.err;
}

// Bad options are named errors before anything runs: an unknown option, an unknown variant, and
// --a-from-b without (b) to take (a) from.
TEST(PcmMiniRecipe, BadOptionsAreNamedErrors) {
  TempDir tmp;
  const std::string work = tmp.file("work dir");
  auto r = recipe(work, "--bogus");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown option '--bogus'"), std::string::npos) << r.err;
  r = recipe(work, "--stages train --variants d");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown variant 'd'"), std::string::npos) << r.err;
  r = recipe(work, "--stages train --variants 'a c' --a-from-b");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--a-from-b: variant a comes from b, so --variants must name b too"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(work + "/runs/c"));  // nothing was trained
  r = recipe(work, "--stages train --variants c --eval-device gpu");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--eval-device: 'gpu' is not cpu or cuda"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(work + "/runs/c"));
}

// (b) with a phase-1 checkpoint but no metrics.jsonl (a run interrupted before its first log line).
TEST(PcmMiniRecipe, AFromBWithoutMetricsIsANamedError) {
  TempDir tmp;
  const std::string work = tmp.file("work dir");
  make_b_dirs(work, {"phase1-gsm8k", "phase2-composed"});
  auto r = recipe(work, "--stages train --variants 'a b' --a-from-b");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--a-from-b: (b) has no metrics.jsonl in"), std::string::npos) << r.err;
}

TEST(PcmMiniRecipe, AFromBLinksPhaseOneOfAFinishedB) {
  TempDir tmp;
  const std::string work = tmp.file("work dir");
  make_b_dirs(work, {"phase1-gsm8k", "phase2-composed", "phase2-composed.tmp"});
  std::ofstream(work + "/runs/b/metrics.jsonl") << "{\"phase\": 1, \"step\": 1}\n{\"phase\": 2, \"step\": 2}\n";
  auto r = recipe(work, "--stages train --variants 'a b' --a-from-b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("train b: already finished"), std::string::npos) << r.err;
  EXPECT_EQ(fs::read_symlink(work + "/runs/a/phase1-gsm8k"), "../b/phase1-gsm8k");
  std::ifstream metrics(work + "/runs/a/metrics.jsonl");
  const std::string rows((std::istreambuf_iterator<char>(metrics)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rows, "{\"phase\": 1, \"step\": 1}\n");
}

// A save killed mid-way leaves phase2-composed.tmp: (b) is not finished, so the recipe trains (resumes)
// it instead of taking phase 1 as (b)'s final checkpoint.
TEST(PcmMiniRecipe, InterruptedSaveIsNotAFinishedPhase) {
  TempDir tmp;
  const std::string work = tmp.file("work dir");
  make_b_dirs(work, {"phase1-gsm8k", "phase2-composed.tmp"});
  auto r = recipe(work, "--stages train --variants b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("already finished"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("train b: done"), std::string::npos) << r.err;
}

// Finished evaluations are skipped on a rerun, but not reused for other options (--eval-limit) or once
// the checkpoint is newer than the report (the variant was trained again).
TEST(PcmMiniRecipe, EvalResultsOfOtherOptionsOrAnOlderModelAreNotReused) {
  TempDir tmp;
  const std::string work = tmp.file("work dir"), ck = work + "/runs/b/phase2-composed";
  make_b_dirs(work, {"phase1-gsm8k", "phase2-composed"});
  std::ofstream(ck + "/model.safetensors") << "x";
  auto r = recipe(work, "--stages eval --variants b --eval-limit 3");  // /bin/true "evaluates"
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string out = work + "/eval/b/gsm8k-greedy";
  ASSERT_TRUE(fs::exists(out + ".args"));
  const auto model_time = fs::last_write_time(ck + "/model.safetensors");
  for (const char* run : {"gsm8k-greedy", "gsm8k-n4", "composed-greedy"}) {
    fs::create_directories(work + "/eval/b/" + run);
    std::ofstream(work + "/eval/b/" + run + "/report.json") << "{}";
    fs::last_write_time(work + "/eval/b/" + run + "/report.json", model_time + std::chrono::seconds(10));
  }
  r = recipe(work, "--stages eval --variants b --eval-limit 3 --threads 1");  // threads do not matter
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("eval b gsm8k-greedy: done"), std::string::npos) << r.err;
  r = recipe(work, "--stages eval --variants b");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("was run with other options"), std::string::npos) << r.err;
  fs::last_write_time(ck + "/model.safetensors", model_time + std::chrono::seconds(20));
  r = recipe(work, "--stages eval --variants b --eval-limit 3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("gsm8k-greedy/report.json is older than " + ck), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pcm::test
