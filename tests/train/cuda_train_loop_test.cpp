// The training driver on the GPU: 20 steps track the CPU run, and a run stopped mid-phase then resumed
// equals the uninterrupted run bit for bit. Skips without a GPU.
#include <gtest/gtest.h>

#ifdef PCM_HAVE_CUDA
#include <cmath>

#include "cuda/cuda_test_util.h"
#include "train/train_checkpoint.h"
#include "train/trainer.h"
#include "train_loop/train_fixture.h"

namespace pcm {
namespace {

TrainConfig config_in(const test::TempDir& dir, const std::string& device, int64_t steps) {
  const int64_t vocab = test::write_compact_gsm8k(dir.file("gsm8k.jsonl"), 8, 64);
  const std::string toml = "output_dir = \"out\"\nseed = 5\nsave_every = 4\ndevice = \"" + device + "\"\n" +
                           test::tiny_model_toml(vocab) + "[[phases]]\nname = \"a\"\ndatasets = [\"gsm8k.jsonl\"]\n"
                           "steps = " + std::to_string(steps) + "\nseq_len = 64\nbatch_tokens = 256\n"
                           "micro_batch_rows = 2\nlr = 1e-2\nwarmup_steps = 2\n";
  write_file_atomic(dir.file("c.toml"), toml);
  return load_train_config(dir.file("c.toml"));
}

TEST(CudaTrainLoop, TwentyStepsTrackTheCpu) {
  PCM_REQUIRE_GPU();
  test::TempDir a, b;
  TrainRunOptions ro;
  ro.quiet = true;
  const TrainRunResult cpu = run_training(config_in(a, "cpu", 20), ro);
  const TrainRunResult gpu = run_training(config_in(b, "cuda", 20), ro);
  ASSERT_EQ(cpu.steps.size(), 20u);
  ASSERT_EQ(gpu.steps.size(), 20u);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_NEAR(gpu.steps[i].loss, cpu.steps[i].loss, 2e-3 * cpu.steps[i].loss) << "step " << i + 1;
    EXPECT_NEAR(gpu.steps[i].grad_norm, cpu.steps[i].grad_norm, 1e-2 * cpu.steps[i].grad_norm) << "step " << i + 1;
  }
  EXPECT_LT(gpu.steps.back().loss, gpu.steps.front().loss);
}

// A checkpoint written by the CPU continues on the GPU (same HF + optimizer files) and tracks the CPU run.
TEST(CudaTrainLoop, CpuCheckpointResumesOnCuda) {
  PCM_REQUIRE_GPU();
  test::TempDir ref, cut;
  TrainRunOptions ro;
  ro.quiet = true;
  const TrainRunResult whole = run_training(config_in(ref, "cpu", 12), ro);
  TrainConfig cfg = config_in(cut, "cpu", 12);
  ro.stop_after_step = 4;
  run_training(cfg, ro);
  ro.stop_after_step = 0;
  ro.resume = cut.file("out");
  cfg.device = "cuda";
  const TrainRunResult rest = run_training(cfg, ro);
  ASSERT_EQ(rest.steps.size(), 8u);
  for (size_t i = 0; i < rest.steps.size(); ++i)
    EXPECT_NEAR(rest.steps[i].loss, whole.steps[i + 4].loss, 2e-3 * whole.steps[i + 4].loss) << "step " << i + 5;
  EXPECT_TRUE(rest.finished);
}

TEST(CudaTrainLoop, StopThenResumeEqualsUninterrupted) {
  PCM_REQUIRE_GPU();
  test::TempDir ref, cut;
  TrainRunOptions ro;
  ro.quiet = true;
  const TrainRunResult whole = run_training(config_in(ref, "cuda", 12), ro);
  const TrainConfig cfg = config_in(cut, "cuda", 12);
  ro.stop_after_step = 6;  // past the checkpoint at step 4: steps 5 and 6 are redone after the resume
  run_training(cfg, ro);
  ro.stop_after_step = 0;
  ro.resume = cut.file("out/step-00000004");
  const TrainRunResult rest = run_training(cfg, ro);
  ASSERT_EQ(rest.steps.size(), 8u);
  for (size_t i = 0; i < rest.steps.size(); ++i) {
    EXPECT_EQ(rest.steps[i].loss, whole.steps[i + 4].loss) << "step " << i + 5;
    EXPECT_EQ(rest.steps[i].grad_norm, whole.steps[i + 4].grad_norm) << "step " << i + 5;
  }
  Mamba2Config c1, c2;
  ParamSet p1, p2;
  AdamWState o1, o2;
  TrainerPosition s1, s2;
  load_train_checkpoint(whole.final_checkpoint, &c1, &p1, &o1, &s1);
  load_train_checkpoint(rest.final_checkpoint, &c2, &p2, &o2, &s2);
  for (size_t i = 0; i < p1.size(); ++i) {
    EXPECT_EQ(p1[i].data, p2[i].data) << p1[i].name;
    EXPECT_EQ(o1.m[i].data, o2.m[i].data) << p1[i].name;
  }
}

}  // namespace
}  // namespace pcm
#endif
