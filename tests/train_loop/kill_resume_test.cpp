// A real `pcm train` child killed with SIGKILL mid-run, then `pcm train --resume`: the metrics of the
// resumed run equal an uninterrupted run's, step for step and bit for bit (losses as written).
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "train/train_checkpoint.h"
#include "train_fixture.h"

namespace pcm {
namespace {

std::string write_config(const test::TempDir& dir) {
  int64_t vocab = test::write_compact_gsm8k(dir.file("gsm8k.jsonl"), 8, 64);
  std::string toml = "output_dir = \"out\"\nseed = 5\nsave_every = 4\n" + test::tiny_model_toml(vocab) +
                     "[[phases]]\nname = \"a\"\ndatasets = [\"gsm8k.jsonl\"]\nsteps = 30\nseq_len = 64\n"
                     "batch_tokens = 128\nlr = 1e-2\nwarmup_steps = 2\n"
                     "[[phases]]\nname = \"b\"\ndatasets = [\"gsm8k.jsonl\"]\nsteps = 30\nseq_len = 64\n"
                     "batch_tokens = 128\nlr = 3e-3\n";
  write_file_atomic(dir.file("c.toml"), toml);
  return dir.file("c.toml");
}

int64_t step_rows(const std::string& metrics) {
  if (!std::filesystem::exists(metrics)) return 0;
  int64_t n = 0;
  for_each_jsonl(metrics, [&](const json& r, int64_t) { n += !r.contains("event"); });
  return n;
}

// step -> the row's loss/lr/grad_norm as written (bitwise: JSON doubles round-trip).
std::map<int64_t, std::string> losses(const std::string& metrics) {
  std::map<int64_t, std::string> out;
  for_each_jsonl(metrics, [&](const json& r, int64_t) {
    if (!r.contains("event")) out[r["step"].get<int64_t>()] = r["loss"].dump() + " " + r["lr"].dump() + " " + r["grad_norm"].dump();
  });
  return out;
}

TEST(KillResume, SigkillMidRunThenResumeMatchesUninterrupted) {
  test::TempDir ref, killed;
  std::string ref_cfg = write_config(ref), kill_cfg = write_config(killed);
  test::CommandResult r = test::run_pcm("train -q --threads 1 -c " + ref_cfg);
  ASSERT_EQ(r.exit_code, 0) << r.all();
  std::map<int64_t, std::string> expected = losses(ref.file("out/metrics.jsonl"));
  ASSERT_EQ(expected.size(), 60u);

  // Two kills: mid phase 1 (after its first checkpoints), then again from the resumed run, each
  // wherever the child happens to be (a step, a metrics append or a checkpoint write).
  for (int64_t kill_after : {5, 27}) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::string out = killed.file("out");
      if (kill_after == 5)
        execl(test::pcm_binary().c_str(), "pcm", "train", "-q", "--threads", "1", "-c", kill_cfg.c_str(), (char*)nullptr);
      else
        execl(test::pcm_binary().c_str(), "pcm", "train", "-q", "--threads", "1", "-c", kill_cfg.c_str(), "--resume",
              out.c_str(), (char*)nullptr);
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (step_rows(killed.file("out/metrics.jsonl")) < kill_after && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child finished before the kill";
    EXPECT_LT(step_rows(killed.file("out/metrics.jsonl")), 60);
  }

  r = test::run_pcm("train -q --threads 1 -c " + kill_cfg + " --resume " + killed.file("out"));
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("finished"), std::string::npos) << r.all();
  EXPECT_EQ(losses(killed.file("out/metrics.jsonl")), expected);
  // The final checkpoint is a complete model directory.
  EXPECT_TRUE(std::filesystem::exists(killed.file("out/phase2-b/model.safetensors")));
  EXPECT_FALSE(std::filesystem::exists(killed.file("out/phase2-b.tmp")));
}

TEST(KillResume, CliErrors) {
  test::TempDir dir;
  std::string cfg = write_config(dir);
  test::CommandResult r = test::run_pcm("train -q -c " + cfg + " --resume " + dir.file("nothing"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("nothing"), std::string::npos) << r.all();
  r = test::run_pcm("plot " + dir.file("missing.jsonl"));
  EXPECT_NE(r.exit_code, 0);
}

// A trainer_state.json without one of its fields (hand-edited, or from another version): the file and the key.
TEST(KillResume, TrainerStateWithoutAFieldNamesTheFile) {
  test::TempDir dir;
  std::ofstream(dir.file("trainer_state.json")) << R"({"phase": 1, "step_in_phase": 3})";
  Mamba2Config c;
  ParamSet p;
  AdamWState o;
  TrainerPosition pos;
  try {
    load_train_checkpoint(dir.path(), &c, &p, &o, &pos);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trainer_state.json: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("global_step"), std::string::npos) << e.what();
  }
}

TEST(Plot, DrawsLossAndLrPerPhase) {
  test::TempDir dir;
  std::string rows;
  rows += R"({"event":"phase_start","step":0,"phase":1,"phase_name":"a"})" "\n";
  for (int s = 1; s <= 5; ++s)
    rows += "{\"step\":" + std::to_string(s) + ",\"phase\":" + (s <= 3 ? "1,\"phase_name\":\"a\"" : "2,\"phase_name\":\"b\"") +
            ",\"loss\":" + std::to_string(5.0 - s) + ",\"lr\":0.001}\n";
  rows += R"({"event":"phase_start","step":3,"phase":2,"phase_name":"b"})" "\n";
  write_file_atomic(dir.file("m.jsonl"), rows);
  test::CommandResult r = test::run_pcm("plot " + dir.file("m.jsonl") + " --out " + dir.file("p.svg"));
  ASSERT_EQ(r.exit_code, 0) << r.all();
  std::string svg = read_text_file(dir.file("p.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("phase 1 a"), std::string::npos);
  EXPECT_NE(svg.find("phase 2 b"), std::string::npos);
  EXPECT_NE(svg.find("learning rate"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);  // the phase boundary
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace pcm
